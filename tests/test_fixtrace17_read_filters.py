"""Session 17, walk "walke" m3: docs/collect.md says a read of the whole log (``ReadEvents`` without a customer) is
identified in the audit trail "by its principal, peer and filters", but no filter was recorded: a read of every
customer's ``fund_view`` and one of ``$message_sent`` looked alike. Its audit record's ``detail`` now holds the
filters: event types, the start (cursor or receive time), the kind of id of a ``user`` filter (an anonymous id's
value is not named), ``max_events``, ``follow`` and ``unmask``; a refused read is recorded with them too."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from collect_helpers import make_event, serving_collect
from google.protobuf import timestamp_pb2
from grpc import aio

from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import types_pb2

TIMEOUT = 10


async def _read(stub: collect_pb2_grpc.CollectServiceStub, request: collect_pb2.ReadEventsRequest) -> str:
    """The status of the read (its last cursor after a colon, when it sent one)."""
    cursor = ""
    try:
        async for response in stub.ReadEvents(request, timeout=TIMEOUT):
            cursor = response.cursor or cursor
    except aio.AioRpcError as error:
        return error.code().name
    return f"OK:{cursor}" if cursor else "OK"


def test_a_read_of_the_log_is_recorded_with_its_filters(tmp_path: Path) -> None:
    DEVICE = "dev-secret-7"

    async def scenario() -> tuple[str, list]:
        async with serving_collect(tmp_path) as served:
            stub, audit = served.collect, served.audit
            events = [make_event(user_id="c1"), make_event("fund_view", user_id="")]
            events[1].anonymous_id = DEVICE
            await stub.Ingest(collect_pb2.IngestRequest(events=events), timeout=TIMEOUT)
            cursor = (await _read(stub, collect_pb2.ReadEventsRequest(max_events=1))).split(":", 1)[1]
            since = timestamp_pb2.Timestamp(seconds=1_765_000_000)
            requests = [
                collect_pb2.ReadEventsRequest(event_types=["fund_view"]),
                collect_pb2.ReadEventsRequest(event_types=["$message_sent"], after_cursor=cursor, max_events=5),
                collect_pb2.ReadEventsRequest(from_received_at=since),
                collect_pb2.ReadEventsRequest(user=types_pb2.UserRef(type=types_pb2.ID_TYPE_ANONYMOUS, value=DEVICE)),
                collect_pb2.ReadEventsRequest(user=types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value="c1")),
                collect_pb2.ReadEventsRequest(unmask=True),  # no role: refused, and recorded with what it asked
            ]
            statuses = [(await _read(stub, r)).split(":")[0] for r in requests]
            assert statuses == ["OK"] * 5 + ["PERMISSION_DENIED"]
            return cursor, [r for r in audit.records if r.method.endswith("/ReadEvents")][1:]

    cursor, records = asyncio.run(scenario())
    assert [dict(r.detail) for r in records] == [
        {"event_types": ["fund_view"], "follow": False, "unmask": False},
        {"event_types": ["$message_sent"], "after_cursor": cursor, "max_events": 5, "follow": False, "unmask": False},
        {"event_types": [], "from_received_at": "2025-12-06T05:46:40Z", "follow": False, "unmask": False},
        {"event_types": [], "user_id_type": "ID_TYPE_ANONYMOUS", "follow": False, "unmask": False},
        {"event_types": [], "user_id_type": "ID_TYPE_CUSTOMER", "follow": False, "unmask": False},
        {"event_types": [], "follow": False, "unmask": True},
    ]
    assert [r.customers for r in records] == [(), (), (), (), ("c1",), ()]
    assert DEVICE not in repr(records)  # an anonymous id is not named


@pytest.mark.parametrize(
    ("request_", "detail"),
    [
        (
            collect_pb2.ReadEventsRequest(from_received_at=timestamp_pb2.Timestamp(seconds=10**15)),
            {"from_received_at": "seconds=1000000000000000"},
        ),
        (
            collect_pb2.ReadEventsRequest(user=types_pb2.UserRef(type=99, value="x")),  # type: ignore[arg-type]
            {"user_id_type": "99"},
        ),
    ],
)
def test_a_read_refused_for_its_filters_is_recorded_with_them(tmp_path: Path, request_, detail) -> None:
    async def scenario() -> tuple[str, dict]:
        async with serving_collect(tmp_path) as served:
            stub, audit = served.collect, served.audit
            status = await _read(stub, request_)
            [record] = [r for r in audit.records if r.method.endswith("/ReadEvents")]
            return status, dict(record.detail)

    status, recorded = asyncio.run(scenario())
    assert status == grpc.StatusCode.INVALID_ARGUMENT.name
    assert recorded.items() >= detail.items()
