"""Defects found by a review of svc_collect and the log client (December 2026, numbered as in that review), each
pinned by a test that failed before its fix: NUL characters on PostgreSQL, cursors beyond the head, a NATS outage,
replay times, JetStream shards, bad read input and the log client's retries."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from collect_helpers import collect_settings, ingest_when_back, make_event, running_service
from conftest import NatsServer, free_port
from google.protobuf import timestamp_pb2
from grpc import aio

from svc_collect import service as service_module
from svc_collect.committer import GroupCommitter
from svc_collect.server import CollectServicer, EventSchemaServicer, QuarantineServicer
from svc_collect.service import ACCEPTED, REJECTED
from svc_collect.store._jetstream_parts import shard_of
from svc_common.errors import InvalidArgument, QimingError, ResourceExhausted, Unavailable
from svc_common.logclient import CollectClient, RetryPolicy
from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import errors_pb2, types_pb2
from svc_common.server._errors import to_status

R = errors_pb2.ErrorReason


@pytest.fixture(params=["postgresql", "jetstream"])
def postgres_backend(request: pytest.FixtureRequest) -> dict[str, str]:
    """The service database on PostgreSQL, with the embedded log, or with JetStream's (quarantine and counts
    stay in the service database)."""
    values = {"database_url": request.getfixturevalue("database_url_postgresql")}
    if request.param == "jetstream":
        server = request.getfixturevalue("jetstream_server")
        name = f"t{uuid.uuid4().hex[:12]}"
        values |= {
            "log_backend": "jetstream",
            "nats_url": server.url,
            "jetstream_stream": name,
            "jetstream_subject_prefix": f"{name}.events",
        }
    return values


# -- #1: NUL characters ----------------------------------------------------------------------------


def _with_nul(kind: str):
    event = make_event()
    if kind == "user_id":
        event.user_id = "c1\x00x"
    elif kind == "anonymous_id":
        event.anonymous_id = "dev\x00"
    elif kind == "session_id":
        event.session_id = "s\x00"
    elif kind == "identities[0].value":
        event.identities.add(type=types_pb2.ID_TYPE_FUND_ACCOUNT, value="f\x00")
    elif kind == "event_type":
        event.event_type = "bad\x00type"
    elif kind == "properties":
        event.properties["p\x00q"].string_value = "v"
    return event


NUL_CASES = [
    ("user_id", R.ERROR_REASON_VALUE_NOT_ALLOWED, "user_id"),
    ("anonymous_id", R.ERROR_REASON_VALUE_NOT_ALLOWED, "anonymous_id"),
    ("session_id", R.ERROR_REASON_VALUE_NOT_ALLOWED, "session_id"),
    ("identities[0].value", R.ERROR_REASON_VALUE_NOT_ALLOWED, "identities[0].value"),
    ("event_type", R.ERROR_REASON_INVALID_NAME, "event_type"),
    ("properties", R.ERROR_REASON_INVALID_NAME, "properties.p\\x00q"),
]


def test_nul_characters_reject_their_event_alone_on_postgresql(
    postgres_backend: dict[str, str], tmp_path: Path
) -> None:
    """A NUL in an id, a rejected type or a property name once failed the whole group commit on PostgreSQL: the
    sender and every other client of the group got INTERNAL, and the sender's retries failed for ever."""

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, **postgres_backend)) as (service, catalog):
            for kind, reason, field in NUL_CASES:
                bad, fine = _with_nul(kind), make_event(user_id="c2")
                others = [make_event(user_id="c3") for _ in range(3)]
                # Concurrent: both batches share one group commit.
                mine, theirs = await asyncio.gather(service.ingest([fine, bad]), service.ingest(others))
                assert [o.status for o in theirs] == [ACCEPTED] * 3, kind
                assert [o.status for o in mine] == [ACCEPTED, REJECTED], kind
                assert (mine[1].reason, mine[1].field) == (reason, field), kind
                assert "\x00" not in mine[1].field
            records = catalog.list_quarantine(limit=100)
            assert len(records) == len(NUL_CASES)
            assert all("\x00" not in r.event_type + r.field_path + r.message for r in records)
            assert "bad\\x00type" in {r.event_type for r in records}
            # The counts are stored too (under "(invalid)", as every type that is not a valid name: 0.2.6).
            by_type = {t: counts for t, *counts in (await service.stats(None, None, ())).by_type}
            assert by_type["(invalid)"] == [0, 0, 1]

    asyncio.run(scenario())


def test_nul_in_read_filters_and_schemas_is_invalid_argument(postgres_backend: dict[str, str], tmp_path: Path) -> None:
    async def drain(service, **request) -> None:
        async for _ in service.read(collect_pb2.ReadEventsRequest(**request), frozenset()):
            pass

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, **postgres_backend)) as (service, _):
            await service.ingest([make_event()])
            customer = types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value="c\x00")
            for call, field in [
                (drain(service, user=customer), "user.value"),
                (drain(service, event_types=["page_view", "a\x00"]), "event_types[1]"),
                (service.stats(None, None, ["a\x00"]), "event_types[0]"),
                (service.schemas.get("t\x00"), "event_type"),
                (
                    service.schemas.register(collect_pb2.EventSchema(event_type="t1", description="d\x00"), 0, "me"),
                    "schema.description",
                ),
                (
                    EventSchemaServicer(service).ListEventSchemas(
                        collect_pb2.ListEventSchemasRequest(
                            page={"page_token": _token({"after": "a\x00"}, "event_schemas")}
                        ),
                        None,
                    ),
                    "page.page_token",
                ),
            ]:
                with pytest.raises(InvalidArgument) as caught:
                    await call
                assert [v.field for v in caught.value.violations][:1] == [field]

    asyncio.run(scenario())


class _Batch:
    def __init__(self, name: str) -> None:
        self.name = name

    def size(self) -> int:
        return 1


def test_a_failed_group_commit_fails_only_the_batch_at_fault() -> None:
    """Defence in depth behind validation: whatever a database refuses fails its own batch, not the group."""
    groups: list[list[str]] = []

    def write(batches) -> list[str]:
        groups.append([b.name for b in batches])
        if any(b.name == "poison" for b in batches):
            raise ValueError("the database refused a value")
        return [f"stored {b.name}" for b in batches]

    async def scenario() -> list:
        committer: GroupCommitter = GroupCommitter(write, max_events=100)
        committer.start()
        try:
            return await asyncio.gather(
                *(committer.submit(_Batch(n)) for n in ("a", "poison", "b")), return_exceptions=True
            )
        finally:
            await committer.close()

    a, poison, b = asyncio.run(scenario())
    assert (a, b) == ("stored a", "stored b")
    assert isinstance(poison, ValueError)
    assert groups[0] == ["a", "poison", "b"] and sorted(groups[1:]) == [["a"], ["b"], ["poison"]]


def test_an_unavailable_store_fails_the_group_without_writing_batch_by_batch() -> None:
    calls: list[int] = []

    def write(batches) -> list[str]:
        calls.append(len(batches))
        raise Unavailable("database unavailable")

    async def scenario() -> list:
        committer: GroupCommitter = GroupCommitter(write, max_events=100)
        committer.start()
        try:
            return await asyncio.gather(*(committer.submit(_Batch(n)) for n in "abc"), return_exceptions=True)
        finally:
            await committer.close()

    assert all(isinstance(r, Unavailable) for r in asyncio.run(scenario()))
    assert calls == [3]


# -- #5 and #9: cursors beyond the head ---------------------------------------------------------------


async def _read_ids(service, **request) -> list[str]:
    out: list[str] = []
    async for events, _ in service.read(collect_pb2.ReadEventsRequest(**request), frozenset()):
        out.extend(e.event_id for e in events)
    return out


def test_a_cursor_beyond_the_head_is_invalid_cursor(log_backend: dict[str, str], tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, **log_backend)) as (service, _):
            outcomes = await service.ingest([make_event() for _ in range(3)])
            last = outcomes[-1].cursor
            assert await _read_ids(service, after_cursor=last) == []
            assert await _read_ids(service, after_cursor=outcomes[0].cursor) == [o.event_id for o in outcomes[1:]]
            tag = last.partition(".")[0]
            ahead = service.cursor(service.parse_cursor(last) + 1)
            for cursor in (ahead, f"{tag}.{'f' * 20}"):
                with pytest.raises(InvalidArgument) as caught:
                    await _read_ids(service, after_cursor=cursor)
                assert caught.value.reason == "INVALID_CURSOR"
                assert [v.field for v in caught.value.violations] == ["after_cursor"]

    asyncio.run(scenario())


def test_a_consumer_of_a_restored_log_is_told_instead_of_skipping_new_events(tmp_path: Path) -> None:
    """A restored database keeps its log id: a consumer's cursor from after the backup used to be accepted, and
    every new event up to it was skipped."""
    db = tmp_path / "collect.db"
    settings = collect_settings(tmp_path, f"sqlite:///{db}")

    async def ingest(count: int) -> list:
        async with running_service(settings) as (service, _):
            return list(await service.ingest([make_event() for _ in range(count)]))

    async def resume(cursor: str) -> None:
        async with running_service(settings) as (service, _):
            await service.ingest([make_event() for _ in range(3)])
            await _read_ids(service, after_cursor=cursor)

    asyncio.run(ingest(2))
    backup = db.read_bytes()
    stored_by_consumer = asyncio.run(ingest(5))[-1].cursor
    db.write_bytes(backup)
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with pytest.raises(InvalidArgument, match="beyond the end of this log"):
        asyncio.run(resume(stored_by_consumer))


# -- #4: a NATS outage is UNAVAILABLE ------------------------------------------------------------------


def test_a_nats_outage_is_unavailable_not_internal(tmp_path: Path) -> None:
    """While NATS is down the catch-up after a publish timeout, and every read, timed out with a raw nats
    TimeoutError: INTERNAL, which neither clients nor CollectClient.publish retry."""
    server = NatsServer(tmp_path / "nats", free_port()).start()
    settings = collect_settings(
        tmp_path,
        log_backend="jetstream",
        nats_url=server.url,
        jetstream_stream="OUTAGE",
        jetstream_subject_prefix="outage.events",
        jetstream_publish_timeout_millis=500,
    )

    async def scenario() -> None:
        async with running_service(settings) as (service, _):
            (before,) = await service.ingest([make_event()])
            assert before.status == ACCEPTED
            server.kill()
            try:
                for call in (service.ingest([make_event()]), _read_ids(service)):
                    with pytest.raises(Unavailable) as caught:
                        await call
                    assert caught.value.reason == "LOG_UNAVAILABLE"
            finally:
                server.start()
            # The collector reconnects by itself: the client's retry goes through.
            assert (await ingest_when_back(service)).status == ACCEPTED

    try:
        asyncio.run(scenario())
    finally:
        server.stop()


# -- #10: the log client does not re-send a batch that is too large -----------------------------------


class _ScriptedCollector(collect_pb2_grpc.CollectServiceServicer):
    """Answers each Ingest with the next scripted error, then with success; refuses batches above ``limit``."""

    def __init__(self, errors: list[QimingError], limit: int = 0) -> None:
        self.errors = errors
        self.limit = limit
        self.calls = 0

    async def Ingest(self, request, context):
        self.calls += 1
        if self.errors:
            await context.abort_with_status(to_status(self.errors.pop(0)))
        if self.limit and len(request.events) > self.limit:
            refusal = ResourceExhausted(
                f"batch has {len(request.events)} events; the limit is {self.limit}",
                reason="BATCH_TOO_LARGE",
                metadata={"max_batch_events": str(self.limit)},
            )
            await context.abort_with_status(to_status(refusal))
        results = [
            collect_pb2.EventResult(index=i, event_id=e.event_id, status=ACCEPTED) for i, e in enumerate(request.events)
        ]
        return collect_pb2.IngestResponse(results=results, accepted_count=len(request.events))


@contextlib.asynccontextmanager
async def _scripted_client(
    errors: list[QimingError], limit: int = 0
) -> AsyncIterator[tuple[CollectClient, _ScriptedCollector]]:
    collector = _ScriptedCollector(errors, limit)
    server = aio.server()
    collect_pb2_grpc.add_CollectServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    client = CollectClient(f"127.0.0.1:{port}", retry=RetryPolicy(attempts=6, initial_backoff_millis=1))
    try:
        yield client, collector
    finally:
        await client.close()
        await server.stop(None)


def test_publish_splits_a_batch_too_large_and_retries_the_rest() -> None:
    async def scenario() -> None:
        events = [make_event() for _ in range(12)]
        async with _scripted_client([], limit=5) as (client, collector):
            answer = await client.publish(events)  # refused once, then sent as 5 + 5 + 2: never the same batch again
            assert collector.calls == 4 and answer.accepted_count == 12
            assert [(r.index, r.event_id) for r in answer.results] == [(i, e.event_id) for i, e in enumerate(events)]
        too_large = ResourceExhausted("one event over the message limit", reason="BATCH_TOO_LARGE")
        async with _scripted_client([too_large]) as (client, collector):
            with pytest.raises(ResourceExhausted) as caught:  # a single event: nothing left to split
                await client.publish([make_event()])
            assert collector.calls == 1 and caught.value.reason == "BATCH_TOO_LARGE"
        async with _scripted_client([], limit=3) as (client, collector):  # no limit named: halves
            collector.limit, collector.errors = 3, [ResourceExhausted("too large", reason="BATCH_TOO_LARGE")]
            assert (await client.publish(events[:8])).accepted_count == 8
        # Busy, or the log unavailable (a NATS outage): retried until the collector takes the batch.
        busy = ResourceExhausted("too many requests", reason="RATE_LIMITED")
        down = Unavailable("JetStream is unavailable", reason="LOG_UNAVAILABLE")
        async with _scripted_client([busy, down, down]) as (client, collector):
            assert (await client.publish([make_event()])).accepted_count == 1
            assert collector.calls == 4

    asyncio.run(scenario())


# -- #6: replay judges occurred_at against the original receive time ---------------------------------


@pytest.mark.parametrize("policy", ["quarantine", "flag"])
def test_replay_judges_the_event_time_against_when_it_arrived(
    policy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event on time when it arrived, quarantined for another reason (no schema yet), and replayed after
    the age limit: it used to be refused for good (quarantine policy) or stored with a false too-old flag."""
    settings = collect_settings(
        tmp_path, unknown_event_type_policy="quarantine", out_of_range_time_policy=policy, max_event_age_seconds=60
    )

    async def scenario() -> None:
        async with running_service(settings) as (service, catalog):
            event = make_event("fund_view", occurred_at_us=service_module.now_micros() - 30_000_000)
            (first,) = await service.ingest([event])
            assert (first.status, first.reason) == (REJECTED, R.ERROR_REASON_UNKNOWN_EVENT_TYPE)
            await service.schemas.register(collect_pb2.EventSchema(event_type="fund_view"), 0, "ops")
            real_now = service_module.now_micros
            monkeypatch.setattr(service_module, "now_micros", lambda: real_now() + 3_600_000_000)  # an hour later
            records = await asyncio.to_thread(catalog.get_quarantined, [first.quarantine_id])
            (outcome,) = await service.replay(records)
            assert (outcome.status, outcome.reason) == (ACCEPTED, 0), outcome
            (stored,) = [
                e async for events, _ in service.read(collect_pb2.ReadEventsRequest(), frozenset()) for e in events
            ]
            assert stored.event_id == event.event_id and list(stored.flags) == []

    asyncio.run(scenario())


# -- #3: JetStream with several shards, reads by anonymous id ------------------------------------------


def test_a_read_by_anonymous_id_finds_the_logged_in_events_on_every_shard(
    jetstream_server: NatsServer, tmp_path: Path
) -> None:
    """After login a device's events carry both ids and go to the customer's shard; a read by anonymous id looked
    only in the anonymous id's shard and missed them, silently."""
    name = f"t{uuid.uuid4().hex[:12]}"
    settings = collect_settings(
        tmp_path,
        log_backend="jetstream",
        nats_url=jetstream_server.url,
        jetstream_stream=name,
        jetstream_subject_prefix=f"{name}.events",
        jetstream_shards=4,
    )
    device, customer = "dev-a", "c1"
    assert shard_of(device, 4) != shard_of(customer, 4)

    async def scenario() -> None:
        async with running_service(settings) as (service, _):
            before = make_event(user_id="")
            before.anonymous_id = device
            after = make_event(user_id=customer)
            after.anonymous_id = device
            other = make_event(user_id="c2")
            await service.ingest([before, after, other])
            by_device = types_pb2.UserRef(type=types_pb2.ID_TYPE_ANONYMOUS, value=device)
            assert await _read_ids(service, user=by_device) == [before.event_id, after.event_id]
            by_customer = types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=customer)
            assert await _read_ids(service, user=by_customer) == [after.event_id]

    asyncio.run(scenario())


# -- #9: bad read and list input is INVALID_ARGUMENT, not INTERNAL -------------------------------------


def _token(position: dict, kind: str = "quarantine") -> str:
    raw = json.dumps({"k": kind, "p": position}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_bad_read_and_list_input_is_invalid_argument(tmp_path: Path) -> None:
    far = timestamp_pb2.Timestamp(seconds=10**14)  # beyond year 9999: once an int64 overflow, INTERNAL

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path)) as (service, catalog):
            await service.ingest([make_event(), make_event(event_type="$made_up")])
            collect, quarantine = CollectServicer(service), QuarantineServicer(service, catalog)
            cases = [
                (_read_ids(service, from_received_at=far), "from_received_at"),
                (
                    collect.GetIngestStats(
                        collect_pb2.GetIngestStatsRequest(time_range=types_pb2.TimeRange(end=far)), None
                    ),
                    "time_range.end",
                ),
                (
                    quarantine.ListQuarantinedEvents(collect_pb2.ListQuarantinedEventsRequest(reasons=[9999]), None),
                    "reasons[0]",
                ),
                (
                    quarantine.ReplayQuarantinedEvents(
                        collect_pb2.ReplayQuarantinedEventsRequest(reasons=[R.ERROR_REASON_UNKNOWN_EVENT_TYPE, 9999]),
                        None,
                    ),
                    "reasons[1]",
                ),
            ]
            for position in ({"id": "x"}, {"at": "x", "id": "y"}, {"at": 2**70, "id": "y"}, {"at": 1, "id": 2}):
                request = collect_pb2.ListQuarantinedEventsRequest(page={"page_token": _token(position)})
                cases.append((quarantine.ListQuarantinedEvents(request, None), "page.page_token"))
            for call, field in cases:
                with pytest.raises(InvalidArgument) as caught:
                    await call
                assert [v.field for v in caught.value.violations] == [field]

    asyncio.run(scenario())


# -- #7: an id repeated within one group is compared with the copy the log keeps -----------------------


def test_repeats_in_a_batch_are_compared_with_the_kept_copy(log_backend: dict[str, str], tmp_path: Path) -> None:
    def event(event_id: str, note: str):
        return make_event(event_id=event_id, occurred_at_us=1_764_000_000_000_000, note=note)

    async def mismatches(service, later: list[str]) -> list[bool]:
        event_id = str(uuid.uuid4())
        await service.ingest([event(event_id, "A")])
        outcomes = await service.ingest([event(event_id, note) for note in later])
        return [o.reason == R.ERROR_REASON_PAYLOAD_MISMATCH for o in outcomes]

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, **log_backend)) as (service, _):
            assert await mismatches(service, ["B", "B"]) == [True, True]
            assert await mismatches(service, ["B", "A"]) == [True, False]

    asyncio.run(scenario())


# -- #11 and #8: reads from a receive time ------------------------------------------------------------


def test_a_follow_from_a_time_to_come_gets_nothing_received_before_it(
    log_backend: dict[str, str], tmp_path: Path
) -> None:
    """The start was the head, once: everything appended after it was streamed, received before the time too."""

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, **log_backend)) as (service, _):
            await service.ingest([make_event()])
            later = timestamp_pb2.Timestamp()
            later.FromMicroseconds(service_module.now_micros() + 3_600_000_000)
            request = collect_pb2.ReadEventsRequest(from_received_at=later, follow=True, max_events=1)
            reader = asyncio.ensure_future(anext(service.read(request, frozenset())))
            await asyncio.sleep(0.2)
            await service.ingest([make_event()])
            done, _ = await asyncio.wait([reader], timeout=1.0)
            reader.cancel()
            assert not done, "an event received before from_received_at was streamed"

    asyncio.run(scenario())


def test_a_read_from_a_receive_time_survives_stamps_out_of_order(jetstream_server: NatsServer, tmp_path: Path) -> None:
    """Collectors stamp receive times with their own clocks before publishing, so in the stream they are not in
    order; the binary search for the start could land past an event received at the very time asked for."""
    name = f"t{uuid.uuid4().hex[:12]}"
    settings = {
        "log_backend": "jetstream",
        "nats_url": jetstream_server.url,
        "jetstream_stream": name,
        "jetstream_subject_prefix": f"{name}.events",
        "jetstream_shards": 2,
    }
    assert shard_of("c1", 2) != shard_of("c4", 2)

    async def scenario() -> None:
        async with (
            running_service(collect_settings(tmp_path / "a", **settings)) as (a, _),
            running_service(collect_settings(tmp_path / "b", **settings)) as (b, _),
        ):
            # B's clock 2 s behind A's.
            b._committer._write = lambda batches: b._log.append(batches, service_module.now_micros() - 2_000_000)
            e1, e2, e3 = make_event(user_id="c1"), make_event(user_id="c4"), make_event(user_id="c1")
            for service, event in ((a, e1), (b, e2), (a, e3)):
                await service.ingest([event])
            stored = [e async for events, _ in a.read(collect_pb2.ReadEventsRequest(), frozenset()) for e in events]
            assert [e.event_id for e in stored] == [e1.event_id, e2.event_id, e3.event_id]
            at = stored[0].received_at
            got = [
                e.event_id
                async for events, _ in a.read(collect_pb2.ReadEventsRequest(from_received_at=at), frozenset())
                for e in events
            ]
            assert got[:1] == [e1.event_id] and e3.event_id in got

    asyncio.run(scenario())


def test_a_cursor_stays_valid_when_the_jetstream_stream_aged_out(jetstream_server: NatsServer, tmp_path: Path) -> None:
    """The end of a stream whose packs all aged out (max_age) is still after them: the check of #5 must not refuse
    a consumer's cursor there."""
    name = f"t{uuid.uuid4().hex[:12]}"
    settings = collect_settings(
        tmp_path,
        log_backend="jetstream",
        nats_url=jetstream_server.url,
        jetstream_stream=name,
        jetstream_subject_prefix=f"{name}.events",
    )

    async def scenario() -> None:
        async with running_service(settings) as (service, _):
            outcomes = await service.ingest([make_event(), make_event()])
            connection = await nats.connect(jetstream_server.url)
            try:
                await connection.jetstream().purge_stream(name)
            finally:
                await connection.close()
            assert await _read_ids(service, after_cursor=outcomes[-1].cursor) == []
            (later,) = await service.ingest([make_event()])
            assert await _read_ids(service, after_cursor=outcomes[-1].cursor) == [later.event_id]

    asyncio.run(scenario())
