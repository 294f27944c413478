"""The audit queue is bounded (``audit_chain_queue_lines``): when the disk stalls, a call waits
``audit_chain_queue_wait_seconds`` for room, then fails with UNAVAILABLE, reason AUDIT_BACKLOG (its caller retries);
no record is dropped while its call is answered OK; ERROR is logged once per episode with the backlog."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from audit_helpers import GET_PROFILE, KEY, ListAuditSink, audit_record
from google.rpc import error_details_pb2
from grpc import aio
from grpc_status import rpc_status
from server_helpers import served

from svc_common.audit import ChainedAuditSink, ChainMac, TeeAuditSink, verify_file
from svc_common.errors import Unavailable
from svc_common.pb.qiming.common.v1 import ops_pb2
from svc_common.server import AuditRecord, ServiceSpec

SERVICE = "qiming.test.v1.AuditBacklogProbe"


class StalledDisk:
    """Stands in for the file's handle: ``write`` blocks until ``release`` (a disk that stopped answering)."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self.release = threading.Event()

    def write(self, data: bytes) -> int:
        self.release.wait(30)
        return self._handle.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


@pytest.fixture
def stalled(tmp_path: Path) -> Iterator[tuple[ChainedAuditSink, StalledDisk]]:
    sink = ChainedAuditSink.open(tmp_path, KEY, "collect", host="h1", queue_lines=5, queue_wait_seconds=0.05)
    disk = StalledDisk(sink._handle)
    sink._handle = disk  # type: ignore[assignment]
    yield sink, disk
    disk.release.set()
    sink.close()


def _record(number: int, status: str = "OK") -> AuditRecord:
    return audit_record(number, method=GET_PROFILE, status=status, at=datetime.now(UTC))


def test_a_stalled_disk_refuses_calls_after_a_bounded_wait_and_logs_one_error(
    stalled: tuple[ChainedAuditSink, StalledDisk], caplog: pytest.LogCaptureFixture
) -> None:
    sink, disk = stalled

    async def run() -> None:
        for number in range(5):
            await sink.record(_record(number))  # room for 5 lines (the one the writer holds counts)
        refusals = []
        for number in range(5, 8):
            with pytest.raises(Unavailable) as refused:
                await sink.record(_record(number))
            refusals.append(refused.value)
        assert all(r.reason == "AUDIT_BACKLOG" and r.metadata == {"audit_backlog_lines": "5"} for r in refusals)
        assert "5 lines behind" in str(refusals[0])
        disk.release.set()
        while sink._put != sink._done:
            await asyncio.sleep(0.005)
        await sink.record(_record(8))

    with caplog.at_level(logging.INFO, logger="qiming.audit"):
        asyncio.run(run())
    sink.close()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "backlog full" in errors[0].getMessage()
    assert errors[0].audit_backlog_lines == 5 and errors[0].audit_queue_lines == 5  # type: ignore[attr-defined]
    drained = [r for r in caplog.records if "backlog drained" in r.getMessage()]
    assert len(drained) == 1 and drained[0].audit_refused_calls == 3  # type: ignore[attr-defined]
    lines = [json.loads(line) for line in sink.path.read_text().splitlines()]
    assert [line["customers"] for line in lines] == [["c0"], ["c1"], ["c2"], ["c3"], ["c4"], ["c8"]]
    assert verify_file(sink.path, ChainMac(KEY)).ok


def test_a_call_that_waits_for_room_is_accepted_when_the_disk_answers_in_time(
    stalled: tuple[ChainedAuditSink, StalledDisk],
) -> None:
    sink, disk = stalled
    sink._queue_wait = 5.0

    async def run() -> None:
        for number in range(5):
            await sink.record(_record(number))
        asyncio.get_running_loop().call_later(0.05, disk.release.set)
        await sink.record(_record(5))  # waited, not refused

    asyncio.run(run())
    sink.close()
    assert len(sink.path.read_text().splitlines()) == 6


def test_a_refused_call_is_still_logged_with_the_status_its_caller_gets(
    stalled: tuple[ChainedAuditSink, StalledDisk],
) -> None:
    sink, _ = stalled
    log = ListAuditSink()

    async def run() -> None:
        tee = TeeAuditSink(sink, log)
        for number in range(5):
            await tee.record(_record(number))
        with pytest.raises(Unavailable):
            await tee.record(_record(5))

    asyncio.run(run())
    assert [r.status for r in log.records] == ["OK"] * 5 + ["UNAVAILABLE"]
    assert log.records[-1].customers == ("c5",)  # who touched which customer is never lost


def _spec(ran: list[str] | None = None) -> ServiceSpec:
    """A service whose Echo answers its payload, and appends it to ``ran`` (when given) as it runs."""

    async def echo(request: ops_pb2.PingRequest, context: aio.ServicerContext) -> ops_pb2.PingResponse:
        if ran is not None:
            ran.append(request.payload)
        return ops_pb2.PingResponse(payload=request.payload)

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(
                echo,
                request_deserializer=ops_pb2.PingRequest.FromString,
                response_serializer=ops_pb2.PingResponse.SerializeToString,
            )
        },
    )
    return ServiceSpec("probe", (SERVICE,), lambda server: server.add_generic_rpc_handlers((handler,)))


def test_the_caller_gets_unavailable_with_reason_audit_backlog(
    stalled: tuple[ChainedAuditSink, StalledDisk],
) -> None:
    sink, _ = stalled

    async def run() -> tuple[list[grpc.StatusCode], grpc.RpcError]:
        async with served(_spec(), audit_sink=TeeAuditSink(sink, ListAuditSink())) as channel:
            echo = channel.unary_unary(
                f"/{SERVICE}/Echo",
                request_serializer=ops_pb2.PingRequest.SerializeToString,
                response_deserializer=ops_pb2.PingResponse.FromString,
            )
            codes = []
            for _ in range(5):
                await echo(ops_pb2.PingRequest(payload=b"x"), timeout=10)
                codes.append(grpc.StatusCode.OK)
            with pytest.raises(grpc.RpcError) as refused:
                await echo(ops_pb2.PingRequest(payload=b"x"), timeout=10)
            return codes, refused.value

    codes, error = asyncio.run(run())
    assert codes == [grpc.StatusCode.OK] * 5
    assert error.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.reason == "AUDIT_BACKLOG" and info.metadata["audit_backlog_lines"] == "5"


def test_after_a_write_failure_records_go_to_the_log_only_and_are_not_refused(tmp_path: Path) -> None:
    sink = ChainedAuditSink.open(tmp_path, KEY, "collect", host="h1", queue_lines=2, queue_wait_seconds=5)

    class Full:
        def write(self, data: bytes) -> int:
            raise OSError(28, "No space left on device")

        def __getattr__(self, name: str) -> Any:
            return getattr(handle, name)

    handle = sink._handle
    sink._handle = Full()  # type: ignore[assignment]

    async def run() -> None:
        for number in range(20):
            await sink.record(_record(number))  # never refused: the writer drops what it can no longer write
            await asyncio.sleep(0.001)

    asyncio.run(run())
    sink.close()


def test_a_full_queue_refuses_a_call_before_its_handler_runs(stalled: tuple[ChainedAuditSink, StalledDisk]) -> None:
    """Admission: while the chain's queue is full a call is refused before it runs (an ingest stores no event the trail
    could not record; before, the handler ran and the call failed at its end). The refusal is recorded by the other
    sinks with the caller's status; the chain, full, is not waited for a second time."""
    sink, disk = stalled
    log = ListAuditSink()
    ran: list[str] = []
    spec = _spec(ran)

    async def run() -> grpc.RpcError:
        async with served(spec, audit_sink=TeeAuditSink(sink, log)) as channel:
            call = channel.unary_unary(
                f"/{SERVICE}/Echo",
                request_serializer=ops_pb2.PingRequest.SerializeToString,
                response_deserializer=ops_pb2.PingResponse.FromString,
            )
            for number in range(5):
                await call(ops_pb2.PingRequest(payload=str(number)), timeout=10)
            with pytest.raises(grpc.RpcError) as refused:
                await call(ops_pb2.PingRequest(payload="refused"), timeout=10)
            disk.release.set()
            while sink._put != sink._done:
                await asyncio.sleep(0.005)
            await call(ops_pb2.PingRequest(payload="after"), timeout=10)
            return refused.value

    error = asyncio.run(run())
    assert error.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    assert ran == ["0", "1", "2", "3", "4", "after"]  # the refused call's handler never ran
    assert [r.status for r in log.records] == ["OK"] * 5 + ["UNAVAILABLE", "OK"]
    sink.close()
    assert len(sink.path.read_text().splitlines()) == 6  # the refusal found no room in the chain; nothing waits twice
