"""Findings of the svc_collect review of 2026-12-07 (session 22): a stored schema that stopped compiling was dropped
(its level 3 properties then stored in clear), a batch that stored nothing reset the ingest lag, and GetIngestStats
listed rejected events without a type under "(none)" but refused "(none)" as a filter."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from pathlib import Path

import pytest
from collect_helpers import collect_settings, make_event, running_service
from nats.js.errors import NotFoundError

from svc_collect.service import ACCEPTED, REJECTED, CollectService
from svc_collect.store import SchemaRecord
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import errors_pb2, types_pb2

LEVEL_3 = types_pb2.SENSITIVITY_LEVEL_3
STRING = types_pb2.VALUE_TYPE_STRING


def _trade_schema() -> collect_pb2.EventSchema:
    schema = collect_pb2.EventSchema(event_type="trade")
    schema.properties.add(name="risk_answer", type=STRING, sensitivity=LEVEL_3)
    for name in ("side", "stock_code", "channel_code"):
        schema.properties.add(name=name, type=STRING)
    return schema


async def _stored_trade(service: CollectService) -> tuple[list[str], dict[str, str]]:
    (outcome,) = await service.ingest([make_event("trade", "c1", risk_answer="ZZ-secret-2", side="buy")])
    assert outcome.status == ACCEPTED
    request = collect_pb2.ReadEventsRequest(event_types=["trade"])
    (event,) = [e async for events, _ in service.read(request, frozenset()) for e in events]
    return list(event.masked_fields), {k: v.string_value for k, v in event.properties.items()}


@pytest.mark.parametrize("native", [True, False])
def test_a_lowered_property_limit_leaves_stored_schemas_in_force(tmp_path: Path, native: bool) -> None:
    """max_properties_per_event limits new versions; lowered below a stored schema's count, the schema stayed out of
    force after a restart, and its level 3 property was stored in clear."""

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, max_properties_per_event=10)) as (service, _):
            await service.schemas.register(_trade_schema(), 0, "ops")
        settings = collect_settings(tmp_path, max_properties_per_event=3, native_checks=native)
        async with running_service(settings) as (service, _):
            assert service.schemas.schema_for("trade") is not None
            masked, values = await _stored_trade(service)
            assert masked == ["risk_answer"] and values == {"side": "buy"}

    asyncio.run(scenario())


SECRET = {"name": "risk_answer", "type": "VALUE_TYPE_STRING", "sensitivity": "SENSITIVITY_LEVEL_3"}
NEWER = [  # (what another release stored, what the message names)
    (SECRET | {"protection": "PROTECTION_MODE_NONE"}, "must be protected at rest"),  # a rule of this release
    (SECRET | {"protection": "PROTECTION_MODE_TOKENIZE"}, "TOKENIZE"),  # an enum value of a newer one
    (SECRET | {"keep_days": 9}, "keep_days"),  # a field of a newer one
]


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize(("spec", "named"), NEWER, ids=["rule", "enum value", "field"])
def test_a_stored_schema_this_release_cannot_apply_quarantines_its_events(
    tmp_path: Path, native: bool, spec: dict[str, object], named: str
) -> None:
    """A stored version this release cannot apply (a rule it has and the storing release had not; an enum value or a
    field of a newer release, which stopped the start) is not ignored: its type's events are quarantined, sealed,
    with a message naming the schema, whatever the unknown-type policy; masked reads of the events stored before and
    the masked quarantine listing withhold every property the version declares."""
    name = "risk_answer"

    async def scenario() -> None:
        settings = collect_settings(tmp_path, native_checks=native)
        async with running_service(settings) as (service, catalog):
            old = [*await service.ingest([make_event("trade", "c1", side="sell", **{name: "ZZ-old"})])]
            old += await service.ingest([make_event("trade", "c2", side="hold")])
            assert [o.status for o in old] == [ACCEPTED] * 2  # no schema yet: stored as sent
            properties = [spec, {"name": "side", "type": "VALUE_TYPE_STRING"}]
            record = SchemaRecord("trade", 1, "", properties, False, dt.datetime.now(dt.UTC))  # registered now
            catalog.add_schema(record, 0, "newer")  # as a release with other rules stored it
        async with running_service(settings) as (service, catalog):
            event = make_event("trade", "c1", side="buy", **{name: "ZZ-secret-3"})
            (outcome,) = await service.ingest([event])
            assert outcome.status == REJECTED
            assert outcome.reason == errors_pb2.ERROR_REASON_UNKNOWN_EVENT_TYPE
            assert "stored schema of 'trade' (version 1) cannot be applied" in outcome.message
            assert named in outcome.message  # what this release refused
            (ok,) = await service.ingest([make_event("login", "c1")])
            assert ok.status == ACCEPTED  # other types are unaffected
            request = collect_pb2.ReadEventsRequest(event_types=["trade"])
            stored = [e async for events, _ in service.read(request, frozenset()) for e in events]
            assert [dict(e.properties) for e in stored] == [{}, {}]
            assert [sorted(e.masked_fields) for e in stored] == [sorted([name, "side"]), ["side"]]
            (record,) = catalog.list_quarantine(event_types=["trade"])
            listed = service.masked(service.open_quarantined(record))
            assert dict(listed.properties) == {} and sorted(listed.masked_fields) == sorted([name, "side"])

    asyncio.run(scenario())


def test_a_batch_that_stores_nothing_leaves_the_ingest_lag(tmp_path: Path, database_url: str) -> None:
    """The lag is the time since the newest event the log holds: an all-rejected batch moved it back to zero."""

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, database_url)) as (service, _):
            (ok,) = await service.ingest([make_event("login", "c1")])
            assert ok.status == ACCEPTED
            await asyncio.sleep(0.6)
            bad = make_event("login", "c1")
            bad.event_id = "not-a-uuid"
            (rejected,) = await service.ingest([bad])
            assert rejected.status == REJECTED
            assert (await service.stats(None, None, [])).ingest_lag_millis >= 500

    asyncio.run(scenario())


def test_stats_filter_by_the_type_rejected_events_without_one_are_counted_under(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path)) as (service, _):
            untyped = make_event("login", "c1")
            untyped.event_type = ""
            await service.ingest([untyped, make_event("login", "c2")])
            stats = await service.stats(None, None, [])
            assert [row[0] for row in stats.by_type] == ["(none)", "login"]
            only = await service.stats(None, time.time_ns() // 1000 + 60_000_000, ["(none)"])
            assert [row[:4] for row in only.by_type] == [("(none)", 0, 0, 1)]

    asyncio.run(scenario())


def _answer_schema(
    protection: int = 0, sensitivity: int = types_pb2.SENSITIVITY_LEVEL_1, name: str = "risk_answer"
) -> collect_pb2.EventSchema:
    schema = collect_pb2.EventSchema(event_type="survey")
    schema.properties.add(name=name, type=STRING, sensitivity=sensitivity, protection=protection)
    schema.properties.add(name="page", type=STRING)
    return schema


async def _masked_reads(service: CollectService, name: str) -> list[list[tuple[str, str, list[str]]]]:
    """What a masked read serves, in process and as encoded for the wire: (page, risk_answer, masked_fields)."""
    request = collect_pb2.ReadEventsRequest(event_types=["survey"])
    direct = [e async for events, _ in service.read(request, frozenset()) for e in events]
    encoded = [
        e
        async for data in service.read_encoded(request, frozenset())
        for e in collect_pb2.ReadEventsResponse.FromString(data).events
    ]
    return [
        [(e.properties["page"].string_value, e.properties[name].string_value, list(e.masked_fields)) for e in r]
        for r in (direct, encoded)
    ]


@pytest.mark.parametrize("mode", ["encrypt", "pseudonymize"])
@pytest.mark.parametrize("name", ["risk_answer", "r" * 128], ids=["short", "128 characters"])
def test_masked_reads_withhold_values_stored_before_their_level_was_raised(
    tmp_path: Path, mode: str, name: str
) -> None:
    """A property raised to level 3 in a later schema version: the events stored before kept the value in clear, and
    masked reads served it. They now leave it out (listed in masked_fields), as for the events protected at ingest;
    an unmasked read serves it as stored."""
    protection = types_pb2.PROTECTION_MODE_ENCRYPT if mode == "encrypt" else types_pb2.PROTECTION_MODE_PSEUDONYMIZE

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path)) as (service, _):
            await service.schemas.register(_answer_schema(name=name), 0, "ops")
            (old,) = await service.ingest([make_event("survey", "c1", page="one", **{name: "ZZ-old"})])
            before = await _masked_reads(service, name)
            assert before[0] == before[1] == [("one", "ZZ-old", [])]
            await service.schemas.register(_answer_schema(protection, LEVEL_3, name), 1, "ops")
            (new,) = await service.ingest([make_event("survey", "c1", page="two", **{name: "ZZ-new"})])
            assert old.status == new.status == ACCEPTED
            direct, encoded = await _masked_reads(service, name)
            assert direct == encoded
            assert direct[0] == ("one", "", [name])
            if mode == "encrypt":
                assert direct[1] == ("two", "", [name])
            else:  # the new event's value is its pseudonym, kept
                assert direct[1][0] == "two" and direct[1][1].startswith("ps1:") and direct[1][2] == []
            request = collect_pb2.ReadEventsRequest(event_types=["survey"], unmask=True)
            unmasked = [e async for events, _ in service.read(request, frozenset({"unmask"})) for e in events]
            assert unmasked[0].properties[name].string_value == "ZZ-old"

    asyncio.run(scenario())


@pytest.mark.parametrize("replicas", [1, 3])
def test_reads_ask_the_leader_when_the_stream_has_replicas(tmp_path: Path, replicas: int) -> None:
    """A direct get may be answered by a replica behind the leader (NATS documents it): with several replicas, a
    filtered reader whose head came from the leader skipped the newest events for good. Reads then use the stream's
    leader; a single server keeps direct gets. (A three-node cluster is not run here: the calls are recorded.)"""
    from svc_collect.store._jetstream_parts import JetStreamConfig
    from svc_collect.store._jetstream_read import StreamReads

    settings = collect_settings(tmp_path, log_backend="jetstream", jetstream_replicas=replicas)
    config = JetStreamConfig.from_settings(settings)
    calls: list[dict[str, object]] = []

    class Recording:
        async def get_msg(self, stream: str, **options: object) -> object:
            calls.append(options)
            raise NotFoundError

    reads = StreamReads()
    reads._config, reads._js, reads._packs = config, Recording(), {}  # an empty cache: _pack_at asks the stream
    assert asyncio.run(reads._next_msg(5, "qiming.events.>")) is None
    asyncio.run(reads._pack_at(7))
    assert [c["direct"] for c in calls] == [replicas == 1] * 2
    assert calls[0]["next"] is True and calls[0]["subject"] == "qiming.events.>"


def test_protected_names_date_from_the_run_of_versions_protecting_them() -> None:
    """Masked reads search only events received before the newest version that began to protect a name (plus two
    minutes): a name protected since v1 dates from v1; one a version left unprotected dates from the version after."""
    from svc_collect.schemas import _protected_names

    day = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    secret = {"name": "answer", "type": "VALUE_TYPE_STRING", "sensitivity": "SENSITIVITY_LEVEL_3"}
    plain = {"name": "answer", "type": "VALUE_TYPE_STRING"}
    phone = {"name": "phone", "type": "VALUE_TYPE_STRING", "protection": "PROTECTION_MODE_PSEUDONYMIZE"}

    def record(event_type: str, version: int, *properties: dict[str, str]) -> SchemaRecord:
        return SchemaRecord(event_type, version, "", list(properties), False, day + dt.timedelta(days=version))

    def us(days: int) -> int:
        return int((day + dt.timedelta(days=days)).timestamp() * 1_000_000) + 120_000_000

    assert _protected_names([]).names == frozenset()
    steady = _protected_names([record("a", 1, secret, phone), record("a", 2, secret, phone, plain | {"name": "x"})])
    assert steady.names == {"answer", "phone"} and steady.until_us == us(1)
    broken = _protected_names([record("a", 1, secret), record("a", 2, plain), record("a", 3, secret), record("b", 1)])
    assert broken.names == {"answer"} and broken.until_us == us(3)
    lowered = _protected_names([record("a", 1, secret), record("a", 2, plain)])
    assert lowered.names == frozenset()


def test_jetstream_delays_of_a_range_hours_back_are_sampled(jetstream_server, tmp_path: Path) -> None:
    """The delay sample walked back from the stream's newest pack and stopped after 256: on a busy stream a range in
    the past got no sample, and its p50 and p99 read 0. It starts at the range's end now."""
    from collect_helpers import jetstream_settings

    name = f"t{uuid.uuid4().hex[:12]}"  # a stream of its own on the tests' nats-server

    async def scenario() -> None:
        async with running_service(jetstream_settings(tmp_path, jetstream_server, name)) as (service, _):
            log = service._log
            base = 1_700_000_000_000_000
            for i in range(300):  # 300 packs, one a millisecond of receive time, each event 7 µs late
                at = base + i * 1_000
                batch, _ = service._prepare([make_event(occurred_at_us=at - 7)], at)
                await asyncio.to_thread(log.append, [batch], at)
            assert await asyncio.to_thread(log.delivery_delays_us, base + 10_000, base + 20_000, 100) == [7] * 10
            assert await asyncio.to_thread(log.delivery_delays_us, base + 290_000, base + 400_000, 100) == [7] * 10

    asyncio.run(scenario())


def test_jetstream_a_publish_that_timed_out_is_not_sent_again_over_another_collectors_copy(
    jetstream_server, tmp_path: Path
) -> None:
    """Collector A's publish times out; meanwhile the client, giving up, sent the batch to B, which stored it. A caught
    up, did not find its own pack, and sent it again: the event was in the log twice, both answered ACCEPTED. Now A
    sees the event among B's pack and answers DUPLICATE (review 2026-12-07)."""
    import nats.errors
    from collect_helpers import jetstream_settings

    settings = jetstream_settings(tmp_path, jetstream_server, f"t{uuid.uuid4().hex[:12]}")

    async def scenario() -> None:
        async with running_service(settings) as (a, _), running_service(settings) as (b, _):
            await a.ingest([make_event("login", "c0")])  # both have the stream open
            now = time.time_ns() // 1000
            event = make_event("login", "c1")
            batch_a, _ = a._prepare([event], now)
            batch_b, _ = b._prepare([event], now)
            publish = a._log._js.publish
            calls: list[int] = []

            async def timing_out(*args: object, **options: object) -> object:
                calls.append(1)
                if len(calls) == 1:  # B stores the batch while A waits for its ack, which never comes
                    await asyncio.get_running_loop().run_in_executor(None, b._log.append, [batch_b], now)
                    raise nats.errors.TimeoutError
                return await publish(*args, **options)

            a._log._js.publish = timing_out
            (stored_b,) = (await asyncio.to_thread(a._log.append, [batch_a], now))[0]
            assert stored_b.duplicate and not stored_b.payload_mismatch
            everything = [e async for events, _ in a.read(collect_pb2.ReadEventsRequest(), frozenset()) for e in events]
            assert [e.event_id for e in everything].count(event.event_id) == 1  # stored once

    asyncio.run(scenario())


def test_postgresql_a_refused_head_lock_leaves_the_kept_connection_usable(
    tmp_path: Path, database_url_postgresql
) -> None:
    """A refusal of the head's lock other than a lost connection (a read-only database, a privilege, here a search
    path without the table) left the kept connection inside its failed transaction: every later append failed until
    a restart. The connection is rolled back now, and the collector ingests again once the cause is gone."""

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, database_url_postgresql)) as (service, _):
            (first,) = await service.ingest([make_event("login", "c1")])
            assert first.status == ACCEPTED
            held = service._log._pg._held
            held.execute("SET search_path TO nowhere")
            with pytest.raises(Exception):  # noqa: B017 - whatever the driver's error, the call fails
                await service.ingest([make_event("login", "c2")])
            held.execute("RESET search_path")  # the cause gone (refused inside a failed transaction before)
            (again,) = await service.ingest([make_event("login", "c3")])
            assert again.status == ACCEPTED

    asyncio.run(scenario())
