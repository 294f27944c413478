"""Leftovers of the svc_collect walks, mended in session 23: rejected events whose type is not a valid name were counted
under that name, which GetIngestStats refused as a filter (one count per client-made string)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import nats
import pytest
import sqlalchemy as sa
from collect_helpers import collect_settings, jetstream_settings, make_event, running_service
from conftest import NatsServer
from google.protobuf.timestamp_pb2 import Timestamp
from test_collect_review_fixes import _Batch
from test_ddl_snapshots import make_dialect, offline_migration_sql

from svc_collect.committer import GroupCommitter
from svc_collect.config import CollectSettings
from svc_collect.service import ACCEPTED, DUPLICATE, REJECTED, RELEASED_MESSAGE, CollectService
from svc_collect.store import SCHEMA
from svc_common.errors import ConfigError, InvalidArgument, Unavailable
from svc_common.paging import decode_token, encode_token
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import errors_pb2, event_pb2, types_pb2
from svc_common.protection import DEFAULT_SENSITIVE_PROPERTIES


def test_rejected_events_with_an_invalid_type_are_counted_under_one_name(tmp_path: Path, database_url: str) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, database_url)) as (service, catalog):
            spaced, long = make_event("login", "c1"), make_event("login", "c2")
            spaced.event_type, long.event_type = "page view; DROP TABLE x", "v" * 300
            outcomes = await service.ingest([spaced, long, make_event("login", "c3")])
            assert [o.status for o in outcomes[:2]] == [REJECTED] * 2
            assert {o.reason for o in outcomes[:2]} == {errors_pb2.ERROR_REASON_INVALID_NAME}
            stats = await service.stats(None, None, [])
            assert [row[:4] for row in stats.by_type] == [("(invalid)", 0, 0, 2), ("login", 1, 0, 0)]
            only = await service.stats(None, None, ["(invalid)"])
            assert [row[0] for row in only.by_type] == ["(invalid)"]
            # The quarantine keeps the name as sent, and lists by it.
            (record,) = catalog.list_quarantine(event_types=["page view; DROP TABLE x"])
            assert record.event_type == "page view; DROP TABLE x"
            with pytest.raises(InvalidArgument) as refused:
                await service.stats(None, None, ["page view; DROP TABLE x"])
            (violation,) = refused.value.violations
            assert (
                violation.field == "event_types[0]" and "(invalid) (rejected events whose type" in violation.description
            )

    asyncio.run(scenario())


async def _js(url: str, stream: str, **changes: int) -> None:
    nc = await nats.connect(url)
    try:
        config = (await nc.jetstream().stream_info(stream)).config
        for key, value in changes.items():
            setattr(config, key, value)
        await nc.jetstream().update_stream(config)
    finally:
        await nc.close()


def test_an_event_protection_makes_too_large_for_a_jetstream_message_is_rejected_alone(
    jetstream_server: NatsServer, tmp_path: Path
) -> None:
    """An event within max_event_bytes that protection makes larger than one message of the stream (a phone or fund
    account id becomes a 36-character pseudonym) failed its whole batch; now it is rejected alone, EVENT_TOO_LARGE,
    and quarantined as it came, the rest of the batch stored; replayed once the limit is raised, it is stored
    protected, and the client's copy sent again is its DUPLICATE."""
    name = f"g{uuid.uuid4().hex[:10]}"
    settings = jetstream_settings(tmp_path, jetstream_server, name, jetstream_shards=1, max_event_bytes=1024)

    async def scenario() -> None:
        async with running_service(settings):
            pass  # the stream made
        await _js(jetstream_server.url, name, max_msg_size=8_400)  # 4,304 bytes an event: all of 1,024 fit as they came
        async with running_service(settings) as (service, catalog):
            grown = make_event("login", "c1")
            grown.context.ip = "10.1.2.3"
            for i in range(110):
                grown.identities.add(type=types_pb2.ID_TYPE_FUND_ACCOUNT, value=f"{i}")
            assert grown.ByteSize() < 1024
            sent = event_pb2.Event()
            sent.CopyFrom(grown)
            before, too_large, after = await service.ingest(
                [make_event("login", "c2"), grown, make_event("login", "c3")]
            )
            assert [before.status, too_large.status, after.status] == [ACCEPTED, REJECTED, ACCEPTED]
            assert too_large.reason == errors_pb2.ERROR_REASON_EVENT_TOO_LARGE
            assert "as the log stores it" in too_large.message and "holds 4304" in too_large.message
            (record,) = catalog.list_quarantine(reasons=["EVENT_TOO_LARGE"])
            assert service.open_quarantined(record) == sent  # as it came: its ip, its ids
            request = collect_pb2.ReadEventsRequest()
            read = [e.event_id async for page, _ in service.read(request, frozenset()) for e in page]
            assert read == [before.event_id, after.event_id]
        await _js(jetstream_server.url, name, max_msg_size=-1)  # the limit raised, the collector restarted
        async with running_service(settings) as (service, catalog):
            (replayed,) = await service.replay(catalog.get_quarantined([record.quarantine_id]))
            assert replayed.status == ACCEPTED
            request = collect_pb2.ReadEventsRequest()
            (stored,) = [
                e async for page, _ in service.read(request, frozenset()) for e in page if e.event_id == sent.event_id
            ]
            assert stored.masked_fields == ["context.ip"] and len(stored.identities) == 110
            assert all(i.value.startswith("ps1:") for i in stored.identities)
            (again,) = await service.ingest([sent])  # the client's copy, sent again: the same payload
            assert again.status == DUPLICATE and not again.reason

    asyncio.run(scenario())


def test_events_stored_before_the_side_records_failed_are_answered_accepted_on_the_write_again(
    jetstream_server: NatsServer, tmp_path: Path
) -> None:
    """On JetStream a group's events are published before its quarantine and counts are written to the database. When
    those failed, the committer wrote the group again batch by batch (and a lone batch's client sent it again): the
    log held the events, so first-time senders were answered DUPLICATE. They are answered ACCEPTED, at the position
    stored, and counted once."""
    settings = jetstream_settings(tmp_path, jetstream_server, f"s{uuid.uuid4().hex[:10]}")

    async def scenario() -> None:
        async with running_service(settings) as (service, _):
            side = service._log._side
            real, failures = side.record_side, [1]

            def failing_once(*args: object) -> None:
                if failures:
                    failures.pop()
                    raise RuntimeError("database is locked")
                real(*args)

            side.record_side = failing_once
            first = [make_event("login", f"c{i}") for i in range(3)]
            second = [make_event("login", f"d{i}") for i in range(2)]
            answers = await asyncio.gather(service.ingest(first), service.ingest(second))
            assert [o.status for batch in answers for o in batch] == [ACCEPTED] * 5
            failures.append(1)
            lone = [make_event("login", "e1"), make_event("login", "e2")]
            with pytest.raises(RuntimeError):
                await service.ingest(lone)
            again = await service.ingest(lone)  # the client's retry
            assert [o.status for o in again] == [ACCEPTED] * 2
            resent = await service.ingest(lone[:1])  # from now on, a duplicate as any other
            assert [o.status for o in resent] == [DUPLICATE]
            request = collect_pb2.ReadEventsRequest()
            read = {e.event_id: e.cursor async for page, _ in service.read(request, frozenset()) for e in page}
            sent = [e.event_id for e in (*first, *second, *lone)]
            assert sorted(read) == sorted(sent) and len(read) == 7  # each once
            assert [o.cursor for o in again] == [read[e.event_id] for e in lone]  # where they were stored
            stats = await service.stats(None, None, [])
            assert [row[:4] for row in stats.by_type] == [("login", 7, 1, 0)]

    asyncio.run(scenario())


async def _read(service: CollectService, unmask: bool = False) -> list[tuple[dict[str, str], list[str]]]:
    request = collect_pb2.ReadEventsRequest(event_types=["survey"], unmask=unmask)
    roles = frozenset({"unmask"}) if unmask else frozenset()
    return [
        ({k: v.string_value for k, v in e.properties.items()}, list(e.masked_fields))
        async for events, _ in service.read(request, roles)
        for e in events
    ]


def test_a_name_added_to_sensitive_properties_is_withheld_from_events_stored_before(
    tmp_path: Path, database_url: str
) -> None:
    """sensitive_properties protects what is ingested after a start with the name; events stored before kept the value
    in clear, and masked reads (svc_profile, svc_modeling) were served it. Now the name counts from the first start
    that had it without a break (collect_sensitive_name): masked reads withhold it in events received before; a
    reader allowed to unmask sees it as stored. Taken out of the setting and put back, it counts from then again."""
    plain = tuple(n for n in DEFAULT_SENSITIVE_PROPERTIES if n != "risk_answer")
    without = collect_settings(tmp_path, database_url, sensitive_properties=plain)
    with_it = collect_settings(tmp_path, database_url, sensitive_properties=(*plain, "risk_answer"))

    async def ingest(settings: CollectSettings, value: str) -> list[tuple[dict[str, str], list[str]]]:
        async with running_service(settings) as (service, _):
            (outcome,) = await service.ingest([make_event("survey", "c1", risk_answer=value, note="n")])
            assert outcome.status == ACCEPTED
            return await _read(service)

    async def scenario() -> None:
        assert await ingest(without, "ZZ-1") == [({"risk_answer": "ZZ-1", "note": "n"}, [])]  # not sensitive yet
        async with running_service(with_it) as (service, _):
            assert await _read(service) == [({"note": "n"}, ["risk_answer"])]
            assert await _read(service, unmask=True) == [({"risk_answer": "ZZ-1", "note": "n"}, [])]
        served = await ingest(with_it, "ZZ-2")  # sealed at ingest
        assert served == [({"note": "n"}, ["risk_answer"])] * 2
        served = await ingest(without, "ZZ-3")  # out of the setting: served as stored
        assert served == [
            ({"risk_answer": "ZZ-1", "note": "n"}, []),
            ({"note": "n"}, ["risk_answer"]),
            ({"risk_answer": "ZZ-3", "note": "n"}, []),
        ]
        async with running_service(with_it) as (service, _):  # back in it: from this start again
            assert await _read(service) == [({"note": "n"}, ["risk_answer"])] * 3

    asyncio.run(scenario())


def test_the_sensitive_names_each_start_settles(tmp_path: Path, database_url: str) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, database_url)) as (_, catalog):
            first = catalog.settle_sensitive_names(["a", "b"], 100)
            assert first == {"a": 100, "b": 100}
            assert catalog.settle_sensitive_names(["b", "c"], 200) == {"b": 100, "c": 200}  # a forgotten
            assert catalog.settle_sensitive_names(["a", "b", "c"], 300) == {"a": 300, "b": 100, "c": 200}

    asyncio.run(scenario())


@pytest.mark.parametrize("dialect_name", ["dm", "opengauss", "postgresql", "sqlite"])
def test_the_sensitive_name_table_and_its_statements_compile_for_every_database(dialect_name: str) -> None:
    migration = Path(SCHEMA.migrations_dir) / "versions" / "collect_0006_sensitive_name.py"
    upgrade = offline_migration_sql(migration, dialect_name, "upgrade")
    assert "CREATE TABLE collect_sensitive_name" in upgrade and "PRIMARY KEY (name)" in upgrade
    assert "DROP TABLE collect_sensitive_name" in offline_migration_sql(migration, dialect_name, "downgrade")
    table = SCHEMA.metadata.tables["collect_sensitive_name"]
    dialect = make_dialect(dialect_name)
    for statement in (
        sa.select(table.c.name, table.c.since_us),
        sa.delete(table).where(table.c.name.in_(["a", "b"])),
        sa.insert(table),
    ):
        assert "collect_sensitive_name" in str(statement.compile(dialect=dialect))


def test_a_name_of_the_setting_counts_from_the_newest_receive_time_when_the_clock_is_behind_it(
    tmp_path: Path, database_url: str
) -> None:
    """Receive times never go back (a log's are at least its newest): an event stored in clear with a time ahead of the
    clock (another collector's clock ahead, or this one's stepped back) is withheld after a start that adds the name."""
    plain = tuple(n for n in DEFAULT_SENSITIVE_PROPERTIES if n != "risk_answer")

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, database_url, sensitive_properties=plain)) as (
            service,
            _,
        ):
            ahead_us = time.time_ns() // 1000 + 3_600_000_000
            batch, _ = service._prepare([make_event("survey", "c1", risk_answer="ZZ-1")], ahead_us)
            await asyncio.to_thread(service._log.append, [batch], ahead_us)
        settings = collect_settings(tmp_path, database_url, sensitive_properties=(*plain, "risk_answer"))
        async with running_service(settings) as (service, _):
            assert await _read(service) == [({}, ["risk_answer"])]

    asyncio.run(scenario())


@pytest.mark.parametrize("name", ["bad name", "x" * 129, "", "1st"])
def test_sensitive_properties_holds_property_names_only(tmp_path: Path, name: str) -> None:
    """Each name is recorded (128 characters) and matched against property names: one no property can have failed
    every start on a server database, or protected nothing."""
    with pytest.raises(ConfigError, match=r"sensitive_properties .*is not a property name"):
        collect_settings(tmp_path, sensitive_properties=("phone", name))


def test_two_replays_of_one_record_at_once_release_it_once(tmp_path: Path, database_url: str) -> None:
    """Both read the record unreleased: both released it (its replay count up twice), both answers counted it as let in,
    and the log's counts gained a duplicate nobody sent. Now the first releases it; the other is answered as released
    before (not counted), and a failed replay no longer rewrites a released record."""
    settings = collect_settings(tmp_path, database_url, unknown_event_type_policy="quarantine")

    async def scenario() -> None:
        async with running_service(settings) as (service, catalog):
            (first,) = await service.ingest([make_event("fund_view", "c1")])
            assert first.status == REJECTED
            await service.schemas.register(collect_pb2.EventSchema(event_type="fund_view"), 0, "ops")
            records = await asyncio.to_thread(catalog.get_quarantined, [first.quarantine_id])
            (one,), (other,) = await asyncio.gather(service.replay(records), service.replay(records))
            answers = sorted([(o.status, o.message) for o in (one, other)])
            assert answers == [(ACCEPTED, ""), (DUPLICATE, RELEASED_MESSAGE)]
            (record,) = await asyncio.to_thread(catalog.get_quarantined, [first.quarantine_id])
            assert record.replay_count == 1 and record.released_seq is not None
            stats = await service.stats(None, None, [])
            assert [row[:4] for row in stats.by_type] == [("fund_view", 1, 0, 1)]
            catalog.note_failed_replay(first.quarantine_id, "UNKNOWN_EVENT_TYPE", "event_type", "late")
            (record,) = await asyncio.to_thread(catalog.get_quarantined, [first.quarantine_id])
            assert (record.reason, record.replay_count) == ("UNKNOWN_EVENT_TYPE", 1) and record.message != "late"

    asyncio.run(scenario())


def test_replays_of_an_event_whose_id_the_log_holds_with_another_payload_count_nothing(
    tmp_path: Path, database_url: str
) -> None:
    """Each replay of a record left quarantined for PAYLOAD_MISMATCH added a duplicate to the counts: nothing was sent
    or stored."""
    settings = collect_settings(tmp_path, database_url, unknown_event_type_policy="quarantine")

    async def scenario() -> None:
        async with running_service(settings) as (service, catalog):
            held = make_event("fund_view", "c1")
            (first,) = await service.ingest([held])
            await service.schemas.register(collect_pb2.EventSchema(event_type="login"), 0, "ops")
            other = make_event("login", "c1")
            other.event_id = held.event_id  # the same id, another payload, accepted
            (stored,) = await service.ingest([other])
            assert stored.status == ACCEPTED
            await service.schemas.register(collect_pb2.EventSchema(event_type="fund_view"), 0, "ops")
            before = (await service.stats(None, None, [])).by_type
            for _ in range(3):
                records = await asyncio.to_thread(catalog.get_quarantined, [first.quarantine_id])
                (outcome,) = await service.replay(records)
                assert outcome.reason == errors_pb2.ERROR_REASON_PAYLOAD_MISMATCH
            assert (await service.stats(None, None, [])).by_type == before

    asyncio.run(scenario())


def test_a_record_that_cannot_be_opened_is_listed_and_answered_alone(tmp_path: Path) -> None:
    """A quarantine record sealed with a key no longer in the keyring (or damaged) failed, INTERNAL, every listing page
    and every replay that reached it, and with no page token no later call got past it. Now it is listed with only its
    id and type and why, and a replay answers it REJECTED with why, leaving it as it is; the others go on."""
    settings = collect_settings(tmp_path, unknown_event_type_policy="quarantine")

    async def scenario() -> None:
        async with running_service(settings) as (service, catalog):
            outcomes = await service.ingest([make_event("fund_view", f"c{i}") for i in range(3)])
            ids = [o.quarantine_id for o in outcomes]
            quarantine = SCHEMA.metadata.tables["collect_quarantine"]
            damaged = sa.update(quarantine).where(quarantine.c.quarantine_id == ids[1])
            with catalog._db.connection(write=True) as conn:  # sealed under a key id no keyring has
                conn.execute(damaged.values(sealed_event=b"\x01\x03bad" + bytes(40)))
            await service.schemas.register(collect_pb2.EventSchema(event_type="fund_view"), 0, "ops")
            records = await asyncio.to_thread(catalog.get_quarantined, ids)
            event, why = service.try_open_quarantined(next(r for r in records if r.quarantine_id == ids[1]))
            assert (event.event_type, event.event_id) == ("fund_view", outcomes[1].event_id)
            assert "cannot be opened" in why and "'bad'" in why
            answers = {o.quarantine_id: o for o in await service.replay(records)}
            assert [answers[q].status for q in ids] == [ACCEPTED, REJECTED, ACCEPTED]
            assert "cannot be opened" in answers[ids[1]].message
            (left,) = await asyncio.to_thread(catalog.get_quarantined, [ids[1]])
            assert left.released_seq is None and left.replay_count == 0

    asyncio.run(scenario())


def test_the_group_writer_outlives_a_writer_answering_too_few_batches() -> None:
    """A write answering fewer results than batches raised in the writer task outside its error handling: the task
    ended, and every later Ingest waited for ever while health said SERVING."""
    answers = iter([["only one"], ["stored c"]])

    async def scenario() -> tuple[list, object]:
        committer: GroupCommitter = GroupCommitter(lambda batches: next(answers), max_events=100)
        committer.start()
        try:
            first = await asyncio.gather(*(committer.submit(_Batch(n)) for n in "ab"), return_exceptions=True)
            return first, await asyncio.wait_for(committer.submit(_Batch("c")), 5)
        finally:
            await committer.close()

    first, later = asyncio.run(scenario())
    assert all(isinstance(r, RuntimeError) and "answered 1 batches of 2" in str(r) for r in first)
    assert later == "stored c"


@pytest.mark.parametrize("reason", ["DEPENDENCY_UNAVAILABLE", "LOG_CONTENDED"])
def test_a_store_down_midway_through_a_batch_by_batch_write_fails_the_rest_at_once(reason: str) -> None:
    """Each batch waited out the same failure of a store that is down; a lost race (LOG_CONTENDED) fails its batch
    only."""
    calls: list[str] = []

    def write(batches) -> list[str]:
        calls.append("".join(b.name for b in batches))
        if len(batches) > 1:
            raise ValueError("the database refused a value")  # the group: written again batch by batch
        if batches[0].name == "b":
            raise Unavailable("the store failed", reason=reason)
        return [f"stored {batches[0].name}"]

    async def scenario() -> list:
        committer: GroupCommitter = GroupCommitter(write, max_events=100)
        committer.start()
        try:
            return await asyncio.gather(*(committer.submit(_Batch(n)) for n in "abcd"), return_exceptions=True)
        finally:
            await committer.close()

    a, b, c, d = asyncio.run(scenario())
    assert a == "stored a" and isinstance(b, Unavailable)
    if reason == "LOG_CONTENDED":
        assert (c, d) == ("stored c", "stored d") and calls == ["abcd", "a", "b", "c", "d"]
    else:  # c and d not tried, one timeout after the other
        assert all(isinstance(r, Unavailable) for r in (c, d)) and calls == ["abcd", "a", "b"]


def test_bad_schema_registrations_and_filters_get_invalid_argument_not_internal(tmp_path: Path) -> None:
    """From the bad-input audit: a timestamp out of its range among a schema's allowed values, an expected_version one
    more than which no column holds, a page token holding a lone surrogate, and a read filtered by a name no type can
    have (OK and empty, or a follow for ever) or by more types than the database binds (UNAVAILABLE, retried for
    ever)."""

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path)) as (service, _):
            schema = collect_pb2.EventSchema(event_type="kyc")
            schema.properties.add(name="at", type=types_pb2.VALUE_TYPE_TIMESTAMP).allowed_values.add(
                timestamp_value=Timestamp(seconds=2**40)
            )
            with pytest.raises(InvalidArgument, match=r"schema.properties\[0\] holds a value"):
                await service.schemas.register(schema, 0, "ops")
            nan = collect_pb2.EventSchema(event_type="kyc")
            nan.properties.add(name="x", type=types_pb2.VALUE_TYPE_DOUBLE).allowed_values.add(double_value=float("nan"))
            with pytest.raises(InvalidArgument, match="NaN or infinite") as refused:
                await service.schemas.register(nan, 0, "ops")
            assert refused.value.violations[0].field == "schema.properties[0].allowed_values[0]"
            with pytest.raises(InvalidArgument, match="no version a schema can have"):
                await service.schemas.register(collect_pb2.EventSchema(event_type="kyc"), 2**63 - 1, "ops")
            forged = encode_token("event_schemas", {"after": "\ud800"})
            with pytest.raises(InvalidArgument, match="not a token returned by this listing"):
                decode_token(forged, "event_schemas")
            for request, field in (
                (collect_pb2.ReadEventsRequest(event_types=["Bad Type"]), "event_types[0]"),
                (collect_pb2.ReadEventsRequest(event_types=[f"t{i}" for i in range(1001)]), "event_types"),
            ):
                with pytest.raises(InvalidArgument) as refused:
                    [e async for e in service.read(request, frozenset())]
                assert refused.value.violations[0].field == field
            with pytest.raises(InvalidArgument, match="at most 1000"):
                await service.stats(None, None, [f"t{i}" for i in range(1001)])

    asyncio.run(scenario())


def test_rejection_messages_say_how_to_fix_the_event(tmp_path: Path) -> None:
    """The messages named the fault but not the rule: the type's and a property name's length and form, the time
    window and the server's time, a timestamp's range."""
    settings = collect_settings(tmp_path, out_of_range_time_policy="quarantine", max_future_skew_seconds=300)

    async def scenario() -> None:
        async with running_service(settings) as (service, _):
            long_type, bad_name, future, stamp = (make_event("login", f"c{i}") for i in range(4))
            long_type.event_type = "t" * 200
            bad_name.properties["1st"].string_value = "x"
            future.occurred_at.FromMicroseconds(time.time_ns() // 1000 + 3_600_000_000)
            stamp.properties["at"].timestamp_value.seconds = 2**40
            messages = [o.message for o in await service.ingest([long_type, bad_name, future, stamp])]
            assert "at most 127 characters" in messages[0]
            assert "a letter, _ or $ first" in messages[1] and "at most 128 characters" in messages[1]
            assert "more than 300 s after the server's time (20" in messages[2]
            assert "0001-01-01 to 9999-12-31 UTC" in messages[3]

    asyncio.run(scenario())
