"""The pieces of the JetStream log that hold no connection: its configuration, positions and shards, the
in-memory de-duplication index, and the thread that runs nats-py's event loop for synchronous callers."""

from __future__ import annotations

import asyncio
import threading
import time
import zlib
from bisect import bisect_left
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate, compress, repeat
from operator import eq
from typing import Any, NamedTuple, TypeVar

from google.protobuf.message import DecodeError

from svc_collect.store._log import Appended, LogRow, WriteBatch
from svc_common.pb.qiming.collect.v1.log_pack_pb2 import LogPack

T = TypeVar("T")
PACK_BITS = 12
MAX_PACK_EVENTS = 1 << PACK_BITS
_INDEX_MASK = MAX_PACK_EVENTS - 1
_FINGERPRINT_BYTES = 16  # an event's fingerprint: 16 bytes of HMAC-SM3, written as 32 hex digits
_HEX_LENGTH = frozenset({2 * _FINGERPRINT_BYTES})
_PACKS_LOOKED_IN = 16  # packs whose map of ids to indexes the de-duplication index keeps for further look-ups


@dataclass(frozen=True, slots=True)
class JetStreamConfig:
    """What the JetStream log needs from CollectSettings (see its docstrings)."""

    nats_url: str
    stream: str
    subject_prefix: str
    shards: int
    replicas: int
    max_age_days: int
    dedup_window_seconds: int
    publish_timeout_millis: int
    max_pack_bytes: int
    pack_format: str = "auto"
    ping_interval_seconds: float = 5.0

    @property
    def direct_get(self) -> bool:
        """Whether messages are read with direct gets (any replica answers): with one replica only. A replica behind
        the leader answers a direct get without the newest messages (NATS documents it), and a filtered reader that
        had its head from the leader then skipped them for good (review 2026-12-07): with several replicas, reads
        ask the stream's leader."""
        return self.replicas == 1

    @classmethod
    def from_settings(cls, settings: Any) -> JetStreamConfig:
        return cls(
            nats_url=settings.nats_url,
            stream=settings.jetstream_stream,
            subject_prefix=settings.jetstream_subject_prefix,
            shards=settings.jetstream_shards,
            replicas=settings.jetstream_replicas,
            max_age_days=settings.jetstream_max_age_days,
            dedup_window_seconds=settings.jetstream_dedup_window_seconds,
            publish_timeout_millis=settings.jetstream_publish_timeout_millis,
            max_pack_bytes=settings.jetstream_max_pack_bytes,
            pack_format=settings.jetstream_pack_format,
            ping_interval_seconds=settings.nats_ping_interval_seconds,
        )


@dataclass(slots=True)
class Pack:
    """One pack as columns (entry i of each is the pack's event i), whichever form it was written in.

    Tuples, not lists: a tuple of strings, bytes and ints stops being tracked by the cyclic GC at its first
    collection, while a list of 1,000 is walked again by every collection that reaches its generation (the
    packs a collector writes, reads or catches up on stay in its cache for a while)."""

    received_at_us: int
    event_ids: tuple[str, ...]
    event_types: tuple[str, ...]
    user_ids: tuple[str, ...]
    anonymous_ids: tuple[str, ...]
    occurred_at_us: tuple[int, ...]
    fingerprints: tuple[str, ...]
    flags: tuple[int, ...]
    payloads: tuple[bytes, ...]
    sealed_values: tuple[bytes, ...]

    def __len__(self) -> int:
        return len(self.event_ids)

    @classmethod
    def of_rows(cls, received_at_us: int, rows: Sequence[LogRow]) -> Pack:
        if not rows:
            return cls(received_at_us, (), (), (), (), (), (), (), (), ())
        # LogRows are tuples: zip transposes them into columns (tuples) in C.
        columns = zip(*rows, strict=True)
        event_ids, event_types, user_ids, anonymous_ids, occurred, fingerprints, flags, payloads, sealed = columns
        return cls(
            received_at_us,
            event_ids,
            event_types,
            tuple([u or "" for u in user_ids]),
            tuple([a or "" for a in anonymous_ids]),
            occurred,
            fingerprints,
            flags,
            payloads,
            tuple([s or b"" for s in sealed]),
        )

    @classmethod
    def decode(cls, data: bytes) -> Pack:
        message = LogPack.FromString(data)
        if message.records:  # the row form of earlier releases
            rows = message.records
            return cls(
                message.received_at_us,
                tuple([r.event_id for r in rows]),
                tuple([r.event_type for r in rows]),
                tuple([r.user_id for r in rows]),
                tuple([r.anonymous_id for r in rows]),
                tuple([r.occurred_at_us for r in rows]),
                tuple([r.fingerprint for r in rows]),
                tuple([r.flags for r in rows]),
                tuple([r.payload for r in rows]),
                tuple([r.sealed_values for r in rows]),
            )
        _check_columns(message)
        return cls(
            message.received_at_us,
            tuple(message.event_ids),
            tuple(message.event_types),
            tuple(message.user_ids),
            tuple(message.anonymous_ids),
            tuple(message.occurred_at_us),
            tuple(message.fingerprints),
            tuple(message.flags),
            tuple(message.payloads),
            tuple(message.sealed_values),
        )

    @staticmethod
    def decode_ids(data: bytes) -> PackIds:
        """What the de-duplication index takes of a pack, without the rest (a start reads the whole window back:
        the other columns cost ~0.5 µs per event to make into Python objects)."""
        message = LogPack.FromString(data)
        if message.records:  # the row form of earlier releases
            rows = message.records
            return PackIds(
                message.received_at_us, tuple([r.event_id for r in rows]), tuple([r.fingerprint for r in rows])
            )
        _check_columns(message)
        return PackIds(message.received_at_us, tuple(message.event_ids), tuple(message.fingerprints))

    def part(self, start: int, end: int) -> Pack:
        """Events ``start`` to ``end`` (exclusive) as a pack of their own."""
        return Pack(
            self.received_at_us,
            self.event_ids[start:end],
            self.event_types[start:end],
            self.user_ids[start:end],
            self.anonymous_ids[start:end],
            self.occurred_at_us[start:end],
            self.fingerprints[start:end],
            self.flags[start:end],
            self.payloads[start:end],
            self.sealed_values[start:end],
        )

    def bounds(self, max_bytes: int) -> list[tuple[int, int]]:
        """(start, end) of the parts to publish: at most MAX_PACK_EVENTS events each, and an upper bound of
        their encoded size under ``max_bytes`` (one event alone may exceed it; the caller checks). Computed on
        the columns without encoding: each entry's bytes plus 72 for tags, lengths and the two integers."""
        count = len(self.event_ids)
        byte_columns = (self.payloads, self.sealed_values, self.event_ids, self.event_types, self.fingerprints)
        total = sum(sum(map(len, column)) for column in byte_columns)
        total += _utf8_bytes(self.user_ids) + _utf8_bytes(self.anonymous_ids) + 72 * count
        if total < max_bytes and count <= MAX_PACK_EVENTS:
            return [(0, count)] if count else []  # the usual case: no per-event work
        sizes = [map(len, column) for column in byte_columns]
        sizes += [_utf8_sizes(self.user_ids), _utf8_sizes(self.anonymous_ids), repeat(72, count)]
        ends = list(accumulate(map(sum, zip(*sizes, strict=True))))  # ends[i]: bytes of events 0..i
        parts = []
        start = 0
        while start < count:
            before = ends[start - 1] if start else 0
            # The events after ``start`` whose running size stays under the limit; at least one.
            end = min(max(bisect_left(ends, before + max_bytes, start), start + 1), start + MAX_PACK_EVENTS)
            parts.append((start, end))
            start = end
        return parts

    def encode_rows(self) -> bytes:
        """The row form that earlier releases write and read (one LogRecord per event)."""
        pack = LogPack(received_at_us=self.received_at_us)
        add = pack.records.add
        for i, event_id in enumerate(self.event_ids):
            add(
                event_id=event_id,
                event_type=self.event_types[i],
                user_id=self.user_ids[i],
                anonymous_id=self.anonymous_ids[i],
                occurred_at_us=self.occurred_at_us[i],
                fingerprint=self.fingerprints[i],
                flags=self.flags[i],
                payload=self.payloads[i],
                sealed_values=self.sealed_values[i],
            )
        return pack.SerializeToString()

    def encode(self) -> bytes:
        return LogPack(
            received_at_us=self.received_at_us,
            event_ids=self.event_ids,
            event_types=self.event_types,
            user_ids=self.user_ids,
            anonymous_ids=self.anonymous_ids,
            occurred_at_us=self.occurred_at_us,
            fingerprints=self.fingerprints,
            flags=self.flags,
            payloads=self.payloads,
            sealed_values=self.sealed_values,
        ).SerializeToString()


class PackIds(NamedTuple):
    """The columns of a pack the de-duplication index reads (:meth:`Pack.decode_ids`)."""

    received_at_us: int
    event_ids: tuple[str, ...]
    fingerprints: tuple[str, ...]


def _check_columns(message: LogPack) -> None:
    columns = (
        message.event_ids,
        message.event_types,
        message.user_ids,
        message.anonymous_ids,
        message.occurred_at_us,
        message.fingerprints,
        message.flags,
        message.payloads,
        message.sealed_values,
    )
    if len(set(map(len, columns))) > 1:  # every collector writes every column whole: a damaged pack
        raise DecodeError(f"a pack's columns hold {sorted(set(map(len, columns)))} entries, not one count")


def _utf8_bytes(texts: Sequence[str]) -> int:
    joined = "".join(texts)
    return len(joined) if joined.isascii() else len(joined.encode())


def _utf8_sizes(texts: Sequence[str]) -> Iterable[int]:
    return map(len, texts) if "".join(texts).isascii() else map(len, map(str.encode, texts))


def results_per_batch(batches: Sequence[WriteBatch], stored: list[Appended], count: int) -> list[list[Appended | None]]:
    """The group's results split by batch: ``stored`` for its first events, None for the rest of ``count``."""
    if len(batches) == 1 and len(stored) == count:
        return [stored]  # type: ignore[list-item]
    flat: list[Appended | None] = [*stored, *repeat(None, count - len(stored))]
    results = []
    start = 0
    for batch in batches:
        results.append(flat[start : start + len(batch.rows)])
        start += len(batch.rows)
    return results


def position(stream_seq: int, index: int) -> int:
    return stream_seq << PACK_BITS | index


def shard_of(user_key: str, shards: int) -> int:
    """Stable across processes and releases (CRC-32, not Python's salted hash)."""
    return zlib.crc32(user_key.encode()) % shards


class DedupIndex:
    """event_id -> (position, fingerprint) for the ids of the last ``window_us``.

    One dict of ids to the stream sequence of the pack that holds them, and per pack its ids and its fingerprints:
    adding a pack is one access per id, in C, to a table too large for the CPU's caches (a second dict of
    fingerprints was a second one), and allocates nothing per event — the pack's sequence is one int shared by its
    ids, the fingerprints one ``bytes`` of 16 each (:func:`fingerprint_column`) — and nothing the cyclic garbage
    collector tracks (a tuple per event made it run more often and walk the group's live tuples). An id's index in
    its pack is looked for only when the id is found (a duplicate: rare): by a scan of the pack's ids at its first hit,
    then in a map of them made at its second and kept for the next ones (a retried batch hits one or two packs again
    and again; scattered hits cost a scan each, ~5 µs for 1,000 ids, not a map each)."""

    def __init__(self, window_us: int, clock_us: Callable[[], int] = lambda: time.time_ns() // 1000) -> None:
        self._window_us = window_us
        self._clock_us = clock_us
        self._packs_of: dict[str, int] = {}  # event id -> stream sequence of its pack
        # Tuples of strings, which the cyclic GC stops tracking: a full collection then visits one object per pack
        # here instead of every id and fingerprint of the window (lists would be walked, millions per collection).
        # The dict of ids holds only strings and ints, so CPython never tracks it at all.
        self._packs: dict[int, tuple[tuple[str, ...], bytes | tuple[str, ...]]] = {}  # sequence -> ids, fingerprints
        self._ages: deque[tuple[int, int, tuple[str, ...]]] = deque()  # received_at_us, stream sequence, ids added
        self._entries: dict[int, int] = {}  # sequence -> its entries in _ages (two for a pack indexed twice)
        # The packs hit last: sequence -> the index of each id (None after one hit, answered by a scan).
        self._where: OrderedDict[int, dict[str, int] | None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._packs_of)

    def get(self, event_id: str) -> tuple[int, str] | None:
        """The id's position and fingerprint, or None. Not read-only: it keeps the maps of the packs hit last (the
        index is used by one thread at a time)."""
        stream_seq = self._packs_of.get(event_id)
        if stream_seq is None:
            return None
        ids, column = self._packs[stream_seq]
        looked = self._where
        if stream_seq not in looked:  # the pack's first hit: a scan (tuple.index finds the first entry)
            looked[stream_seq] = None
            if len(looked) > _PACKS_LOOKED_IN:
                looked.popitem(last=False)
            try:
                i: int | None = ids.index(event_id)
            except ValueError:
                i = None
        else:
            looked.move_to_end(stream_seq)
            where = looked[stream_seq]
            if where is None:  # hit again: the first index of each id (a dict keeps the last value given for a key)
                where = looked[stream_seq] = dict(zip(reversed(ids), range(len(ids) - 1, -1, -1), strict=True))
            i = where.get(event_id)
        if i is None:  # the sequence holds another pack now (a replaced stream): the id is not there
            return None
        if column.__class__ is bytes:
            fingerprint = column[i * _FINGERPRINT_BYTES : (i + 1) * _FINGERPRINT_BYTES].hex()  # type: ignore[union-attr]
        else:
            fingerprint = column[i]  # type: ignore[assignment]
        return position(stream_seq, i), fingerprint  # type: ignore[return-value]

    def holds_none_of(self, event_ids: Sequence[str]) -> bool:
        return self._packs_of.keys().isdisjoint(event_ids)

    def holds_pack(self, stream_seq: int, pack: Pack) -> bool:
        """Whether the pack at ``stream_seq`` is indexed, with these ids (found again by catching up)."""
        known = self._packs.get(stream_seq)
        return known is not None and known[0] == tuple(pack.event_ids)

    def add(self, stream_seq: int, pack: Pack | PackIds) -> None:
        """Index the events of the pack at ``stream_seq``; an id indexed already keeps its first position."""
        ids = pack.event_ids
        # One look-up per id, in C: setdefault answers the sequence kept, which is this pack's for the ids it added
        # (an id twice in the pack is added by its first entry: the look-up finds the first index).
        own = repeat(stream_seq)
        took = list(map(eq, map(self._packs_of.setdefault, ids, own), own))
        self._aged(stream_seq, pack, ids if all(took) else tuple(compress(ids, took)))

    def add_new(self, stream_seq: int, pack: Pack) -> None:
        """Index a pack none of whose ids is indexed yet, and none twice (the caller has checked)."""
        ids = pack.event_ids
        self._packs_of.update(zip(ids, repeat(stream_seq)))
        self._aged(stream_seq, pack, ids)

    def _aged(self, stream_seq: int, pack: Pack | PackIds, added: Sequence[str]) -> None:
        ids = pack.event_ids
        known = self._packs.get(stream_seq)
        if known is None or known[0] != ids:  # else the pack indexed again (found again by catching up)
            # (A sequence holding other ids: the stream was replaced under the collector; the new pack is what the
            # sequence holds now, and the old pack's ids are no longer found in it.)
            # (Its columns have one length: Pack.decode refuses a pack whose columns differ.)
            self._packs[stream_seq] = (tuple(ids), fingerprint_column(pack.fingerprints))
            self._where.pop(stream_seq, None)
        self._entries[stream_seq] = self._entries.get(stream_seq, 0) + 1
        received_us = pack.received_at_us
        self._ages.append((received_us, stream_seq, tuple(added)))
        # Aged by the newest pack's time, but never past this collector's own clock: a pack stamped by a collector
        # whose clock runs ahead (by an hour, a day) would otherwise expire the ids of every other collector's window
        # that much early, and a client's retry within the window would be stored twice (walk 2026-12-07).
        horizon = min(received_us, self._clock_us()) - self._window_us
        packs_of = self._packs_of
        while self._ages and self._ages[0][0] < horizon:
            _, expired_seq, expired = self._ages.popleft()
            popped = list(map(packs_of.pop, expired, repeat(None)))  # in C
            if popped.count(expired_seq) != len(popped):
                # Some of these ids belong to another pack now: a pack indexed twice has two entries here, and the
                # later one may expire after an id it lists was dropped and then stored again by a newer pack.
                for event_id, owner in zip(expired, popped, strict=True):
                    if owner is not None and owner != expired_seq:
                        packs_of[event_id] = owner
            left = self._entries.pop(expired_seq) - 1
            if left:
                self._entries[expired_seq] = left
            else:
                del self._packs[expired_seq]
                self._where.pop(expired_seq, None)


def fingerprint_column(fingerprints: Sequence[str]) -> bytes | tuple[str, ...]:
    """A pack's fingerprints as the index keeps them: their bytes, one after the other, when each is the lower-case
    hex of 16 bytes (what :meth:`Fingerprinter.fingerprint <svc_common.protection.Fingerprinter.fingerprint>`
    makes: ~16 instead of ~90 bytes of memory per event); otherwise (a pack of another form) the strings as they
    came, so that a look-up answers exactly what was stored."""
    joined = "".join(fingerprints)
    if len(joined) == 2 * _FINGERPRINT_BYTES * len(fingerprints) and set(map(len, fingerprints)) <= _HEX_LENGTH:
        try:
            column = bytes.fromhex(joined)
        except ValueError:
            return tuple(fingerprints)
        if column.hex() == joined:  # fromhex takes upper case and skips blanks: only an exact round trip is kept
            return column
    return tuple(fingerprints)


class PackCache:
    """Recently read or written packs by stream sequence, bounded by packs and by events (a single-shard pack
    holds up to 4,096); the newest always stays."""

    def __init__(self, max_packs: int, max_events: int) -> None:
        self._packs: OrderedDict[int, Pack] = OrderedDict()
        self._events = 0
        self._max_packs = max_packs
        self._max_events = max_events

    def get(self, stream_seq: int) -> Pack | None:
        return self._packs.get(stream_seq)

    def put(self, stream_seq: int, pack: Pack) -> None:
        old = self._packs.pop(stream_seq, None)
        if old is not None:
            self._events -= len(old)
        self._packs[stream_seq] = pack
        self._events += len(pack)
        while len(self._packs) > 1 and (len(self._packs) > self._max_packs or self._events > self._max_events):
            _, dropped = self._packs.popitem(last=False)
            self._events -= len(dropped)


class LoopThread:
    """An asyncio loop in a daemon thread, for calling nats-py from synchronous code."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()
