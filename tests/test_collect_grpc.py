"""svc_collect over real gRPC, in a real process: statuses for bad requests, streams, and a kill -9 in the
middle of ingest that loses nothing acknowledged and doubles nothing on retry."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest
from collect_helpers import KEYRING, make_event
from conftest import NatsServer, free_port
from grpc_status import rpc_status

from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import errors_pb2, types_pb2
from svc_common.process import ServerProcess

ENV = {"QIMING_COLLECT_KEYRING_JSON": KEYRING}


def _stubs(channel: grpc.Channel):
    return (
        collect_pb2_grpc.CollectServiceStub(channel),
        collect_pb2_grpc.EventSchemaServiceStub(channel),
        collect_pb2_grpc.QuarantineServiceStub(channel),
    )


def _read_ids(stub, **request) -> list[str]:
    return [e.event_id for r in stub.ReadEvents(collect_pb2.ReadEventsRequest(**request), timeout=30) for e in r.events]


def test_requests_get_precise_statuses_and_the_service_stays_up(tmp_path: Path) -> None:
    env = {**ENV, "QIMING_COLLECT_MAX_BATCH_EVENTS": "100", "QIMING_COLLECT_GRPC_MAX_MESSAGE_BYTES": "1048576"}
    with ServerProcess("collect", work_dir=tmp_path, env=env) as server, grpc.insecure_channel(server.address) as ch:
        collect, schemas, quarantine = _stubs(ch)

        raw = ch.unary_unary("/qiming.collect.v1.CollectService/Ingest")
        with pytest.raises(grpc.RpcError) as malformed:
            raw(b"\xff\xff\xff\xff", timeout=10)
        assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        with pytest.raises(grpc.RpcError) as too_many:
            collect.Ingest(collect_pb2.IngestRequest(events=[make_event() for _ in range(101)]), timeout=10)
        assert too_many.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "limit is 100" in too_many.value.details()
        status = rpc_status.from_call(too_many.value)
        assert status is not None and status.details  # ErrorInfo with reason BATCH_TOO_LARGE

        with pytest.raises(grpc.RpcError) as too_big:
            huge = make_event(blob="x" * 4000)
            collect.Ingest(collect_pb2.IngestRequest(events=[huge] * 100 * 3), timeout=10)
        assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

        with pytest.raises(grpc.RpcError) as not_found:
            schemas.GetEventSchema(collect_pb2.GetEventSchemaRequest(event_type="nope"), timeout=10)
        assert not_found.value.code() == grpc.StatusCode.NOT_FOUND

        with pytest.raises(grpc.RpcError) as bad_cursor:
            _read_ids(collect, after_cursor="forged")
        assert bad_cursor.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        with pytest.raises(grpc.RpcError) as reversed_range:  # it answered an empty page: "nothing quarantined"
            backwards = types_pb2.TimeRange()
            backwards.start.FromSeconds(2_000_000_000)
            backwards.end.FromSeconds(1_000_000_000)
            quarantine.ListQuarantinedEvents(collect_pb2.ListQuarantinedEventsRequest(time_range=backwards), timeout=10)
        assert reversed_range.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "time_range" in reversed_range.value.details()

        with pytest.raises(grpc.RpcError) as denied:
            _read_ids(collect, unmask=True)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED

        with pytest.raises(grpc.RpcError) as missing:
            quarantine.ReplayQuarantinedEvents(
                collect_pb2.ReplayQuarantinedEventsRequest(quarantine_ids=["no-such-id"]), timeout=10
            )
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND

        # After all that, it still ingests, and reports per event.
        good, bad = make_event(), make_event()
        bad.event_id = "nope"
        reply = collect.Ingest(collect_pb2.IngestRequest(events=[good, bad]), timeout=10)
        assert (reply.accepted_count, reply.rejected_count) == (1, 1)
        assert reply.results[1].reason == errors_pb2.ERROR_REASON_INVALID_EVENT_ID
        listed = quarantine.ListQuarantinedEvents(collect_pb2.ListQuarantinedEventsRequest(), timeout=10)
        assert [q.quarantine_id for q in listed.events] == [reply.results[1].quarantine_id]
        assert listed.events[0].event.event_id == "nope"


def test_ingest_stream_answers_each_batch_in_order(tmp_path: Path) -> None:
    with ServerProcess("collect", work_dir=tmp_path, env=ENV) as server, grpc.insecure_channel(server.address) as ch:
        collect, _, _ = _stubs(ch)
        batches = [[make_event(user_id=f"c{b}") for _ in range(20)] for b in range(5)]
        batches.append(batches[0][:3])  # a retry of part of the first batch
        requests = (collect_pb2.IngestStreamRequest(batch_id=i + 1, events=b) for i, b in enumerate(batches))
        replies = list(collect.IngestStream(requests, timeout=30))
        assert [r.batch_id for r in replies] == [1, 2, 3, 4, 5, 6]
        assert [r.accepted_count for r in replies] == [20] * 5 + [0]
        assert replies[-1].duplicate_count == 3
        assert len(_read_ids(collect)) == 100
        assert len(_read_ids(collect, user={"type": types_pb2.ID_TYPE_CUSTOMER, "value": "c2"})) == 20


def test_a_stream_ended_by_a_batch_too_large_names_the_batch(tmp_path: Path) -> None:
    """RESOURCE_EXHAUSTED ends an IngestStream: the batches sent after the refused one are never read. The status named
    no batch, and its advice ("split it") did not say that the later ones must be sent again."""
    env = {**ENV, "QIMING_COLLECT_MAX_BATCH_EVENTS": "10"}
    with ServerProcess("collect", work_dir=tmp_path, env=env) as server, grpc.insecure_channel(server.address) as ch:
        collect, _, _ = _stubs(ch)
        batches = [[make_event() for _ in range(n)] for n in (5, 11, 3)]
        requests = (collect_pb2.IngestStreamRequest(batch_id=i + 1, events=b) for i, b in enumerate(batches))
        replies = []
        with pytest.raises(grpc.RpcError) as ended:
            for reply in collect.IngestStream(requests, timeout=30):
                replies.append(reply.batch_id)
        assert replies == [1] and ended.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "limit is 10" in ended.value.details() and "ends at batch_id 2" in ended.value.details()
        assert "send them again on a new stream" in ended.value.details()
        info = rpc_status.from_call(ended.value)
        assert info is not None and "batch_id" in str(info.details)
        assert len(_read_ids(collect)) == 5


@pytest.mark.parametrize("backend", ["sql", "jetstream"])
def test_kill_9_loses_nothing_acknowledged_and_retry_doubles_nothing(backend: str, tmp_path: Path) -> None:
    sent: list[list] = [
        [make_event(user_id=f"c{i % 50}", n=i) for i in range(b * 200, (b + 1) * 200)] for b in range(60)
    ]
    acknowledged: set[str] = set()
    env = dict(ENV)
    nats = None
    if backend == "jetstream":
        # A NATS server of this test's own, killed with the collector: both crash at once.
        (tmp_path / "nats").mkdir()
        nats = NatsServer(tmp_path / "nats", free_port()).start()
        env |= {"QIMING_COLLECT_LOG_BACKEND": "jetstream", "QIMING_COLLECT_NATS_URL": nats.url}
    server = ServerProcess("collect", work_dir=tmp_path, env=env).start()
    stop = threading.Event()

    def producer(offset: int) -> None:
        with grpc.insecure_channel(server.address) as ch:
            stub = collect_pb2_grpc.CollectServiceStub(ch)
            for batch in sent[offset::4]:
                if stop.is_set():
                    return
                try:
                    reply = stub.Ingest(collect_pb2.IngestRequest(events=batch), timeout=10)
                except grpc.RpcError:
                    return  # the server died under us
                acknowledged.update(r.event_id for r in reply.results if r.status == collect_pb2.EVENT_STATUS_ACCEPTED)

    threads = [threading.Thread(target=producer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 2000 and time.monotonic() < deadline:
        time.sleep(0.005)
    server.kill()  # SIGKILL, mid-stream
    if nats is not None:
        nats.kill()
        nats.start()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert acknowledged, "nothing was acknowledged before the kill"

    try:
        with ServerProcess("collect", work_dir=tmp_path, env=env) as again, grpc.insecure_channel(again.address) as ch:
            _check_after_crash(ch, sent, acknowledged)
    finally:
        if nats is not None:
            nats.stop()


def _check_after_crash(ch: grpc.Channel, sent: list[list], acknowledged: set[str]) -> None:
    collect, _, _ = _stubs(ch)
    stored = _read_ids(collect)
    assert acknowledged <= set(stored), f"{len(acknowledged - set(stored))} acknowledged events lost"
    assert len(stored) == len(set(stored))
    # The client retries every batch it sent (it cannot know what landed): nothing is doubled.
    for batch in sent:
        collect.Ingest(collect_pb2.IngestRequest(events=batch), timeout=30)
    stored = _read_ids(collect)
    assert len(stored) == len(set(stored)) == 60 * 200
