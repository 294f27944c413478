"""svc_collect's domain on SQLite and on PostgreSQL: once, validated, protected, durable, readable by cursor."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from collect_helpers import collect_settings, make_event, resent_changed_and_bad, running_service

from svc_collect.natsd import NatsServer
from svc_collect.service import ACCEPTED, DUPLICATE, REJECTED
from svc_common.errors import Aborted, InvalidArgument, NotFound, PermissionDenied, ResourceExhausted
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import errors_pb2, event_pb2, types_pb2

R = errors_pb2.ErrorReason


async def _read_all(service, **request) -> list[event_pb2.Event]:
    out: list[event_pb2.Event] = []
    async for events, _cursor in service.read(collect_pb2.ReadEventsRequest(**request), frozenset({"unmask"})):
        out.extend(events)
    return out


def test_one_bad_event_never_fails_its_batch(log_backend: dict[str, str], tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, **log_backend)) as (service, catalog):
            events = [make_event(n=i) for i in range(5)]
            events[2].event_id = "not-a-uuid"
            outcomes = await service.ingest(events)
            assert [o.status for o in outcomes] == [ACCEPTED, ACCEPTED, REJECTED, ACCEPTED, ACCEPTED]
            assert [o.index for o in outcomes] == list(range(5))
            bad = outcomes[2]
            assert (bad.reason, bad.field) == (R.ERROR_REASON_INVALID_EVENT_ID, "event_id")
            assert bad.quarantine_id
            seqs = [service.parse_cursor(o.cursor) for o in outcomes if o.status == ACCEPTED]
            assert seqs == sorted(seqs) and len(set(seqs)) == 4
            stored = await _read_all(service)
            assert [e.event_id for e in stored] == [events[i].event_id for i in (0, 1, 3, 4)]
            assert stored[0].properties["n"].int_value == 0
            quarantined = catalog.list_quarantine()
            assert [q.quarantine_id for q in quarantined] == [bad.quarantine_id]

    asyncio.run(scenario())


def test_exactly_once_across_batches_restarts_and_concurrent_writers(
    log_backend: dict[str, str], tmp_path: Path
) -> None:
    settings = collect_settings(tmp_path, **log_backend)
    events = [make_event(user_id=f"c{i % 7}", n=i) for i in range(300)]

    async def first_life() -> None:
        async with running_service(settings) as (service, _):
            outcomes = await service.ingest(events[:100])
            assert all(o.status == ACCEPTED for o in outcomes)
            # Within one batch, and across batches: the second copy is a duplicate pointing at the first.
            again = await service.ingest([events[0], events[0], events[1]])
            assert [o.status for o in again] == [DUPLICATE] * 3
            assert again[0].cursor == outcomes[0].cursor and again[2].cursor == outcomes[1].cursor

    async def second_life() -> None:
        # Two collectors on the same database, racing with overlapping batches.
        async with running_service(settings) as (a, _), running_service(settings) as (b, _):
            chunks = [events[i : i + 50] for i in range(0, 300, 50)]
            results = await asyncio.gather(*(svc.ingest(list(chunk)) for chunk in chunks for svc in (a, b)))
            accepted = [o.event_id for outcomes in results for o in outcomes if o.status == ACCEPTED]
            assert sorted(accepted) == sorted(e.event_id for e in events[100:])  # each new id accepted once
            stored = await _read_all(a)
            assert len(stored) == 300 and len({e.event_id for e in stored}) == 300

    asyncio.run(first_life())
    asyncio.run(second_life())


def test_same_id_with_other_payload_is_flagged_and_first_copy_kept(log_backend: dict[str, str], tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, **log_backend)) as (service, _):
            same, changed, _ = await resent_changed_and_bad(service)
            plain, mismatch = await service.ingest([same, changed])
            assert (plain.status, plain.reason) == (DUPLICATE, 0)
            assert (mismatch.status, mismatch.reason) == (DUPLICATE, R.ERROR_REASON_PAYLOAD_MISMATCH)
            (stored,) = await _read_all(service)
            assert stored.properties["label"].string_value == "one"

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("mutate", "reason", "field"),
    [
        (lambda e: e.ClearField("event_id"), R.ERROR_REASON_MISSING_FIELD, "event_id"),
        (lambda e: setattr(e, "event_id", "12345"), R.ERROR_REASON_INVALID_EVENT_ID, "event_id"),
        (lambda e: e.ClearField("occurred_at"), R.ERROR_REASON_MISSING_FIELD, "occurred_at"),
        (lambda e: e.ClearField("user_id"), R.ERROR_REASON_MISSING_FIELD, "user_id"),
        (lambda e: setattr(e, "event_type", "$made_up"), R.ERROR_REASON_UNKNOWN_EVENT_TYPE, "event_type"),
        (lambda e: setattr(e, "event_type", "9lives"), R.ERROR_REASON_INVALID_NAME, "event_type"),
        (lambda e: setattr(e, "channel", 999), R.ERROR_REASON_VALUE_NOT_ALLOWED, "channel"),
        (
            lambda e: e.properties["s"].MergeFrom(types_pb2.Value(string_value="x" * 9000)),
            R.ERROR_REASON_STRING_TOO_LONG,
            "properties.s",
        ),
        (
            lambda e: e.properties["d"].MergeFrom(types_pb2.Value(double_value=math.nan)),
            R.ERROR_REASON_VALUE_NOT_ALLOWED,
            "properties.d",
        ),
        (lambda e: e.properties["empty"].Clear(), R.ERROR_REASON_PROPERTY_TYPE_MISMATCH, "properties.empty"),
        (
            lambda e: e.identities.add(type=types_pb2.ID_TYPE_CANONICAL, value="p1"),
            R.ERROR_REASON_VALUE_NOT_ALLOWED,
            "identities[0].type",
        ),
        (lambda e: setattr(e.context, "screen", "s" * 9000), R.ERROR_REASON_STRING_TOO_LONG, "context.screen"),
    ],
)
def test_bad_events_are_rejected_with_reason_and_field(mutate, reason, field, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path)) as (service, _):
            event = make_event()
            event.properties["empty"].string_value = "set"
            mutate(event)
            (outcome,) = await service.ingest([event])
            assert (outcome.status, outcome.reason, outcome.field) == (REJECTED, reason, field), outcome
            assert outcome.message

    asyncio.run(scenario())


def test_sql_and_control_characters_are_stored_verbatim(log_backend: dict[str, str], tmp_path: Path) -> None:
    nasty = "'); DROP TABLE collect_event; --\x00\x07\u202e 中文 \U0001f600"

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, **log_backend)) as (service, _):
            event = make_event(user_id="c'; DELETE FROM x; --", note=nasty)
            event.context.screen = nasty
            (outcome,) = await service.ingest([event])
            assert outcome.status == ACCEPTED
            (stored,) = await _read_all(service, user={"type": types_pb2.ID_TYPE_CUSTOMER, "value": event.user_id})
            assert stored.properties["note"].string_value == nasty
            assert stored.context.screen == nasty

    asyncio.run(scenario())


def test_clock_skew_is_flagged_or_quarantined_by_policy(tmp_path: Path) -> None:
    future = time.time_ns() // 1000 + 3_600_000_000
    ancient = time.time_ns() // 1000 - 90 * 86_400_000_000

    async def scenario(policy: str) -> list:
        settings = collect_settings(tmp_path / policy, out_of_range_time_policy=policy)
        async with running_service(settings) as (service, _):
            outcomes = await service.ingest([make_event(occurred_at_us=future), make_event(occurred_at_us=ancient)])
            return [(o.status, o.reason) for o in outcomes], await _read_all(service)

    flagged, stored = asyncio.run(scenario("flag"))
    assert flagged == [(ACCEPTED, 0), (ACCEPTED, 0)]
    assert [list(e.flags) for e in stored] == [["occurred_at_in_future"], ["occurred_at_too_old"]]
    quarantined, stored = asyncio.run(scenario("quarantine"))
    assert quarantined == [(REJECTED, R.ERROR_REASON_TIMESTAMP_OUT_OF_RANGE)] * 2 and stored == []


def test_batch_over_the_limit_fails_whole(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, max_batch_events=10)) as (service, _):
            with pytest.raises(ResourceExhausted, match="limit is 10") as raised:
                await service.ingest([make_event() for _ in range(11)])
            assert raised.value.reason == "BATCH_TOO_LARGE"
            assert await _read_all(service) == []

    asyncio.run(scenario())


def test_level_3_values_are_encrypted_at_rest_and_unmasked_only_for_the_role(database_url: str, tmp_path: Path) -> None:
    settings = collect_settings(tmp_path, database_url)

    async def scenario() -> None:
        async with running_service(settings) as (service, _):
            await service.schemas.register(
                collect_pb2.EventSchema(
                    event_type="fund_subscribe",
                    properties=[
                        {"name": "fund_code", "type": types_pb2.VALUE_TYPE_STRING, "required": True},
                        {"name": "amount_fen", "type": types_pb2.VALUE_TYPE_MONEY_FEN, "sensitivity": 3},
                        {"name": "mobile", "type": types_pb2.VALUE_TYPE_STRING, "sensitivity": 3, "protection": 3},
                        {"name": "memo", "type": types_pb2.VALUE_TYPE_STRING, "sensitivity": 4, "protection": 4},
                    ],
                ),
                0,
                "test",
            )
            event = make_event("fund_subscribe", fund_code="000001", mobile="13800138000", memo="private")
            event.properties["amount_fen"].money_fen_value = 98_765_432
            event.context.ip = "10.1.2.3"
            event.identities.add(type=types_pb2.ID_TYPE_FUND_ACCOUNT, value="880012345678")
            (outcome,) = await service.ingest([event])
            assert outcome.status == ACCEPTED

            (masked,) = await _read_all(service)
            assert set(masked.masked_fields) == {"amount_fen", "context.ip"}
            assert "amount_fen" not in masked.properties and not masked.context.ip
            assert masked.properties["mobile"].string_value.startswith("ps1:")
            assert "memo" not in masked.properties and "dropped:memo" in masked.flags
            assert masked.identities[0].value.startswith("ps1:")

            request = collect_pb2.ReadEventsRequest(unmask=True)
            with pytest.raises(PermissionDenied):
                async for _ in service.read(request, frozenset({"analyst"})):
                    pass
            clear = [e async for batch, _ in service.read(request, frozenset({"unmask"})) for e in batch]
            assert clear[0].properties["amount_fen"].money_fen_value == 98_765_432
            assert clear[0].context.ip == "10.1.2.3" and not clear[0].masked_fields

    asyncio.run(scenario())
    # Straight from the database: no clear text anywhere in the stored row.
    engine = sa.create_engine(settings.resolved_database_url())
    with engine.connect() as conn:
        payload, sealed = conn.execute(sa.text("SELECT payload, sealed_values FROM collect_event")).one()
    engine.dispose()
    blob = bytes(payload) + bytes(sealed)
    for secret in (b"10.1.2.3", b"13800138000", b"880012345678", b"private", (98_765_432).to_bytes(4, "little")):
        assert secret not in blob


def test_schema_versions_concurrency_and_errors(database_url: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_service(
            collect_settings(tmp_path, database_url, unknown_event_type_policy="quarantine")
        ) as (
            service,
            _,
        ):
            schema = collect_pb2.EventSchema(
                event_type="trade_filled",
                properties=[
                    {
                        "name": "side",
                        "type": types_pb2.VALUE_TYPE_STRING,
                        "required": True,
                        "allowed_values": [{"string_value": "buy"}, {"string_value": "sell"}],
                    },
                    {"name": "qty", "type": types_pb2.VALUE_TYPE_INT},
                ],
                reject_unknown_properties=True,
            )
            first = await service.schemas.register(schema, 0, "test")
            assert first.version == 1
            with pytest.raises(Aborted) as stale:
                await service.schemas.register(schema, 0, "test")
            assert stale.value.reason == "CONCURRENT_MODIFICATION"
            with pytest.raises(InvalidArgument) as invalid:
                bad = collect_pb2.EventSchema(event_type="x", properties=[{"name": "a"}, {"name": "a", "type": 1}])
                await service.schemas.register(bad, 0, "test")
            assert [v.field for v in invalid.value.violations] == [
                "schema.properties[0].type",
                "schema.properties[1].name",
            ]
            with pytest.raises(NotFound):
                await service.schemas.get("nope")

            cases = {
                "ok": make_event("trade_filled", side="buy", qty=3),
                "missing": make_event("trade_filled", qty=3),
                "type": make_event("trade_filled", side="buy", qty="three"),
                "allowed": make_event("trade_filled", side="hold"),
                "unknown_prop": make_event("trade_filled", side="buy", colour="red"),
                "unknown_type": make_event("mystery"),
            }
            outcomes = dict(zip(cases, await service.ingest(list(cases.values())), strict=True))
            assert outcomes["ok"].status == ACCEPTED
            assert outcomes["missing"].reason == R.ERROR_REASON_MISSING_REQUIRED_PROPERTY
            assert outcomes["type"].reason == R.ERROR_REASON_PROPERTY_TYPE_MISMATCH
            assert outcomes["allowed"].reason == R.ERROR_REASON_VALUE_NOT_ALLOWED
            assert outcomes["unknown_prop"].reason == R.ERROR_REASON_UNKNOWN_PROPERTY
            assert outcomes["unknown_type"].reason == R.ERROR_REASON_UNKNOWN_EVENT_TYPE

            # The schema is fixed: "hold" becomes allowed; replay lets that event in, once.
            schema.properties[0].allowed_values.add(string_value="hold")
            assert (await service.schemas.register(schema, 1, "test")).version == 2
            record = service_catalog(service).get_quarantined([outcomes["allowed"].quarantine_id])
            (replayed,) = await service.replay(record)
            assert replayed.status == ACCEPTED and replayed.quarantine_id == outcomes["allowed"].quarantine_id
            record = service_catalog(service).get_quarantined([outcomes["allowed"].quarantine_id])
            assert record[0].released_seq == service.parse_cursor(replayed.cursor)
            (repeat,) = await service.replay(record)  # released: nothing more to do, but the caller learns where it is
            assert (repeat.status, repeat.cursor, repeat.quarantine_id) == (
                DUPLICATE,
                replayed.cursor,
                outcomes["allowed"].quarantine_id,
            )
            still = service_catalog(service).get_quarantined([outcomes["missing"].quarantine_id])
            (again,) = await service.replay(still)
            assert again.status == REJECTED
            assert service_catalog(service).get_quarantined([outcomes["missing"].quarantine_id])[0].replay_count == 1

    asyncio.run(scenario())


def service_catalog(service):
    return service._catalog


def test_read_by_cursor_time_type_and_user_and_follow(log_backend: dict[str, str], tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, **log_backend)) as (service, _):
            first = await service.ingest([make_event("a", "u1"), make_event("b", "u2"), make_event("a", "u2")])
            mark = time.time_ns() // 1000
            await asyncio.sleep(0.01)
            later = await service.ingest([make_event("b", "u1")])
            everything = await _read_all(service)
            assert [e.cursor for e in everything] == [o.cursor for o in [*first, *later]]
            assert [e.event_type for e in await _read_all(service, event_types=["a"])] == ["a", "a"]
            assert len(await _read_all(service, user={"type": types_pb2.ID_TYPE_CUSTOMER, "value": "u2"})) == 2
            resumed = await _read_all(service, after_cursor=first[1].cursor)
            assert [e.cursor for e in resumed] == [first[2].cursor, later[0].cursor]
            at = event_pb2.Event()
            at.occurred_at.FromMicroseconds(mark)
            assert [e.cursor for e in await _read_all(service, from_received_at=at.occurred_at)] == [later[0].cursor]
            assert len(await _read_all(service, max_events=2, batch_size=1)) == 2

            for bad in ("garbage", "deadbeef.1", first[0].cursor + "zz"):
                with pytest.raises(InvalidArgument) as raised:
                    await _read_all(service, after_cursor=bad)
                assert raised.value.reason == "INVALID_CURSOR"
            with pytest.raises(InvalidArgument):
                await _read_all(service, user={"type": types_pb2.ID_TYPE_WECOM, "value": "w"})

            # follow: a reader at the end sees an event ingested after it started.
            request = collect_pb2.ReadEventsRequest(after_cursor=later[0].cursor, follow=True, max_events=1)
            reader = asyncio.ensure_future(_collect(service.read(request, frozenset())))
            await asyncio.sleep(0.3)
            assert not reader.done()
            (new,) = await service.ingest([make_event("c", "u3")])
            got = await asyncio.wait_for(reader, 10)
            assert [e.cursor for e in got] == [new.cursor]

    asyncio.run(scenario())


async def _collect(stream) -> list[event_pb2.Event]:
    return [e async for batch, _ in stream for e in batch]


def test_stats_count_per_type_and_minute(log_backend: dict[str, str], tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, **log_backend)) as (service, _):
            events = [make_event("a"), make_event("a"), make_event("b")]
            bad = make_event("b")
            bad.event_id = "bad"
            await service.ingest([*events, bad])
            await service.ingest(events[:1])
            stats = await service.stats(None, None, [])
            assert stats.by_type == [("a", 2, 1, 0), ("b", 1, 0, 1)]
            assert sum(m[1] for m in stats.by_minute) == 3
            assert stats.ingest_lag_millis >= 0 and stats.delay_p99_millis >= stats.delay_p50_millis >= 0
            assert (await service.stats(None, None, ["b"])).by_type == [("b", 1, 0, 1)]

    asyncio.run(scenario())


def test_stats_stay_exact_when_a_group_mixes_counted_and_new_types(log_backend: dict[str, str], tmp_path: Path) -> None:
    """A group's per-minute counts are one UPDATE for every type, then an INSERT of the types whose row was missing:
    a group with types already counted this minute and a new one, and two refused types counted under one name
    ("(invalid)", 0.2.6; before, the two names cut to the column's 128 characters), must count each event once."""

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, **log_backend)) as (service, _):
            await service.ingest([make_event("a"), make_event("b")])
            await service.ingest([make_event("a"), make_event("b"), make_event("c"), make_event("c")])
            long_1, long_2 = make_event("a"), make_event("a")
            long_1.event_type, long_2.event_type = "x" * 130 + "1", "x" * 130 + "2"  # refused: too long a type
            outcomes = await service.ingest([long_1, long_2, make_event("c")])
            assert [o.status for o in outcomes][:2] == [REJECTED, REJECTED]
            stats = await service.stats(None, None, [])
            assert stats.by_type == [("(invalid)", 0, 0, 2), ("a", 2, 0, 0), ("b", 2, 0, 0), ("c", 3, 0, 0)]
            assert sum(m[1] for m in stats.by_minute) == 7

    asyncio.run(scenario())


def _side_log(service: object) -> object:
    """The SQL log that holds the statistics: the log itself, or JetStream's side records."""
    log = service._log  # type: ignore[attr-defined]
    return getattr(log, "_side", log)


@pytest.mark.parametrize("side_database", ["sqlite", "postgresql"])
def test_stats_are_exact_across_groups_and_after_their_rows_were_deleted(
    side_database: str, jetstream_server: NatsServer, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Types counted by an earlier group of the minute are added by one UPDATE; rows deleted by hand meanwhile are
    inserted again with the group's counts (none lost, none twice). JetStream's side records, on SQLite and on
    PostgreSQL (whose own log appends count in another statement)."""
    name = f"t{uuid.uuid4().hex[:12]}"
    settings = {"log_backend": "jetstream", "nats_url": jetstream_server.url, "jetstream_stream": name}
    settings["jetstream_subject_prefix"] = f"{name}.events"
    if side_database == "postgresql":
        settings["database_url"] = request.getfixturevalue("database_url_postgresql")

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, **settings)) as (service, _):
            for _ in range(3):
                await service.ingest([make_event("a"), make_event("b"), make_event("b")])
            assert (await service.stats(None, None, [])).by_type == [("a", 3, 0, 0), ("b", 6, 0, 0)]
            with _side_log(service)._db.connection(write=True) as conn:
                conn.exec_driver_sql("DELETE FROM collect_ingest_stat WHERE event_type = 'a'")
            await service.ingest([make_event("a"), make_event("b"), make_event("c")])
            await service.ingest([make_event("a"), make_event("b")])
            stats = await service.stats(None, None, [])
            assert stats.by_type == [("a", 2, 0, 0), ("b", 8, 0, 0), ("c", 1, 0, 0)]

    asyncio.run(scenario())


def test_cursor_of_another_log_is_refused(tmp_path: Path) -> None:
    async def cursor_from(path: Path) -> str:
        async with running_service(collect_settings(path)) as (service, _):
            (outcome,) = await service.ingest([make_event()])
            return outcome.cursor

    foreign = asyncio.run(cursor_from(tmp_path / "one"))

    async def read_elsewhere() -> None:
        async with running_service(collect_settings(tmp_path / "two")) as (service, _):
            await service.ingest([make_event()])
            with pytest.raises(InvalidArgument, match="not a cursor of this log"):
                await _read_all(service, after_cursor=foreign)

    asyncio.run(read_elsewhere())
