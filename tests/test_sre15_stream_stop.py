"""A graceful stop of svc_collect ends each open IngestStream at once (issue 4, failure drills of session 15): the batch
being ingested is finished and acknowledged, later batches are not taken, and the stream ends UNAVAILABLE (STOPPING)
telling the client to resend what was not acknowledged; nothing acknowledged is lost. Until then a stream held the
stop for the whole grace period (60 s here)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from collect_helpers import collect_settings, make_event
from conftest import free_port
from grpc import aio
from test_sre15_nats_outage import collector, logged_ids, reason_of, serving

from svc_collect.service import ACCEPTED
from svc_collect.store import SqlEventLog
from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc

GRACE_SECONDS = 60


def stopping_settings(tmp_path: Path) -> Any:
    return collect_settings(
        tmp_path, grpc_host="127.0.0.1", grpc_port=free_port(), shutdown_grace_seconds=GRACE_SECONDS
    )


async def ends_stopping(call: Any) -> None:
    """The stream's end: UNAVAILABLE, reason STOPPING, a message that says to resend."""
    with pytest.raises(grpc.RpcError) as ended:
        while (reply := await call.read()) is not aio.EOF:
            raise AssertionError(f"a reply after the stop began: {reply}")
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE, ended.value
    assert reason_of(ended.value) == "STOPPING"
    assert "resend" in (ended.value.details() or "")


def test_a_graceful_stop_ends_an_idle_ingest_stream_at_once(tmp_path: Path) -> None:
    settings = stopping_settings(tmp_path)

    async def scenario() -> None:
        acknowledged: list[str] = []
        address = f"127.0.0.1:{settings.grpc_port}"
        async with serving(settings) as stopped, aio.insecure_channel(address) as channel:
            call = collect_pb2_grpc.CollectServiceStub(channel).IngestStream()
            for batch_id in (1, 2):
                events = [make_event() for _ in range(30)]
                await call.write(collect_pb2.IngestStreamRequest(events=events, batch_id=batch_id))
                reply = await call.read()
                assert reply.batch_id == batch_id and reply.accepted_count == 30
                acknowledged += [e.event_id for e in events]
            started = time.monotonic()
            await stopped()  # SIGTERM's path, with the stream open and waiting for its next batch
            assert time.monotonic() - started < GRACE_SECONDS / 2
            await ends_stopping(call)
        async with collector(settings) as channel:  # restarted on the same database
            assert await logged_ids(collect_pb2_grpc.CollectServiceStub(channel)) == acknowledged

    asyncio.run(scenario())


def test_the_batch_in_flight_is_acknowledged_and_later_ones_are_not_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = stopping_settings(tmp_path)
    entered, release = threading.Event(), threading.Event()
    append = SqlEventLog.append
    held = {"on": False}

    def held_append(self: SqlEventLog, batches: Any, now_us: int) -> Any:
        if held["on"]:
            entered.set()
            release.wait(30)
        return append(self, batches, now_us)

    monkeypatch.setattr(SqlEventLog, "append", held_append)

    async def scenario() -> None:
        in_flight = [make_event() for _ in range(40)]
        later = [make_event() for _ in range(40)]
        address = f"127.0.0.1:{settings.grpc_port}"
        async with serving(settings) as stopped, aio.insecure_channel(address) as channel:
            call = collect_pb2_grpc.CollectServiceStub(channel).IngestStream()
            held["on"] = True
            await call.write(collect_pb2.IngestStreamRequest(events=in_flight, batch_id=7))
            assert await asyncio.to_thread(entered.wait, 10)  # batch 7 is being written
            await call.write(collect_pb2.IngestStreamRequest(events=later, batch_id=8))
            asyncio.get_running_loop().call_later(1.0, release.set)  # its write ends after the stop began
            started = time.monotonic()
            await stopped()
            assert time.monotonic() - started < GRACE_SECONDS / 2
            reply = await call.read()
            assert reply.batch_id == 7
            assert [r.status for r in reply.results] == [ACCEPTED] * 40
            await ends_stopping(call)
        held["on"] = False
        async with collector(settings) as channel:
            assert await logged_ids(collect_pb2_grpc.CollectServiceStub(channel)) == [e.event_id for e in in_flight]

    asyncio.run(scenario())
