"""Reading the JetStream log: pages by position (whole stream, or one shard), the start of a read from a receive
time, and the delivery-delay sample. A mixin of JetStreamEventLog, which holds the connection and the caches."""

from __future__ import annotations

import asyncio
from typing import Any

from google.protobuf.message import DecodeError
from nats.js.errors import NotFoundError

from svc_collect.store._jetstream_parts import (
    MAX_PACK_EVENTS,
    PACK_BITS,
    JetStreamConfig,
    Pack,
    PackCache,
    PackIds,
    position,
    shard_of,
)
from svc_collect.store._log import LogHead, StoredEvent
from svc_common.errors import FailedPrecondition

_READ_AHEAD_PACKS = 8
# How far receive stamps may run out of order in the stream (clock skew between collectors, re-published packs).
_STAMP_SLACK_US = 60_000_000


class StreamReads:
    """The reading half of JetStreamEventLog (the attributes below are set by its constructor and ``open``)."""

    _config: JetStreamConfig
    _js: Any
    _subject: str
    _all_subjects: str
    _packs: PackCache
    _pack_events: int

    async def _head(self) -> LogHead:
        raise NotImplementedError

    async def _read(
        self, after: int, limit: int, types: frozenset[str], user_id: str | None, anonymous_id: str | None
    ) -> list[StoredEvent]:
        subject = self._all_subjects
        if user_id is not None:
            # A customer's events are all on the shard of their customer number. Not so an anonymous id's:
            # once the customer logged in, the device's events carry both ids and go to the customer's shard,
            # so a read by anonymous id reads every shard (as the embedded log scans every position).
            subject = self._subject.format(shard_of(user_id, self._config.shards))
        stream_seq, skip = after >> PACK_BITS, after & (MAX_PACK_EVENTS - 1)
        if after == 0:
            stream_seq, skip = 1, -1
        out: list[StoredEvent] = []
        ahead: list[tuple[int, Pack]] = []
        while len(out) < limit:
            if not ahead:
                ahead = await self._next_packs(stream_seq, subject, subject == self._all_subjects, limit - len(out))
            if not ahead:
                break
            seq, pack = ahead.pop(0)
            start = skip + 1 if seq == stream_seq else 0
            for index in range(start, len(pack)):
                if types and pack.event_types[index] not in types:
                    continue
                if user_id is not None and pack.user_ids[index] != user_id:
                    continue
                if anonymous_id is not None and pack.anonymous_ids[index] != anonymous_id:
                    continue
                out.append(
                    StoredEvent(
                        position(seq, index),
                        pack.received_at_us,
                        pack.fingerprints[index],
                        pack.flags[index],
                        pack.payloads[index],
                        pack.sealed_values[index] or None,
                    )
                )
                if len(out) == limit:
                    break
            stream_seq, skip = seq + 1, -1
        return out

    async def _seq_before_time(self, received_us: int) -> int:
        # Receive times rise with the sequence only roughly: each collector stamps with its own clock before it
        # publishes, and a refused pack is re-published after others. Start early by _STAMP_SLACK_US: the
        # reader (CollectService) skips what was received before ``received_us`` until the first event after.
        stream_seq = await self._first_seq_received_since(received_us - _STAMP_SLACK_US)
        msg = await self._next_msg(stream_seq, self._all_subjects)
        if msg is None:
            return (await self._head()).last_seq
        return position(msg.seq, 0) - 1

    async def _first_seq_received_since(self, received_us: int) -> int:
        """Binary search over packs by their receive time (rising with the sequence, per collector)."""
        info = await self._js.stream_info(self._config.stream)
        low, high = max(info.state.first_seq, 1), info.state.last_seq + 1
        while low < high:
            middle = (low + high) // 2
            msg = await self._next_msg(middle, self._all_subjects)
            if msg is None or msg.seq >= high:
                high = middle
                continue
            if self._decode(msg.seq, msg.data).received_at_us >= received_us:
                high = middle
            else:
                low = msg.seq + 1
        return low

    async def _delivery_delays_us(self, start_us: int, end_us: int, limit: int, max_packs: int = 256) -> list[int]:
        info = await self._js.stream_info(self._config.stream)
        delays: list[int] = []
        # From the range's end (a binary search), not the stream's: on a busy stream the newest packs used up
        # ``max_packs`` and left a range hours back without a sample, its delays read 0 (review 2026-12-07).
        stream_seq = min(info.state.last_seq, await self._first_seq_received_since(end_us))
        while stream_seq >= max(info.state.first_seq, 1) and max_packs and len(delays) < limit:
            pack = await self._pack_at(stream_seq)
            stream_seq -= 1
            max_packs -= 1
            if pack is None or pack.received_at_us >= end_us:
                continue
            if pack.received_at_us < start_us:
                break
            delays.extend(pack.received_at_us - occurred for occurred in pack.occurred_at_us)
        return delays[:limit]

    async def _next_packs(
        self, stream_seq: int, subject: str, whole_stream: bool, wanted: int
    ) -> list[tuple[int, Pack]]:
        """The next pack at or after ``stream_seq``. Reading the whole stream: a pack still in memory (a page that
        ended inside it) without asking the server, else as many of the next packs as ``wanted`` events need, up to
        eight, asked for at once — a pack holds one group commit's share of one shard, often a few dozen events,
        and one round trip per pack was most of a reader's time."""
        if whole_stream and (cached := self._packs.get(stream_seq)) is not None:
            return [(stream_seq, cached)]
        count = 1
        if whole_stream and self._pack_events:
            count = min(_READ_AHEAD_PACKS, max(1, -(-wanted // self._pack_events)))
        found = await asyncio.gather(*(self._next_msg(stream_seq + i, subject) for i in range(count)))
        packs: list[tuple[int, Pack]] = []
        for msg in found:
            if msg is None:
                break  # nothing at or after this sequence: nothing after it either
            if not packs or msg.seq > packs[-1][0]:  # past a gap, two asks find the same message
                packs.append((msg.seq, self._decode(msg.seq, msg.data)))
        if packs:
            self._pack_events = max(1, len(packs[-1][1]))
        return packs

    async def _next_msg(self, stream_seq: int, subject: str) -> Any:
        try:
            return await self._js.get_msg(
                self._config.stream, seq=max(stream_seq, 1), subject=subject, direct=self._config.direct_get, next=True
            )
        except NotFoundError:
            return None

    async def _pack_at(self, stream_seq: int) -> Pack | None:
        if (pack := self._packs.get(stream_seq)) is not None:
            return pack
        try:
            msg = await self._js.get_msg(self._config.stream, seq=stream_seq, direct=self._config.direct_get)
        except NotFoundError:
            return None
        return self._decode(msg.seq, msg.data)

    def _decode(self, stream_seq: int, data: bytes) -> Pack:
        pack = self._packs.get(stream_seq)
        if pack is None:
            try:
                pack = Pack.decode(data or b"")
            except DecodeError as exc:
                raise self._not_a_pack(stream_seq) from exc
            self._packs.put(stream_seq, pack)
        return pack

    def _decode_ids(self, stream_seq: int, data: bytes) -> PackIds:
        """The ids and fingerprints of the pack (a start's read of the window: the pack is not cached)."""
        try:
            return Pack.decode_ids(data or b"")
        except DecodeError as exc:
            raise self._not_a_pack(stream_seq) from exc

    def _not_a_pack(self, stream_seq: int) -> FailedPrecondition:
        # Not written by a collector (someone published on the log's subjects) or damaged: failing loudly beats
        # skipping it, which would lose the events of a damaged pack without a word.
        return FailedPrecondition(
            f"message {stream_seq} of JetStream stream {self._config.stream} is not a pack of events: only "
            f"collectors may publish to {self._all_subjects}; remove it (nats stream rmm "
            f"{self._config.stream} {stream_seq}) and keep other publishers off those subjects",
            reason="LOG_MISCONFIGURED",
        )
