"""Review 12, svc_collect over in-process gRPC: the audit record names the customers a call touched (F1), a
quarantine filter on a reason the quarantine never records is refused (F5), and a batch above the message limit is
BATCH_TOO_LARGE with the limit (R14)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from collect_helpers import make_event, serving_collect
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from svc_collect import reading
from svc_common.errors import ResourceExhausted
from svc_common.logclient import CollectClient
from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import errors_pb2, types_pb2

TIMEOUT = 10


def _error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError("no ErrorInfo")


def _customer(value: str) -> types_pb2.UserRef:
    return types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=value)


def test_audit_records_name_the_customers_each_call_touched(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving_collect(tmp_path) as s:
            events = [make_event(user_id="c1"), make_event(user_id="c2"), make_event(user_id="c1")]
            anonymous = make_event(user_id="")
            anonymous.anonymous_id = "device-9"
            await s.collect.Ingest(collect_pb2.IngestRequest(events=[*events, anonymous]), timeout=TIMEOUT)
            assert s.audit.customers_of("Ingest") == [("c1", "c2")]  # distinct, no anonymous id

            async def batches() -> AsyncIterator[collect_pb2.IngestStreamRequest]:
                yield collect_pb2.IngestStreamRequest(batch_id=1, events=[make_event(user_id="c3")])
                yield collect_pb2.IngestStreamRequest(batch_id=2, events=[make_event(user_id="c4")])

            assert len([r async for r in s.collect.IngestStream(batches(), timeout=TIMEOUT)]) == 2
            assert s.audit.customers_of("IngestStream") == [("c3", "c4")]

            read = s.collect.ReadEvents(collect_pb2.ReadEventsRequest(user=_customer("c2")), timeout=TIMEOUT)
            assert [e.user_id async for page in read for e in page.events] == ["c2"]
            read = s.collect.ReadEvents(collect_pb2.ReadEventsRequest(), timeout=TIMEOUT)
            assert len([e async for page in read for e in page.events]) == 6
            assert s.audit.customers_of("ReadEvents") == [("c2",), ()]  # a read of the whole log names nobody

            # A rejected event is quarantined under its customer number: the ingest, the listing and the replay
            # name it.
            strange = make_event(user_id="c5")
            strange.ClearField("occurred_at")
            await s.collect.Ingest(collect_pb2.IngestRequest(events=[strange]), timeout=TIMEOUT)
            assert s.audit.customers_of("Ingest")[-1] == ("c5",)
            listed = await s.quarantine.ListQuarantinedEvents(
                collect_pb2.ListQuarantinedEventsRequest(), timeout=TIMEOUT
            )
            assert [q.event.user_id for q in listed.events] == ["c5"]
            assert s.audit.customers_of("ListQuarantinedEvents") == [("c5",)]
            await s.quarantine.ReplayQuarantinedEvents(collect_pb2.ReplayQuarantinedEventsRequest(), timeout=TIMEOUT)
            assert s.audit.customers_of("ReplayQuarantinedEvents") == [("c5",)]

    asyncio.run(scenario())


@pytest.mark.parametrize("reason", [999, errors_pb2.ERROR_REASON_RISK_RATING_MISMATCH, 0])
def test_a_reason_the_quarantine_never_records_is_refused_by_listing_and_replay(tmp_path: Path, reason: int) -> None:
    async def scenario() -> None:
        async with serving_collect(tmp_path) as s:
            for call, request in (
                (s.quarantine.ListQuarantinedEvents, collect_pb2.ListQuarantinedEventsRequest(reasons=[reason])),
                (
                    s.quarantine.ReplayQuarantinedEvents,
                    collect_pb2.ReplayQuarantinedEventsRequest(reasons=[errors_pb2.ERROR_REASON_MISSING_FIELD, reason]),
                ),
            ):
                with pytest.raises(grpc.RpcError) as refused:
                    await call(request, timeout=TIMEOUT)
                assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert "reasons[" in refused.value.details()
            replayed = await s.quarantine.ReplayQuarantinedEvents(
                collect_pb2.ReplayQuarantinedEventsRequest(reasons=[errors_pb2.ERROR_REASON_UNKNOWN_EVENT_TYPE]),
                timeout=TIMEOUT,
            )
            assert replayed.accepted_count == 0

    asyncio.run(scenario())


def test_a_batch_above_the_message_limit_is_batch_too_large_naming_the_limit(tmp_path: Path) -> None:
    limit = 1024 * 1024

    async def scenario() -> None:
        async with serving_collect(tmp_path, grpc_max_message_bytes=limit) as s:
            big = [make_event(user_id=f"c{i}", blob="x" * 4000) for i in range(400)]  # ~1.7 MB
            with pytest.raises(grpc.RpcError) as refused:
                await s.collect.Ingest(collect_pb2.IngestRequest(events=big), timeout=TIMEOUT)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            info = _error_info(refused.value)
            assert info.reason == "BATCH_TOO_LARGE"
            assert info.metadata["max_message_bytes"] == str(limit)  # (and trace_id where tracing is on)

            async def one_batch() -> AsyncIterator[collect_pb2.IngestStreamRequest]:
                yield collect_pb2.IngestStreamRequest(batch_id=1, events=big)

            with pytest.raises(grpc.RpcError) as streamed:
                async for _ in s.collect.IngestStream(one_batch(), timeout=TIMEOUT):
                    pass
            assert _error_info(streamed.value).reason == "BATCH_TOO_LARGE"

            # Svc_common's client splits it and every event gets in; a single event above the limit stays refused.
            client = CollectClient(s.address, max_message_bytes=8 * limit)
            try:
                answer = await client.publish(big)
                assert answer.accepted_count == len(big)
                with pytest.raises(ResourceExhausted):
                    await client.publish([make_event(blob="y" * (limit + 10))])
            finally:
                await client.close()

    asyncio.run(scenario())


def test_a_long_ingest_stream_names_a_bounded_number_of_customers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "MAX_AUDIT_CUSTOMERS", 3)

    async def scenario() -> None:
        async with serving_collect(tmp_path) as s:

            async def batches() -> AsyncIterator[collect_pb2.IngestStreamRequest]:
                for batch in range(4):
                    events = [make_event(user_id=f"c{batch}{i}") for i in range(2)]
                    yield collect_pb2.IngestStreamRequest(batch_id=batch + 1, events=events)

            assert len([r async for r in s.collect.IngestStream(batches(), timeout=TIMEOUT)]) == 4
            (named,) = s.audit.customers_of("IngestStream")
            assert named == ("c00", "c01", "c10", "c11")  # full batches until the bound is reached

    asyncio.run(scenario())


# R6: replaying, by id, an event an earlier replay released answered OK with no result for it; the caller could not
# tell "already in the log" from "nothing matched". It is now a DUPLICATE at its position in the log.
def test_replaying_a_released_event_again_says_where_it_is(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving_collect(tmp_path, unknown_event_type_policy="quarantine") as s:
            event = make_event(event_type="fund_view_v2", user_id="c7")
            (result,) = (await s.collect.Ingest(collect_pb2.IngestRequest(events=[event]), timeout=TIMEOUT)).results
            assert result.quarantine_id
            schemas = collect_pb2_grpc.EventSchemaServiceStub(s.channel)
            schema = collect_pb2.EventSchema(event_type="fund_view_v2")
            await schemas.RegisterEventSchema(collect_pb2.RegisterEventSchemaRequest(schema=schema), timeout=TIMEOUT)
            request = collect_pb2.ReplayQuarantinedEventsRequest(quarantine_ids=[result.quarantine_id])
            first = await s.quarantine.ReplayQuarantinedEvents(request, timeout=TIMEOUT)
            assert [r.status for r in first.results] == [collect_pb2.EVENT_STATUS_ACCEPTED]
            assert first.accepted_count == 1
            again = await s.quarantine.ReplayQuarantinedEvents(request, timeout=TIMEOUT)
            (repeat,) = again.results
            assert (repeat.status, repeat.event_id, repeat.quarantine_id) == (
                collect_pb2.EVENT_STATUS_DUPLICATE,
                event.event_id,
                result.quarantine_id,
            )
            assert repeat.cursor == first.results[0].cursor and "earlier replay" in repeat.message
            assert (again.accepted_count, again.still_rejected_count) == (0, 0)
            read = s.collect.ReadEvents(collect_pb2.ReadEventsRequest(), timeout=TIMEOUT)
            assert [e.event_id async for page in read for e in page.events] == [event.event_id]  # stored once

    asyncio.run(scenario())
