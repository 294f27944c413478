"""Fields an event's messages do not declare (svc_collect/unknown_fields.py): refused with ``UNKNOWN_FIELD`` naming
where, by the check in C and the Python one alike, never stored or served; the quarantine keeps them sealed and its
masked listing leaves them out (acceptance walk, 2026-12-07: a properties entry with a third field carried an
identity number past protection into every masked read)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from collect_helpers import collect_settings, make_event
from grpc import aio
from test_collect_fastcheck import NOW_US, _validators, needs_native
from test_pii15_undeclared_grpc import UNMASK, collector

from svc_collect.validation import Rejection
from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import errors_pb2, event_pb2, types_pb2

ID_NUMBER = b"110101199003077777"
R = errors_pb2.ErrorReason


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append(value & 0x7F | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def _ld(number: int, data: bytes) -> bytes:
    """A length-delimited field."""
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _entry(name: bytes, value: bytes) -> bytes:
    """A properties entry (field 10) of key ``name`` and a Value ``value``, with a third field holding ID_NUMBER."""
    return _ld(10, _ld(1, name) + _ld(2, value) + _ld(3, ID_NUMBER))


def _base() -> event_pb2.Event:
    event = make_event("page_view", "c1", occurred_at_us=NOW_US, plan="gold")
    event.context.screen = "home"
    event.identities.add(type=2, value="F1")  # a fund account
    event.properties["at"].timestamp_value.FromMicroseconds(NOW_US)
    event.properties["tags"].string_list_value.values.extend(["a", "b"])
    return event


def _nested(field: int, inner: bytes) -> Callable[[bytes], bytes]:
    """The event with ``inner`` appended to the message of its field ``field`` (a repeated field's first item)."""

    def change(data: bytes) -> bytes:
        event = event_pb2.Event.FromString(data)
        message = {3: event.occurred_at, 11: event.context, 7: event.identities[0]}[field]
        merged = type(message).FromString(message.SerializeToString() + inner)
        message.CopyFrom(merged)
        return event.SerializeToString(deterministic=True)

    return change


def _in_value(name: str, inner: bytes, part: str = "") -> Callable[[bytes], bytes]:
    def change(data: bytes) -> bytes:
        event = event_pb2.Event.FromString(data)
        value = event.properties[name]
        message = getattr(value, part) if part else value
        message.CopyFrom(type(message).FromString(message.SerializeToString() + inner))
        return event.SerializeToString(deterministic=True)

    return change


# (what the client did, the encoding changed, the field the rejection names)
CASES = [
    ("a field Event does not declare", lambda d: d + b"\xa0\x06\x01", "#100"),
    ("a length-delimited unknown field holding a number", lambda d: d + _ld(20, ID_NUMBER), "#20"),
    ("a properties entry with a third field", lambda d: d + _entry(b"id_number", _ld(1, ID_NUMBER)), "properties"),
    ("user_id sent as a varint", lambda d: d + b"\x30\x05", "user_id"),
    ("properties sent as a varint", lambda d: d + b"\x50\x01", "properties"),
    ("occurred_at with a third field", _nested(3, _ld(3, ID_NUMBER)), "occurred_at"),
    ("the context with field 30", _nested(11, _ld(30, ID_NUMBER)), "context"),
    ("an identity with field 3", _nested(7, _ld(3, ID_NUMBER)), "identities[0]"),
    ("a value with field 9", _in_value("plan", _ld(9, ID_NUMBER)), "properties.plan"),
    ("a timestamp value with field 5", _in_value("at", _ld(5, ID_NUMBER), "timestamp_value"), "properties.at"),
    ("a string list with field 2", _in_value("tags", _ld(2, ID_NUMBER), "string_list_value"), "properties.tags"),
]


@needs_native
@pytest.mark.parametrize(("what", "change", "field"), CASES, ids=[c[0] for c in CASES])
def test_both_checks_refuse_an_unknown_field_and_name_where_it_is(
    what: str, change: Callable[[bytes], bytes], field: str
) -> None:
    base = _base().SerializeToString(deterministic=True)
    for validator in _validators():
        good = event_pb2.Event.FromString(base)
        assert not isinstance(validator.check(good, NOW_US), Rejection)  # the event without it passes
        assert not isinstance(validator.check(event_pb2.Event.FromString(base), NOW_US), Rejection)
        if validator.native:  # its names and type known now, the C check vouches for the event without it
            assert validator._native(base, NOW_US)[1] == base
        data = change(base)
        assert data != base, what
        event = event_pb2.Event.FromString(data)
        verdict = validator.check(event, NOW_US)
        assert isinstance(verdict, Rejection), (what, validator.native)
        assert verdict.reason == R.ERROR_REASON_UNKNOWN_FIELD and verdict.field == field, verdict
        assert "qiming.common.v1.Event" in verdict.message and ID_NUMBER.decode() not in verdict.message
        if "sent as a varint" in what:
            assert f"{field} (field " in verdict.message and "was sent as varint" in verdict.message, verdict
        assert event.SerializeToString(deterministic=True) == data  # left as it came: the quarantine keeps it whole
        if validator.native:
            assert validator._native(data, NOW_US) is None  # the check in C never vouches for it


def _raw_ingest(channel: aio.Channel, request: bytes) -> collect_pb2.IngestResponse:
    call = channel.unary_unary(
        "/qiming.collect.v1.CollectService/Ingest",
        request_serializer=lambda b: b,
        response_deserializer=collect_pb2.IngestResponse.FromString,
    )
    return call(request, timeout=10)


@pytest.mark.parametrize("native_checks", [True, False])
def test_served_an_identity_number_in_an_unknown_field_is_refused_and_never_served_in_clear(
    tmp_path: Path, native_checks: bool
) -> None:
    """The walk's reproduction: an entry ``id_number`` with a third field, and a field 20 holding the number, sent as
    raw bytes beside a good event; a bad event id with an unknown field (quarantined for its id) as well."""
    good = make_event("page_view", "c1", plan="gold")
    leaky = make_event("page_view", "c1")
    bad_id = make_event("page_view", "c1", event_id="not-a-uuid")
    events = [
        good.SerializeToString(),
        leaky.SerializeToString() + _entry(b"id_number", _ld(1, ID_NUMBER)),
        leaky.SerializeToString().replace(leaky.event_id.encode(), str(uuid.uuid4()).encode()) + _ld(20, ID_NUMBER),
        bad_id.SerializeToString() + _ld(20, ID_NUMBER),
    ]
    request = b"".join(_ld(1, e) for e in events)

    async def scenario() -> tuple[
        collect_pb2.IngestResponse, list[event_pb2.Event], list[collect_pb2.QuarantinedEvent]
    ]:
        async with collector(tmp_path, native_checks=native_checks) as channel:
            reply = await _raw_ingest(channel, request)
            read = collect_pb2_grpc.CollectServiceStub(channel).ReadEvents(collect_pb2.ReadEventsRequest(), timeout=10)
            stored = [e async for page in read for e in page.events]
            quarantine = collect_pb2_grpc.QuarantineServiceStub(channel)
            listed = await quarantine.ListQuarantinedEvents(
                collect_pb2.ListQuarantinedEventsRequest(reasons=[R.ERROR_REASON_UNKNOWN_FIELD]), timeout=10
            )
            everything = await quarantine.ListQuarantinedEvents(collect_pb2.ListQuarantinedEventsRequest(), timeout=10)
            clear = await quarantine.ListQuarantinedEvents(
                collect_pb2.ListQuarantinedEventsRequest(unmask=True), timeout=10, metadata=UNMASK
            )
            assert len(listed.events) == 2 and len(everything.events) == 3 and len(clear.events) == 3
            for item in everything.events:  # masked: the unknown fields are left out, not shown as sent
                assert ID_NUMBER not in item.event.SerializeToString()
            assert sum(ID_NUMBER in item.event.SerializeToString() for item in clear.events) == 3  # kept, sealed
            return reply, stored, list(listed.events)

    reply, stored, listed = asyncio.run(scenario())
    statuses = [r.status for r in reply.results]
    assert statuses == [collect_pb2.EVENT_STATUS_ACCEPTED] + [collect_pb2.EVENT_STATUS_REJECTED] * 3, reply
    assert [r.reason for r in reply.results[1:3]] == [R.ERROR_REASON_UNKNOWN_FIELD] * 2
    assert [r.field for r in reply.results[1:3]] == ["properties", "#20"]
    assert reply.results[3].reason == R.ERROR_REASON_INVALID_EVENT_ID
    assert [e.event_id for e in stored] == [good.event_id]
    assert all(q.reason == R.ERROR_REASON_UNKNOWN_FIELD for q in listed)
    engine = sa.create_engine(collect_settings(tmp_path).resolved_database_url())
    with engine.connect() as conn:  # the log and the quarantine hold it sealed only
        rows = [bytes(r[0]) for r in conn.execute(sa.text("SELECT payload FROM collect_event"))]
        quarantined = repr(conn.execute(sa.text("SELECT * FROM collect_quarantine")).all()).encode()
    engine.dispose()
    assert all(ID_NUMBER not in row for row in rows) and ID_NUMBER not in quarantined


def test_a_quarantine_filter_takes_the_payload_mismatch_a_replay_records(tmp_path: Path) -> None:
    """A replay that met another payload leaves its record with reason PAYLOAD_MISMATCH (docs/collect.md): a filter
    on that reason lists it (it was INVALID_ARGUMENT "not a reason the quarantine records")."""
    strict = collect_pb2.EventSchema(
        event_type="order_placed",
        reject_unknown_properties=True,
        properties=[collect_pb2.PropertySpec(name="a", type=1)],
    )

    async def scenario() -> list[collect_pb2.QuarantinedEvent]:
        async with collector(tmp_path) as channel:
            schemas = collect_pb2_grpc.EventSchemaServiceStub(channel)
            await schemas.RegisterEventSchema(collect_pb2.RegisterEventSchemaRequest(schema=strict), timeout=10)
            ingest = collect_pb2_grpc.CollectServiceStub(channel).Ingest
            first = make_event("order_placed", "c1", a="x", b="y")
            again = make_event("order_placed", "c1", event_id=first.event_id, a="x")
            assert (await ingest(collect_pb2.IngestRequest(events=[first]), timeout=10)).rejected_count == 1
            assert (await ingest(collect_pb2.IngestRequest(events=[again]), timeout=10)).accepted_count == 1
            strict.properties.add(name="b", type=1)
            await schemas.RegisterEventSchema(
                collect_pb2.RegisterEventSchemaRequest(schema=strict, expected_version=1), timeout=10
            )
            quarantine = collect_pb2_grpc.QuarantineServiceStub(channel)
            replay = await quarantine.ReplayQuarantinedEvents(
                collect_pb2.ReplayQuarantinedEventsRequest(event_types=["order_placed"]), timeout=10
            )
            assert replay.results[0].reason == R.ERROR_REASON_PAYLOAD_MISMATCH, replay
            listed = await quarantine.ListQuarantinedEvents(
                collect_pb2.ListQuarantinedEventsRequest(reasons=[R.ERROR_REASON_PAYLOAD_MISMATCH]), timeout=10
            )
            return list(listed.events)

    (record,) = asyncio.run(scenario())
    assert record.reason == R.ERROR_REASON_PAYLOAD_MISMATCH


def test_a_quarantined_event_masked_for_a_reader_lists_its_fields_as_an_accepted_one(tmp_path: Path) -> None:
    """``masked_fields`` of a quarantined event (ListQuarantinedEvents without unmask): undeclared personal data
    first, then the declared level 3+ properties, then ``context.ip``, as the same event accepted reads back
    (the undeclared ones came last)."""
    schema = collect_pb2.EventSchema(
        event_type="order_placed",
        properties=[
            collect_pb2.PropertySpec(name="id_no", type=1, sensitivity=4),
            collect_pb2.PropertySpec(
                name="side", type=1, allowed_values=[types_pb2.Value(string_value=v) for v in "BS"]
            ),
        ],
    )

    def order(side: str) -> event_pb2.Event:
        event = make_event("order_placed", "c1", side=side, id_no="110101199003077777", comment="call 13812345678")
        event.context.ip = "10.1.2.3"
        return event

    async def scenario() -> tuple[list[str], list[str]]:
        async with collector(tmp_path) as channel:
            await collect_pb2_grpc.EventSchemaServiceStub(channel).RegisterEventSchema(
                collect_pb2.RegisterEventSchemaRequest(schema=schema), timeout=10
            )
            reply = await collect_pb2_grpc.CollectServiceStub(channel).Ingest(
                collect_pb2.IngestRequest(events=[order("S"), order("X")]), timeout=10
            )
            assert [r.status for r in reply.results] == [
                collect_pb2.EVENT_STATUS_ACCEPTED,
                collect_pb2.EVENT_STATUS_REJECTED,
            ], reply
            read = collect_pb2_grpc.CollectServiceStub(channel).ReadEvents(collect_pb2.ReadEventsRequest(), timeout=10)
            (accepted,) = [e async for page in read for e in page.events]
            listed = await collect_pb2_grpc.QuarantineServiceStub(channel).ListQuarantinedEvents(
                collect_pb2.ListQuarantinedEventsRequest(), timeout=10
            )
            return list(accepted.masked_fields), list(listed.events[0].event.masked_fields)

    accepted, quarantined = asyncio.run(scenario())
    assert accepted == ["comment", "id_no", "context.ip"]
    assert quarantined == accepted


def test_the_scan_finds_the_events_an_earlier_release_stored_with_unknown_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m svc_collect.unknown_scan``: events stored before 0.2.4 with an unknown field (here: stored with the
    test switched off, as 0.2.3 did) are listed by cursor, id, type and where, the value never printed; exit 1 when
    found, 0 when not, 2 when the call fails."""
    from server_helpers import served_at

    from svc_collect import unknown_scan
    from svc_collect import validation as validation_module
    from svc_collect.server import build_spec
    from svc_collect.store import SCHEMA
    from svc_common.runtime import ServiceRuntime

    plain = make_event("page_view", "c1")
    leaky = event_pb2.Event.FromString(
        make_event("page_view", "c2").SerializeToString() + _entry(b"id_number", _ld(1, ID_NUMBER))
    )

    async def scenario() -> tuple[int, int, int]:
        settings = collect_settings(tmp_path, grpc_host="127.0.0.1", grpc_port=0, native_checks=False)
        runtime = await asyncio.to_thread(ServiceRuntime.open, SCHEMA, settings)
        try:
            async with served_at(build_spec(runtime), settings, hooks=True) as (channel, address):
                stub = collect_pb2_grpc.CollectServiceStub(channel)
                scan = ["--address", address]
                empty = await asyncio.to_thread(unknown_scan.main, scan)
                with monkeypatch.context() as patch:  # as 0.2.3 took it
                    patch.setattr(validation_module, "holds_unknown", lambda event, data: False)
                    reply = await stub.Ingest(collect_pb2.IngestRequest(events=[plain, leaky]), timeout=10)
                assert reply.accepted_count == 2, reply
                found = await asyncio.to_thread(unknown_scan.main, scan)
            failed = await asyncio.to_thread(unknown_scan.main, [*scan, "--timeout-seconds", "2"])
        finally:
            runtime.database.dispose()
        return empty, found, failed

    empty, found, failed = asyncio.run(scenario())
    out = capsys.readouterr()
    assert (empty, found, failed) == (0, 1, 2)
    (line,) = out.out.splitlines()
    cursor, event_id, event_type, received, field = line.split("\t")
    assert event_id == leaky.event_id and event_type == "page_view" and field == "properties"
    assert cursor and received.endswith("Z")
    assert ID_NUMBER.decode() not in out.out + out.err
    assert "ReadEvents failed: UNAVAILABLE" in out.err
