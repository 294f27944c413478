"""Masked reads are framed from the stored payloads without decoding them (svc_collect/wire.py): they must
decode to exactly what building the messages gives, on every backend of the log."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from collect_helpers import collect_settings, make_event, running_service

from svc_collect.store import StoredEvent
from svc_collect.wire import encode_read_response, timestamp_field, varint
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import event_pb2, types_pb2

HOUR_US = 3_600_000_000


def _varied_events() -> list[event_pb2.Event]:
    """Plain, sensitive (sealed), pseudonymized-id, context-ip, far-past (flagged) and non-ASCII events."""
    events = [make_event(n=i, screen="fund_detail") for i in range(3)]
    events.append(make_event("trade", "c2", amount=1234.5, phone="13800000000", stock="600519"))
    with_ids = make_event("login", "c3")
    with_ids.identities.add(type=types_pb2.ID_TYPE_FUND_ACCOUNT, value="880012345")
    with_ids.context.ip = "10.1.2.3"
    with_ids.context.app_version = "5.2.1"
    events.append(with_ids)
    events.append(make_event("page_view", "c4", occurred_at_us=1_000_000, title="基金详情 — 沪深300"))
    events.append(make_event("page_view", "客户五", note="x" * 300))
    return events


def test_encoded_pages_decode_to_the_built_messages(log_backend: dict[str, str], tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, **log_backend)) as (service, _catalog):
            for _ in range(3):  # three appends: three receive times in the log
                outcomes = await service.ingest(_varied_events())
                assert all(o.cursor for o in outcomes)
            for request in (
                collect_pb2.ReadEventsRequest(batch_size=4),
                collect_pb2.ReadEventsRequest(batch_size=100, event_types=["trade", "login"]),
                collect_pb2.ReadEventsRequest(user=types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value="c3")),
            ):
                built = [
                    collect_pb2.ReadEventsResponse(events=events, cursor=cursor)
                    async for events, cursor in service.read(request, frozenset())
                ]
                encoded = [
                    collect_pb2.ReadEventsResponse.FromString(d)
                    async for d in service.read_encoded(request, frozenset())
                ]
                assert encoded == built
                assert sum(len(r.events) for r in encoded) > 0
            logins = [e for r in built for e in r.events]  # the last request: c3's login, three times
            assert len(logins) == 3 and all(list(e.masked_fields) == ["context.ip"] for e in logins)
            assert not any(e.context.ip for e in logins)  # sealed values stay withheld
            unmasked = [
                collect_pb2.ReadEventsResponse.FromString(d)
                async for d in service.read_encoded(
                    collect_pb2.ReadEventsRequest(batch_size=4, unmask=True), {"unmask"}
                )
            ]
            clear = [e for r in unmasked for e in r.events if e.event_type == "login"]
            assert [e.context.ip for e in clear] == ["10.1.2.3"] * 3

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "micros", [0, 1, 999_999, 1_000_000, 1_733_300_000_123_456, -1, -1_500_000, 253_402_300_799_999_999]
)
def test_timestamps_encode_as_protobuf_does(micros: int) -> None:
    expected = event_pb2.Event()
    expected.received_at.FromMicroseconds(micros)
    assert timestamp_field(b"\x22", micros) == expected.SerializeToString()


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 16_383, 16_384, 2**35, 2**63 - 1, -1, -(2**63)])
def test_varints_match_protobuf(value: int) -> None:
    from google.protobuf import wrappers_pb2

    encoded = wrappers_pb2.Int64Value(value=value).SerializeToString()
    assert (b"\x08" + varint(value) if value else b"") == encoded


def test_edge_rows_decode_exactly() -> None:
    """Rows the service does not make in the usual way: no fingerprint, a negative receive time, a payload with
    nothing but an id, the largest position."""
    rows = [
        StoredEvent(1, -1_500_000, "", 0, event_pb2.Event(event_id="a").SerializeToString(), None),
        StoredEvent(2**63 - 1, 5, "ab" * 16, 1, b"", b"sealed"),
    ]
    decoded = collect_pb2.ReadEventsResponse.FromString(encode_read_response(rows, "0123abcd", "0123abcd.7"))
    assert decoded.cursor == "0123abcd.7"
    first, second = decoded.events
    assert (first.event_id, first.received_at.ToMicroseconds(), first.fingerprint) == ("a", -1_500_000, "")
    assert first.cursor == "0123abcd.1"
    assert second.cursor == f"0123abcd.{2**63 - 1:x}" and second.fingerprint == "ab" * 16
    assert second.received_at.ToMicroseconds() == 5
