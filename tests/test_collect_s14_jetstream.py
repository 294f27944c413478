"""The JetStream log's column path (session 14): a group of new ids on one shard is packed, split and indexed
without per-event Python, and hands over to the per-event path whenever the ids are not all new."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from collect_helpers import jetstream_settings, make_event, running_service
from conftest import NatsServer
from nats.js.errors import APIError

from svc_collect.service import ACCEPTED, DUPLICATE
from svc_collect.store._jetstream_parts import MAX_PACK_EVENTS, PACK_BITS, DedupIndex, Pack
from svc_collect.store._log import Appended, LogRow, QuarantineRow, WriteBatch, _side_counts
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import errors_pb2

pytestmark = pytest.mark.nats


async def _stored_ids(service) -> list[str]:
    out = []
    async for events, _ in service.read(collect_pb2.ReadEventsRequest(), frozenset()):
        out += [e.event_id for e in events]
    return out


def _row(event_id: str, user_id: str = "c1", payload: bytes = b"p", fingerprint: str = "f") -> LogRow:
    return LogRow(event_id, "page_view", user_id, None, 1, fingerprint, 0, payload, None)


def _greedy_bounds(pack: Pack, limit: int) -> list[tuple[int, int]]:
    """The per-event rule the columns must reproduce: an event joins the part while the part's size bound stays
    under ``limit`` (the first event always joins), at most MAX_PACK_EVENTS events."""
    parts, start, size = [], 0, 0
    for i in range(len(pack)):
        event = (
            len(pack.payloads[i])
            + len(pack.sealed_values[i])
            + len(pack.event_ids[i])
            + len(pack.event_types[i])
            + len(pack.fingerprints[i])
            + len(pack.user_ids[i].encode())
            + len(pack.anonymous_ids[i].encode())
            + 72
        )
        if i > start and (size + event >= limit or i - start == MAX_PACK_EVENTS):
            parts.append((start, i))
            start, size = i, 0
        size += event
    parts.append((start, len(pack)))
    return parts


@pytest.mark.parametrize("limit", [10_000_000, 5_000, 700, 10])
def test_pack_bounds_follow_the_per_event_rule(limit: int) -> None:
    rows = [_row(f"id{i}", user_id="客户" * (i % 7), payload=b"x" * (i * 37 % 900)) for i in range(9000)]
    pack = Pack.of_rows(1, rows)
    assert pack.bounds(limit) == _greedy_bounds(pack, limit)
    parts = pack.bounds(limit)
    assert parts[0][0] == 0 and parts[-1][1] == len(pack)
    assert all(end > start and end - start <= MAX_PACK_EVENTS for start, end in parts)
    assert Pack.of_rows(1, []).bounds(limit) == []
    second = pack.part(*parts[1])
    assert second.event_ids == pack.event_ids[parts[1][0] : parts[1][1]]
    assert second.payloads == pack.payloads[parts[1][0] : parts[1][1]]


def test_dedup_index_of_new_packs_and_of_packs_seen_twice() -> None:
    index = DedupIndex(window_us=60_000_000)
    first = Pack.of_rows(1_000_000, [_row("a", fingerprint="fa"), _row("b", fingerprint="fb")])
    index.add_new(7, first)
    index.add(7, first)  # found again by catching up: nothing changes
    assert index.get("b") == ((7 << PACK_BITS) | 1, "fb")
    assert not index.holds_none_of(["x", "a"]) and index.holds_none_of(["x", "y"])
    # Another collector's pack: re-sent "a" keeps its first position and fingerprint, "c" is new.
    mixed = Pack.of_rows(2_000_000, [_row("a", fingerprint="other"), _row("c", fingerprint="fc")])
    index.add(8, mixed)
    assert index.get("a") == (7 << PACK_BITS, "fa")
    assert index.get("c") == ((8 << PACK_BITS) | 1, "fc")
    later = Pack.of_rows(62_000_000, [_row("d", fingerprint="fd")])
    index.add_new(9, later)  # pack 7 is out of the window, pack 8 not yet
    assert index.get("a") is None and index.get("b") is None
    assert index.get("c") == ((8 << PACK_BITS) | 1, "fc") and len(index) == 2


def test_side_counts_with_and_without_duplicates() -> None:
    rows = [_row(f"e{i}") for i in range(4)]
    rows[1] = rows[1]._replace(event_type="trade_filled")
    fresh = WriteBatch(rows=rows[:2], quarantined=[QuarantineRow("q1", "e9", "app_click", "INVALID", "", "", b"")])
    resent = WriteBatch(rows=rows[2:])
    results = [[Appended(1, False), Appended(2, False)], [Appended(3, False), Appended(1, True)]]
    counts = _side_counts([fresh, resent], results)
    assert counts == {"page_view": [2, 1, 0], "trade_filled": [1, 0, 0], "app_click": [0, 0, 1]}


def test_a_group_of_several_batches_splits_into_packs_on_one_shard(
    jetstream_server: NatsServer, tmp_path: Path
) -> None:
    """Batches committed together are split into packs by size; each batch gets its own results, in order, at
    consecutive positions; a re-send is all duplicates (one with another payload flagged) at the same positions."""
    name = f"g{uuid.uuid4().hex[:10]}"
    settings = jetstream_settings(tmp_path, jetstream_server, name, jetstream_max_pack_bytes=10_000, jetstream_shards=1)

    async def scenario() -> None:
        async with running_service(settings) as (service, _):
            batches = [[make_event(user_id=f"c{b}", note="x" * 1500, n=i) for i in range(10)] for b in range(4)]
            outcomes = await asyncio.gather(*(service.ingest(batch) for batch in batches))
            for batch, results in zip(batches, outcomes, strict=True):
                assert [o.event_id for o in results] == [e.event_id for e in batch]
                assert all(o.status == ACCEPTED for o in results)
            positions = sorted(service.parse_cursor(o.cursor) for results in outcomes for o in results)
            assert len({p >> PACK_BITS for p in positions}) >= 5, "40 events of 1.5 kB must not fit in one 10 kB pack"
            changed = batches[2][3].__class__()
            changed.CopyFrom(batches[2][3])
            changed.properties["note"].string_value = "changed"
            again = await service.ingest([*batches[2][:3], changed])
            assert [o.status for o in again] == [DUPLICATE] * 4
            assert [o.cursor for o in again] == [o.cursor for o in outcomes[2][:4]]
            assert [o.reason for o in again] == [0, 0, 0, errors_pb2.ERROR_REASON_PAYLOAD_MISMATCH]
            stored = await _stored_ids(service)
            assert sorted(stored) == sorted(e.event_id for batch in batches for e in batch)

    asyncio.run(scenario())


@pytest.mark.parametrize("shards", [1, 2])
def test_ids_written_by_another_collector_between_two_packs_are_answered_as_duplicates(
    shards: int, jetstream_server: NatsServer, tmp_path: Path
) -> None:
    """b's group needs two packs. Between them, a stores one id of b's second pack: b's second publish is
    refused (a moved the shard), b reads a's pack, and the rest of the group goes one event at a time: that id
    is a duplicate at a's position, every other event is stored once. (Until session 14 b published its third
    pack unchecked: the id was stored twice.) One shard takes the column path, two the per-event path."""
    name = f"m{uuid.uuid4().hex[:10]}"
    one = jetstream_settings(
        tmp_path / "one", jetstream_server, name, jetstream_max_pack_bytes=10_000, jetstream_shards=shards
    )
    two = jetstream_settings(
        tmp_path / "two", jetstream_server, name, jetstream_max_pack_bytes=10_000, jetstream_shards=shards
    )

    async def scenario() -> None:
        async with running_service(one) as (a, _), running_service(two) as (b, _):
            main_loop = asyncio.get_running_loop()
            events = [make_event(user_id="c1", note="x" * 1500, n=i) for i in range(12)]
            taken: list = []
            real = b._log._publish_unchanged

            async def then_a_writes(shard, data, event_ids):
                seq = await real(shard, data, event_ids)
                if not taken:  # after b's first pack: a stores the last event of b's group
                    taken.extend(
                        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(a.ingest([events[-1]]), main_loop))
                    )
                return seq

            b._log._publish_unchanged = then_a_writes
            results = await b.ingest(events)
            (by_a,) = taken
            assert by_a.status == ACCEPTED
            assert [o.status for o in results] == [ACCEPTED] * 11 + [DUPLICATE]
            assert results[-1].cursor == by_a.cursor
            positions = [b.parse_cursor(o.cursor) for o in results[:-1]]
            assert len({p >> PACK_BITS for p in positions}) >= 2
            stored = await _stored_ids(a)
            assert sorted(stored) == sorted(e.event_id for e in events) and stored == await _stored_ids(b)

    asyncio.run(scenario())


def test_after_a_refusal_a_collector_reads_the_shard_before_it_publishes(
    jetstream_server: NatsServer, tmp_path: Path
) -> None:
    """Once JetStream refused b's pack because a wrote first, b reads the shard's news before its next publishes:
    a's later packs are indexed without sending b's pack to be refused again, and nothing is stored twice."""
    name = f"a{uuid.uuid4().hex[:10]}"
    one = jetstream_settings(tmp_path / "one", jetstream_server, name, jetstream_shards=1)
    two = jetstream_settings(tmp_path / "two", jetstream_server, name, jetstream_shards=1)

    async def scenario() -> None:
        async with running_service(one) as (a, _), running_service(two) as (b, _):
            refused: list[int] = []
            real_publish = b._log._js.publish

            async def recording(subject, data, **kwargs):
                try:
                    return await real_publish(subject, data, **kwargs)
                except APIError as exc:
                    refused.append(exc.err_code)
                    raise

            b._log._js.publish = recording
            written = []
            for round_ in range(3):
                written += await a.ingest([make_event(user_id=f"a{round_}{i}") for i in range(5)])
                written += await b.ingest([make_event(user_id=f"b{round_}{i}") for i in range(5)])
            assert refused == [10071], "only the first write after a's was refused"
            assert all(o.status == ACCEPTED for o in written)
            stored = await _stored_ids(b)
            assert stored == await _stored_ids(a) and sorted(stored) == sorted(o.event_id for o in written)

    asyncio.run(scenario())
