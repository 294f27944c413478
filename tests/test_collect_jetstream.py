"""What only the JetStream backend of the log has: packs, shards, collectors sharing a stream, the
de-duplication window, and the stream's own checks at start. The behaviour shared with the embedded log
is tested on every backend in test_collect_service.py."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import nats
import pytest
from collect_helpers import collect_settings, jetstream_settings, make_event, running_service
from conftest import NatsServer
from google.protobuf.message import DecodeError
from nats.js.errors import APIError

from svc_collect.service import ACCEPTED, DUPLICATE
from svc_collect.store._jetstream_parts import PACK_BITS, DedupIndex, Pack, shard_of
from svc_common.errors import ConfigError, StartupError
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.collect.v1.log_pack_pb2 import LogPack
from svc_common.pb.qiming.common.v1 import types_pb2

pytestmark = pytest.mark.nats


async def _read(service, **request):
    out = []
    async for events, cursor in service.read(collect_pb2.ReadEventsRequest(**request), frozenset()):
        out.append(([e.event_id for e in events], cursor))
    return out


def test_large_groups_split_into_packs_and_reads_resume_inside_a_pack(
    jetstream_server: NatsServer, tmp_path: Path
) -> None:
    name = f"p{uuid.uuid4().hex[:10]}"
    settings = jetstream_settings(tmp_path, jetstream_server, name, jetstream_max_pack_bytes=10_000, jetstream_shards=1)

    async def scenario() -> None:
        async with running_service(settings) as (service, _):
            events = [make_event(user_id="c1", note="x" * 1500, n=i) for i in range(40)]
            outcomes = await service.ingest(events)
            assert all(o.status == ACCEPTED for o in outcomes)
            positions = [service.parse_cursor(o.cursor) for o in outcomes]
            assert positions == sorted(positions)
            stream_seqs = {p >> PACK_BITS for p in positions}
            assert len(stream_seqs) >= 5, "40 events of 1.5 kB must not fit in one 10 kB pack"
            # Small read batches cut packs in the middle; each resumes exactly after its cursor.
            pages = await _read(service, batch_size=3)
            assert [i for ids, _ in pages for i in ids] == [e.event_id for e in events]
            middle = pages[4][1]
            rest = await _read(service, after_cursor=middle, batch_size=7)
            assert [i for ids, _ in rest for i in ids] == [e.event_id for e in events[15:]]

    asyncio.run(scenario())


def test_collectors_sharing_a_stream_stay_exactly_once(jetstream_server: NatsServer, tmp_path: Path) -> None:
    """Two collectors with databases of their own: one stream, one de-duplication, one cursor space."""
    name = f"s{uuid.uuid4().hex[:10]}"
    one = jetstream_settings(tmp_path / "one", jetstream_server, name, jetstream_shards=4)
    two = jetstream_settings(tmp_path / "two", jetstream_server, name, jetstream_shards=4)

    async def scenario() -> None:
        async with running_service(one) as (a, _), running_service(two) as (b, _):
            early = [make_event(user_id=f"c{i}") for i in range(20)]
            first = await a.ingest(early)
            # b started before a wrote these: its publish is refused (expected last subject sequence),
            # it reads what a wrote, and reports the ids as duplicates with a's positions.
            again = await b.ingest(early)
            assert [o.status for o in again] == [DUPLICATE] * 20
            assert [o.cursor for o in again] == [o.cursor for o in first]
            late = [make_event(user_id=f"c{i}") for i in range(20)]
            results = await asyncio.gather(a.ingest(late[:12]), b.ingest(late[8:]))
            accepted = [o.event_id for r in results for o in r if o.status == ACCEPTED]
            assert sorted(accepted) == sorted(e.event_id for e in late)
            ids_a = [i for ids, _ in await _read(a) for i in ids]
            ids_b = [i for ids, _ in await _read(b) for i in ids]
            assert ids_a == ids_b and len(ids_a) == len(set(ids_a)) == 40

    asyncio.run(scenario())


def test_a_refused_pack_of_other_ids_is_published_again_as_it_was(jetstream_server: NatsServer, tmp_path: Path) -> None:
    """b's view of the shard is stale (a wrote since): JetStream refuses b's pack, b reads a's pack, finds none
    of its own ids there and publishes the very same bytes again, placed after a's."""
    name = f"r{uuid.uuid4().hex[:10]}"
    one = jetstream_settings(tmp_path / "one", jetstream_server, name, jetstream_shards=1)
    two = jetstream_settings(tmp_path / "two", jetstream_server, name, jetstream_shards=1)

    async def scenario() -> None:
        async with running_service(one) as (a, _), running_service(two) as (b, _):
            first = await a.ingest([make_event(user_id=f"a{i}") for i in range(5)])
            published: list[bytes] = []
            real_publish = b._log._js.publish

            async def recording(subject, data, **kwargs):
                published.append(data)
                return await real_publish(subject, data, **kwargs)

            real_build = b._log._encoded
            builds: list[int] = []

            def counting(pack):
                builds.append(len(pack))
                return real_build(pack)

            b._log._js.publish = recording
            b._log._encoded = counting
            second = await b.ingest([make_event(user_id=f"b{i}") for i in range(5)])
            assert [o.status for o in second] == [ACCEPTED] * 5
            assert len(published) == 2 and published[0] == published[1]  # refused once, then the same bytes
            assert builds == [5]  # built once
            last_of_a = max(b.parse_cursor(o.cursor) for o in first)
            assert min(b.parse_cursor(o.cursor) for o in second) > last_of_a
            ids_b = [i for ids, _ in await _read(b) for i in ids]
            assert ids_b == [o.event_id for o in first] + [o.event_id for o in second]

    asyncio.run(scenario())


def test_packs_of_an_earlier_release_are_read_and_de_duplicated(jetstream_server: NatsServer, tmp_path: Path) -> None:
    """Packs were written row by row (LogPack.records) before they were written in columns: a stream holding
    such a pack is read, and its ids are known to the de-duplication index, after an upgrade."""
    name = f"o{uuid.uuid4().hex[:10]}"
    settings = jetstream_settings(tmp_path, jetstream_server, name, jetstream_shards=1)
    old_event = make_event(user_id="c1", n=1)
    old_event.event_id = str(uuid.uuid4())

    async def scenario() -> None:
        async with running_service(settings):
            pass  # the stream, as the earlier release made it
        nc = await nats.connect(jetstream_server.url)
        try:
            pack = LogPack(received_at_us=time.time_ns() // 1000)
            pack.records.add(
                event_id=old_event.event_id,
                event_type=old_event.event_type,
                user_id="c1",
                occurred_at_us=old_event.occurred_at.ToMicroseconds(),
                fingerprint="f" * 32,
                payload=old_event.SerializeToString(),
            )
            await nc.jetstream().publish(f"{name}.events.0", pack.SerializeToString(), stream=name)
        finally:
            await nc.close()
        async with running_service(settings) as (service, _):
            fresh = make_event(user_id="c1", n=2)
            outcomes = list(await service.ingest([old_event, fresh]))
            assert [o.status for o in outcomes] == [DUPLICATE, ACCEPTED]
            pages = await _read(service)
            assert [i for ids, _ in pages for i in ids] == [old_event.event_id, fresh.event_id]
            by_user = await _read(
                service, user={"type": types_pb2.ID_TYPE_CUSTOMER, "value": "c1"}, event_types=[old_event.event_type]
            )
            assert [i for ids, _ in by_user for i in ids] == [old_event.event_id, fresh.event_id]

    asyncio.run(scenario())


def test_packs_are_written_as_rows_on_a_stream_of_an_earlier_release_until_columns_are_asked_for(
    jetstream_server: NatsServer, tmp_path: Path
) -> None:
    """A stream made by an earlier release keeps getting the row form, which collectors of that release read during
    a rolling upgrade; ``jetstream_pack_format = columns`` marks the stream, after which columns are written."""
    name = f"p{uuid.uuid4().hex[:10]}"

    async def ingest(tag: str, **overrides) -> list[str]:
        async with running_service(jetstream_settings(tmp_path / tag, jetstream_server, name, **overrides)) as (
            service,
            _,
        ):
            return [o.event_id for o in await service.ingest([make_event(user_id=f"{tag}{i}") for i in range(5)])]

    async def stream() -> tuple[str, list[LogPack]]:
        nc = await nats.connect(jetstream_server.url)
        try:
            js = nc.jetstream()
            description = (await js.stream_info(name)).config.description
            packs, seq = [], 1
            while True:
                try:
                    msg = await js.get_msg(name, seq=seq, subject=f"{name}.events.>", direct=True, next=True)
                except nats.js.errors.NotFoundError:
                    return description, packs
                packs.append(LogPack.FromString(msg.data))
                seq = msg.seq + 1
        finally:
            await nc.close()

    async def as_an_earlier_release_made_it() -> None:
        nc = await nats.connect(jetstream_server.url)
        try:
            js = nc.jetstream()
            await js.add_stream(
                nats.js.api.StreamConfig(
                    name=name,
                    description="Qiming event log (svc_collect); packs of events, see docs/collect.md; shards=1",
                    subjects=[f"{name}.events.*"],
                    allow_direct=True,
                )
            )
        finally:
            await nc.close()

    async def scenario() -> None:
        await as_an_earlier_release_made_it()
        first = await ingest("a")
        description, packs = await stream()
        assert "packs=columns" not in description
        assert [len(p.records) for p in packs] == [5] and not packs[0].event_ids  # rows
        second = await ingest("b", jetstream_pack_format="columns")
        third = await ingest("c")  # auto, on the stream now marked
        description, packs = await stream()
        assert "packs=columns" in description
        assert [(len(p.records), len(p.event_ids)) for p in packs] == [(5, 0), (0, 5), (0, 5)]
        async with running_service(jetstream_settings(tmp_path / "d", jetstream_server, name)) as (service, _):
            assert [i for ids, _ in await _read(service) for i in ids] == first + second + third
            again = await service.ingest([make_event(user_id="a0", event_id=first[0])])
            assert [o.status for o in again] == [DUPLICATE]

    asyncio.run(scenario())


def test_users_land_on_their_shard_subject(jetstream_server: NatsServer, tmp_path: Path) -> None:
    name = f"u{uuid.uuid4().hex[:10]}"
    settings = jetstream_settings(tmp_path, jetstream_server, name, jetstream_shards=8)

    async def scenario() -> None:
        async with running_service(settings) as (service, _):
            await service.ingest([make_event(user_id=f"c{i}") for i in range(30)])
        nc = await nats.connect(jetstream_server.url)
        try:
            js = nc.jetstream()
            seq, users = 1, []
            while True:
                try:
                    msg = await js.get_msg(name, seq=seq, subject=f"{name}.events.>", direct=True, next=True)
                except nats.js.errors.NotFoundError:
                    break
                shard = int(msg.subject.rsplit(".", 1)[1])
                for user_id in Pack.decode(msg.data).user_ids:
                    assert shard_of(user_id, 8) == shard
                    users.append(user_id)
                seq = msg.seq + 1
            assert sorted(users) == sorted(f"c{i}" for i in range(30))
        finally:
            await nc.close()

    asyncio.run(scenario())


def test_packs_stay_within_max_pack_bytes_with_multibyte_text(jetstream_server: NatsServer, tmp_path: Path) -> None:
    """Pack sizes are bounded without encoding each record first: no message exceeds the limit."""
    name = f"m{uuid.uuid4().hex[:10]}"
    settings = jetstream_settings(tmp_path, jetstream_server, name, jetstream_max_pack_bytes=10_000, jetstream_shards=1)

    async def scenario() -> None:
        async with running_service(settings) as (service, _):
            events = [make_event(user_id="用户" * 60, note="启" * 300, n=i) for i in range(60)]
            # Bigger than a pack may be, but within what the server takes: published alone.
            big = {f"part{k}": "x" * 5_000 for k in range(5)}
            events[30:30] = [make_event(user_id="c1", **big), make_event(user_id="c2", **big)]
            outcomes = await service.ingest(events)
            assert all(o.status == ACCEPTED for o in outcomes)
        nc = await nats.connect(jetstream_server.url)
        try:
            js = nc.jetstream()
            seq, sizes, stored = 1, [], 0
            while True:
                try:
                    msg = await js.get_msg(name, seq=seq, subject=f"{name}.events.>", direct=True, next=True)
                except nats.js.errors.NotFoundError:
                    break
                records = len(Pack.decode(msg.data))
                sizes.append((len(msg.data), records))
                stored += records
                seq = msg.seq + 1
            assert stored == 62 and len(sizes) >= 8
            assert max(size for size, records in sizes if records > 1) <= 10_000
            assert sorted(size for size, records in sizes if records == 1)[-2] > 20_000
        finally:
            await nc.close()

    asyncio.run(scenario())


def test_a_stream_that_does_not_fit_is_refused_at_start(jetstream_server: NatsServer, tmp_path: Path) -> None:
    name = f"x{uuid.uuid4().hex[:10]}"

    async def make_foreign_stream() -> None:
        nc = await nats.connect(jetstream_server.url)
        try:
            await nc.jetstream().add_stream(name=name, subjects=[f"{name}.other.*"])
        finally:
            await nc.close()

    asyncio.run(make_foreign_stream())

    async def start() -> None:
        async with running_service(jetstream_settings(tmp_path, jetstream_server, name)):
            pass

    with pytest.raises(ConfigError, match=rf"does not hold {name}\.events\.\*"):
        asyncio.run(start())
    nowhere = collect_settings(
        tmp_path / "n", log_backend="jetstream", nats_url="nats://127.0.0.1:1", jetstream_publish_timeout_millis=1000
    )
    with pytest.raises(StartupError, match="cannot reach NATS"):

        async def start_nowhere() -> None:
            async with running_service(nowhere):
                pass

        asyncio.run(start_nowhere())


def test_a_stream_keeps_its_shard_count(jetstream_server: NatsServer, tmp_path: Path) -> None:
    """A user's shard is CRC-32 mod the count: a collector with another count would file users under other
    subjects and per-customer reads would miss their events. The count is recorded at creation and checked."""
    name = f"s{uuid.uuid4().hex[:10]}"

    async def start(shards: int, tag: str) -> list[str]:
        async with running_service(
            jetstream_settings(tmp_path / tag, jetstream_server, name, jetstream_shards=shards)
        ) as (
            service,
            _,
        ):
            await service.ingest([make_event(user_id=f"c{i}") for i in range(20)])
            request = collect_pb2.ReadEventsRequest(user=types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value="c7"))
            return [e.user_id async for events, _ in service.read(request, frozenset()) for e in events]

    assert asyncio.run(start(4, "a")) == ["c7"]
    with pytest.raises(ConfigError, match=r"written with 4 shards, not jetstream_shards=2: set jetstream_shards=4"):
        asyncio.run(start(2, "b"))
    assert asyncio.run(start(4, "c")) == ["c7", "c7"]  # the same count starts again and finds both


def test_a_stream_of_an_earlier_release_is_checked_by_its_subjects(
    jetstream_server: NatsServer, tmp_path: Path
) -> None:
    """Streams made before the count was recorded (16 shards by default then): a smaller count is refused when the
    stream holds subjects beyond it."""
    name = f"o{uuid.uuid4().hex[:10]}"

    async def write(shards: int, tag: str) -> None:
        async with running_service(
            jetstream_settings(tmp_path / tag, jetstream_server, name, jetstream_shards=shards)
        ) as (
            service,
            _,
        ):
            await service.ingest([make_event(user_id=f"c{i}") for i in range(40)])

    async def forget_the_count() -> None:
        nc = await nats.connect(jetstream_server.url)
        try:
            js = nc.jetstream()
            config = (await js.stream_info(name)).config
            config.description = "Qiming event log (svc_collect); packs of events, see docs/collect.md"
            await js.update_stream(config)
        finally:
            await nc.close()

    asyncio.run(write(16, "a"))
    asyncio.run(forget_the_count())
    with pytest.raises(ConfigError, match=r"holds shard subjects up to .*written with more than jetstream_shards=1"):
        asyncio.run(write(1, "b"))
    asyncio.run(write(16, "c"))  # the count it was written with starts (with a warning)


def _log_pack(received_at_us: int, event_ids: list[str], fingerprints: list[str]) -> LogPack:
    """A columnar pack as a collector writes it: every column whole (empty values but the ids and fingerprints)."""
    n = len(event_ids)
    return LogPack(
        received_at_us=received_at_us,
        event_ids=event_ids,
        event_types=["t"] * n,
        user_ids=[""] * n,
        anonymous_ids=[""] * n,
        occurred_at_us=[0] * n,
        fingerprints=fingerprints,
        flags=[0] * n,
        payloads=[b""] * n,
        sealed_values=[b""] * n,
    )


def test_dedup_index_forgets_ids_older_than_its_window() -> None:
    index = DedupIndex(window_us=60_000_000)
    old = LogPack(received_at_us=1_000_000)
    old.records.add(event_id="a", fingerprint="fa")  # the row form of earlier releases
    new = _log_pack(30_000_000, ["b", "a"], ["fb", "other"])
    index.add(1, Pack.decode(old.SerializeToString()))
    index.add(2, Pack.decode(new.SerializeToString()))  # a re-sent id keeps its first position
    assert index.get("a") == (1 << PACK_BITS, "fa")
    assert index.get("b") == (2 << PACK_BITS, "fb")
    later = _log_pack(62_000_000, ["c"], ["fc"])
    index.add(3, Pack.decode(later.SerializeToString()))
    assert index.get("a") is None and index.get("b") is not None and len(index) == 2


@pytest.mark.parametrize(
    "odd",
    [
        "ABCDEF0123456789abcdef0123456789",  # upper case: bytes.fromhex takes it, its hex() would not give it back
        "0123456789abcdef 123456789abcdef",  # a blank, which bytes.fromhex skips
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",  # a longer digest
        "fa",  # the short strings an earlier test wrote
        "",
    ],
)
def test_dedup_index_answers_each_fingerprint_exactly_as_stored(odd: str) -> None:
    """The index keeps a pack's fingerprints compactly (16 bytes each) when all are the collector's 32 lower-case
    hex digits; a pack holding any other form keeps them as they came, so a look-up never answers another string
    (a changed fingerprint would make a retry of the same payload a PAYLOAD_MISMATCH)."""
    index = DedupIndex(window_us=60_000_000)
    plain = [uuid.uuid4().bytes.hex() for _ in range(3)]
    index.add_new(1, Pack(1_000_000, ("p0", "p1", "p2"), (), (), (), (), tuple(plain), (), (), ()))
    # Lengths summing to 32 per event but split otherwise must not be cut at every 32nd digit either.
    uneven = (plain[0][:20], plain[1] + plain[0][20:], plain[2])
    index.add_new(2, Pack(2_000_000, ("u0", "u1", "u2"), (), (), (), (), uneven, (), (), ()))
    mixed = (plain[0], odd, plain[2])
    index.add(3, Pack(3_000_000, ("m0", "m1", "m2", "p1"), (), (), (), (), (*mixed, plain[0]), (), (), ()))
    for i in range(3):
        assert index.get(f"p{i}") == ((1 << PACK_BITS) + i, plain[i])
        assert index.get(f"u{i}") == ((2 << PACK_BITS) + i, uneven[i])
        assert index.get(f"m{i}") == ((3 << PACK_BITS) + i, mixed[i])
    assert index.get("p1") == ((1 << PACK_BITS) + 1, plain[1])  # indexed already: keeps its first entry


def test_dedup_index_finds_each_id_at_its_first_entry_however_often_and_wherever_it_is_looked_up() -> None:
    """A look-up finds the id's index in its pack by a scan at the pack's first hit and by a map of the pack's ids
    from its second on, for the last packs hit: every way gives the id's first entry and its own fingerprint."""
    index = DedupIndex(window_us=60_000_000)
    fps = tuple(uuid.uuid4().bytes.hex() for _ in range(4))
    index.add(5, Pack(1_000_000, ("a", "b", "a", "c"), (), (), (), (), fps, (), (), ()))
    for _ in range(3):
        assert index.get("a") == (5 << PACK_BITS, fps[0])
        assert index.get("c") == ((5 << PACK_BITS) + 3, fps[3])
    packs = {}
    for seq in range(100, 140):  # more packs than the look-ups keep maps of
        ids = tuple(f"{seq}-{k}" for k in range(50))
        packs[seq] = (ids, tuple(uuid.uuid4().bytes.hex() for _ in ids))
        index.add_new(seq, Pack(2_000_000, ids, (), (), (), (), packs[seq][1], (), (), ()))
    order = [(seq, k) for _ in range(3) for seq in (*range(100, 140), *range(139, 99, -1)) for k in (seq % 50, 7)]
    for seq, k in order:
        ids, fingerprints = packs[seq]
        assert index.get(ids[k]) == ((seq << PACK_BITS) + k, fingerprints[k])
    assert index.get("a") == (5 << PACK_BITS, fps[0]) and index.get("nowhere") is None


def test_dedup_index_keeps_an_id_stored_again_when_a_pack_indexed_twice_expires() -> None:
    """A pack indexed twice (found again by catching up after its publish) has two entries in the index's ages. When
    the first expires, its ids are dropped; an id sent again then is stored again (another pack) and must stay
    indexed for its own window, not be dropped when the pack's second, later entry expires (review 2026-12-07)."""
    index = DedupIndex(window_us=100)
    fingerprints = tuple(uuid.uuid4().bytes.hex() for _ in range(3))

    def pack(received_us: int, ids: tuple[str, ...]) -> Pack:
        return Pack(received_us, ids, (), (), (), (), fingerprints[: len(ids)], (), (), ())

    first = pack(0, ("x",))
    index.add(1, first)
    index.add(2, pack(50, ("y",)))
    index.add(1, first)  # found again by a catch-up: a second entry, behind the one of 50
    index.add(3, pack(101, ("z",)))  # the first entry of pack 1 expires: x is dropped
    assert index.get("x") is None
    index.add(4, pack(140, ("x",)))  # x sent again, stored again
    index.add(5, pack(151, ("w",)))  # pack 2's entry and pack 1's second one expire
    assert index.get("x") == (4 << PACK_BITS, fingerprints[0])
    index.add(6, pack(241, ("v",)))  # x's own window ends
    assert index.get("x") is None and index.get("v") == (6 << PACK_BITS, fingerprints[0])


def test_dedup_index_answers_none_for_the_ids_of_a_sequence_that_now_holds_another_pack() -> None:
    """A stream replaced under a running collector hands out its sequences again: the index then answers for the
    ids of the pack the sequence holds now, and None (not an error) for the ids of the one it held before."""
    index = DedupIndex(window_us=60_000_000)
    old, new = uuid.uuid4().bytes.hex(), uuid.uuid4().bytes.hex()
    index.add(1, Pack(1_000_000, ("a", "b"), (), (), (), (), (old, old), (), (), ()))
    assert index.get("b") == ((1 << PACK_BITS) + 1, old)
    index.add(1, Pack(2_000_000, ("c",), (), (), (), (), (new,), (), (), ()))
    for _ in range(3):  # a scan at the first hit, the pack's map from the second
        assert index.get("a") is None and index.get("b") is None
        assert index.get("c") == (1 << PACK_BITS, new)
    index.add(2, Pack(61_500_000, ("d",), (), (), (), (), (new,), (), (), ()))  # the first pack's entry expires
    assert index.get("c") == (1 << PACK_BITS, new) and len(index) == 2
    index.add(3, Pack(62_500_000, ("e",), (), (), (), (), (new,), (), (), ()))
    assert index.get("c") is None and len(index) == 2


def test_a_pack_whose_columns_differ_in_length_is_refused_as_damaged() -> None:
    """Every collector writes every column whole; a pack with fewer fingerprints than ids would make a retry of the
    same payload a PAYLOAD_MISMATCH (or fail a look-up): it is refused as not a pack of events."""
    damaged = LogPack(received_at_us=1, event_ids=["a", "b"], fingerprints=["f" * 32])
    with pytest.raises(DecodeError, match=r"columns hold \[0, 1, 2\] entries"):
        Pack.decode(damaged.SerializeToString())
    assert Pack.decode(_log_pack(1, ["a"], ["f" * 32]).SerializeToString()).event_ids == ("a",)
    with pytest.raises(DecodeError, match=r"columns hold \[0, 1, 2\] entries"):
        Pack.decode_ids(damaged.SerializeToString())


def test_a_start_reads_the_ids_and_fingerprints_of_both_pack_forms() -> None:
    """A start indexes the window from each pack's ids and fingerprints only (``Pack.decode_ids``): the same as a
    whole decode gives, for the columns of this release and the rows of earlier ones."""
    rows = LogPack(received_at_us=7)
    rows.records.add(event_id="r1", fingerprint="f1", payload=b"p")
    rows.records.add(event_id="r2", fingerprint="f2", payload=b"q")
    for pack in (rows, _log_pack(9, ["c1", "c2", "c3"], ["g1", "g2", "g3"])):
        data = pack.SerializeToString()
        whole, ids = Pack.decode(data), Pack.decode_ids(data)
        assert (ids.received_at_us, ids.event_ids, ids.fingerprints) == (
            whole.received_at_us,
            whole.event_ids,
            whole.fingerprints,
        )
    assert Pack.decode_ids(rows.SerializeToString()).event_ids == ("r1", "r2")


@pytest.mark.parametrize("found_by", ["catch_up", "republish"])
def test_a_lost_publish_ack_stores_nothing_twice(found_by: str, jetstream_server: NatsServer, tmp_path: Path) -> None:
    """The server stores a pack but its ack never reaches the collector (the publish times out).
    ``catch_up``: the collector finds the pack by its Nats-Msg-Id when it reads the shard's news, and
    answers with the stored positions without publishing again. ``republish``: that read misses it (say
    the server had not stored it yet), the collector publishes again with the same id, and JetStream's
    duplicate window absorbs it, acking the first copy's sequence. Either way: the client's result is
    right, each event is stored once, and a blind retry of the batch is all duplicates."""
    name = f"l{uuid.uuid4().hex[:10]}"
    settings = jetstream_settings(tmp_path, jetstream_server, name, jetstream_shards=2)

    async def scenario() -> None:
        async with running_service(settings) as (service, _):
            log = service._log
            js = log._js
            real_publish = js.publish
            real_catch_up = log._catch_up
            lost: list[int] = []
            acks: list[object] = []

            async def publish_losing_the_first_ack(*args, **kwargs):
                ack = await real_publish(*args, **kwargs)  # stored on the server ...
                acks.append(ack)
                if not lost:
                    lost.append(ack.seq)
                    raise nats.errors.TimeoutError  # ... but the ack is lost on the way back
                return ack

            async def catch_up_missing_it(shard: int, msg_id: str = "") -> int:
                found = await real_catch_up(shard, msg_id)
                return 0 if msg_id else found

            js.publish = publish_losing_the_first_ack
            if found_by == "republish":
                log._catch_up = catch_up_missing_it
            events = [make_event(user_id=f"c{i}", n=i) for i in range(40)]
            outcomes = await service.ingest(events)
            assert lost, "the first publish must have lost its ack"
            assert [o.status for o in outcomes] == [ACCEPTED] * 40
            positions = [service.parse_cursor(o.cursor) for o in outcomes]
            assert len(set(positions)) == 40
            assert lost[0] in {p >> PACK_BITS for p in positions}, "the lost pack's positions are answered"
            if found_by == "catch_up":
                assert len(acks) == 2, "one publish per shard: the lost one was found, not sent again"
            else:
                assert len(acks) == 3 and acks[-1].duplicate and acks[-1].seq == lost[0]

            again = await service.ingest(events)
            assert [(o.status, o.cursor) for o in again] == [(DUPLICATE, o.cursor) for o in outcomes]
            stored = [event_id for ids, _ in await _read(service) for event_id in ids]
            assert sorted(stored) == sorted(e.event_id for e in events)

        # What is in the stream: one pack per shard, nothing stored twice.
        nc = await nats.connect(jetstream_server.url)
        try:
            info = await nc.jetstream().stream_info(name)
            assert info.state.messages == 2
        finally:
            await nc.close()

    asyncio.run(scenario())


def test_a_re_send_refused_because_the_lost_publish_was_stored_meanwhile_is_answered_accepted(
    jetstream_server: NatsServer, tmp_path: Path
) -> None:
    """The publish times out and the read that looks for it finds nothing; the server stores it just after.
    The re-send carries the shard's sequence from before that store, and nats-server 2.15 refuses it (wrong
    last sequence) before looking at its Nats-Msg-Id. The collector must recognise the pack it finds as its
    own: the events are ACCEPTED at the stored positions, not answered DUPLICATE of themselves."""
    name = f"r{uuid.uuid4().hex[:10]}"
    settings = jetstream_settings(tmp_path, jetstream_server, name, jetstream_shards=1)

    async def scenario() -> None:
        async with running_service(settings) as (service, _):
            log = service._log
            js = log._js
            real_publish = js.publish
            delayed: list[tuple[tuple, dict]] = []
            stored: list[int] = []
            refused: list[int] = []

            async def publish_storing_late(*args, **kwargs):
                if not delayed and not stored:
                    delayed.append((args, kwargs))  # in flight: the server has not stored it yet
                    raise nats.errors.TimeoutError
                if delayed:
                    first_args, first_kwargs = delayed.pop()
                    stored.append((await real_publish(*first_args, **first_kwargs)).seq)  # ... now it has
                try:
                    return await real_publish(*args, **kwargs)
                except APIError as exc:
                    refused.append(exc.err_code)
                    raise

            js.publish = publish_storing_late
            events = [make_event(user_id=f"c{i}", n=i) for i in range(30)]
            outcomes = await service.ingest(events)
            assert stored and refused == [10071], "the re-send must have been refused by the stored sequence"
            assert [o.status for o in outcomes] == [ACCEPTED] * 30
            assert {service.parse_cursor(o.cursor) >> PACK_BITS for o in outcomes} == {stored[0]}
            again = await service.ingest(events)
            assert [(o.status, o.cursor) for o in again] == [(DUPLICATE, o.cursor) for o in outcomes]

        nc = await nats.connect(jetstream_server.url)
        try:
            assert (await nc.jetstream().stream_info(name)).state.messages == 1
        finally:
            await nc.close()

    asyncio.run(scenario())


def test_a_pack_a_reader_caches_before_its_ack_is_still_indexed(jetstream_server: NatsServer, tmp_path: Path) -> None:
    """A reader on the collector's loop (ReadEvents' head, GetIngestStats) reads the new pack into the pack cache
    between JetStream storing it and the publisher resuming. The collector took a cached pack for one that catching up
    had indexed, so it never indexed it: a retry of the acknowledged batch was ACCEPTED and stored again (walk
    2026-12-07; seen with leader reads, as with replicas)."""
    name = f"h{uuid.uuid4().hex[:10]}"
    settings = jetstream_settings(tmp_path, jetstream_server, name, jetstream_shards=1)

    async def scenario() -> None:
        async with running_service(settings) as (service, _):
            log = service._log
            real_publish = log._js.publish

            async def publish_then_a_reader_runs(*args, **kwargs):
                ack = await real_publish(*args, **kwargs)
                await log._head()  # what a concurrent reader does on this loop before the publisher resumes
                return ack

            log._js.publish = publish_then_a_reader_runs
            events = [make_event(user_id=f"c{i}", n=i) for i in range(5)]
            first = await service.ingest(events)
            log._js.publish = real_publish
            assert [o.status for o in first] == [ACCEPTED] * 5
            again = await service.ingest(events)
            assert [(o.status, o.cursor) for o in again] == [(DUPLICATE, o.cursor) for o in first]

        nc = await nats.connect(jetstream_server.url)
        try:
            assert (await nc.jetstream().stream_info(name)).state.messages == 1  # stored once
        finally:
            await nc.close()

    asyncio.run(scenario())


def test_a_pack_stamped_by_a_collector_whose_clock_runs_ahead_does_not_shorten_the_window() -> None:
    """Ids age by the newest pack's ``received_at``, but never past this collector's own clock: a collector an hour
    ahead stamps its packs an hour late, and before 0.2.9 indexing one expired every id of the last hour here, so a
    client's retry within the window was stored again."""
    now = 10_000_000_000
    index = DedupIndex(window_us=60_000_000, clock_us=lambda: now)
    fingerprint = uuid.uuid4().bytes.hex()
    index.add(1, Pack(now - 1_000_000, ("mine",), (), (), (), (), (fingerprint,), (), (), ()))
    index.add(2, Pack(now + 3_600_000_000, ("ahead",), (), (), (), (), (fingerprint,), (), (), ()))
    assert index.get("mine") == (1 << PACK_BITS, fingerprint)  # 1 s old, within the 60 s window
    now += 60_000_000  # the window of "mine" ends by this collector's clock
    index.add(3, Pack(now, ("later",), (), (), (), (), (fingerprint,), (), (), ()))
    assert index.get("mine") is None and index.get("ahead") == (2 << PACK_BITS, fingerprint)
