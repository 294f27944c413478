"""The scale-out event log: a NATS JetStream stream, one subject per shard of users.

Layout. Each group commit becomes, per shard, one JetStream message (a ``LogPack`` of up to 4,096
events) on ``<prefix>.<shard>``; the shard is a stable hash of the user. Packing is what makes
JetStream fast: its server spends 11–19 µs of CPU per stored message, so one message per event tops
out near 50k/s on two cores and near 4k/s once every message is fsynced, while packs keep the
per-event cost at the client (docs/design/jetstream-publishing.md has the measurements).

Positions. An event's position is ``stream_seq << 12 | index_in_pack``: totally ordered, stable, and
the same kind of cursor as the embedded log's. A reader resuming inside a pack skips what it had.

Exactly once. Every pack carries ``Nats-Msg-Id`` (a random id, reused when a publish whose ack was lost is
sent again), so that re-publish is absorbed by JetStream's duplicate window. Event ids are de-duplicated against
an index in memory (ids of the last ``dedup_window``), kept exact across collectors by optimistic
concurrency: each publish says ``Nats-Expected-Last-Subject-Sequence``, the last message of its shard this
collector has indexed. If another collector wrote to the shard meanwhile, JetStream refuses (10071); the
collector reads what it missed, re-checks the ids, and publishes the rest. On start, the index is rebuilt
from the stream.

Durability. An ack from JetStream means stored; it means on disk only when the server runs with
``sync_interval: always`` (or the stream has 3 replicas). See docs/collect.md.

nats-py is asyncio; the log's methods are synchronous (they run in the group committer's worker
thread), so the connection lives on an event loop of its own in a daemon thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections.abc import Sequence
from itertools import chain, repeat
from typing import Any

import nats
from nats.js.errors import APIError, NotFoundError

from svc_collect.store._jetstream_calls import NatsCalls
from svc_collect.store._jetstream_errors import (
    NATS_ERRORS,
    WRONG_LAST_SEQUENCE,
    connect_error,
    startup_error,
)
from svc_collect.store._jetstream_parts import (
    MAX_PACK_EVENTS,
    PACK_BITS,
    DedupIndex,
    JetStreamConfig,
    LoopThread,
    Pack,
    PackCache,
    position,
    results_per_batch,
    shard_of,
)
from svc_collect.store._jetstream_read import StreamReads
from svc_collect.store._jetstream_stream import ensure_stream, writes_columns
from svc_collect.store._log import (
    Appended,
    LogHead,
    LogPage,
    LogRow,
    SqlEventLog,
    WriteBatch,
    settle_known_rejections,
)
from svc_common.errors import ConfigError, FailedPrecondition, QimingError, Unavailable

log = logging.getLogger("qiming.collect.jetstream")
_MAX_ATTEMPTS = 8
_HEADER_ROOM_BYTES = 4096
_UNANSWERED_EVENTS = 200_000  # ~32 MB of ids and positions (tracemalloc)
_CACHED_PACKS = 64
_CACHED_EVENTS = 32_768
# How long after a refusal (another collector wrote to the shard) each publish first reads the shard's news.
_AHEAD_SECONDS = 30.0


async def _log_reconnected() -> None:
    log.info("reconnected to NATS")


class _ShardMoved(Exception):
    """Another collector appended to the shard since this one last indexed it."""


class JetStreamEventLog(StreamReads, NatsCalls):
    def __init__(self, config: JetStreamConfig, side: SqlEventLog) -> None:
        self._config = config
        self._side = side  # quarantine, releases and statistics stay in the service database
        self._subject = config.subject_prefix + ".{}"
        self._all_subjects = config.subject_prefix + ".*"
        self._index = DedupIndex(config.dedup_window_seconds * 1_000_000)
        self._shard_last = [0] * config.shards
        # Packs of others read per shard: a group that needs several packs checks its ids again before the next
        # pack when a catch-up (while publishing the one before) may have indexed some of them.
        self._caught_up = [0] * config.shards
        # When JetStream last refused a pack of the shard because another collector had written to it (monotonic
        # seconds): while that is recent, the shard's news is read before each publish (see _publish_parts).
        self._moved_at = [-_AHEAD_SECONDS] * config.shards
        self._packs = PackCache(_CACHED_PACKS, _CACHED_EVENTS)  # recently read or written packs
        # Events published by a group whose side records then failed, unanswered: event id → position. The committer
        # writes the group again batch by batch (or the client sends its batch again), which finds them stored; they
        # are answered as stored then, not DUPLICATE to the client that sent them once (``append``).
        self._unanswered: dict[str, int] = {}
        self._pack_events = 0  # events in the last pack read: how many packs a page asks for at once
        self._loop: LoopThread | None = None
        self._nc: Any = None
        self._closing = False  # a disconnection we asked for is no outage to warn about
        self._js: Any = None
        self._log_id = ""
        self._last_received_us = 0
        self._max_pack_bytes = config.max_pack_bytes
        self._max_message_bytes = config.max_pack_bytes
        self._timeout = config.publish_timeout_millis / 1000
        self._columns = True  # packs written in columns (see CollectSettings.jetstream_pack_format)
        # What the client reported while connecting: why a first connection fails (a refused login is followed by
        # the server closing the socket, so it is kept apart from the last error).
        self._last_error: Exception | None = None
        self._login_refused: Exception | None = None
        NatsCalls.__init__(self)

    async def _on_error(self, exc: Exception) -> None:
        self._last_error = exc
        if "authorization" in str(exc).lower() or "authentication" in str(exc).lower():
            self._login_refused = exc
        log.warning("NATS connection error: %s", exc)

    # -- lifecycle ---------------------------------------------------------------------------------

    def open(self) -> None:
        self._loop = LoopThread("jetstream-log")
        try:
            self._loop.run(self._open())
        except BaseException:
            self.close()
            raise

    def largest_row_bytes(self) -> int:
        """One event alone in a pack must fit in one message of the stream (``stored_row_bytes``)."""
        return self._max_message_bytes

    def close(self) -> None:
        if self._loop is None:
            return
        if self._nc is not None:
            self._closing = True
            with contextlib.suppress(Exception):
                self._loop.run(self._nc.close())
            self._nc = None
        self._loop.stop()
        self._loop = None

    async def _open(self) -> None:
        config = self._config
        self._closing = False
        try:
            # Reconnect forever once up (a NATS restart must not need a collector restart), but give up on
            # the first connection after the publish timeout: a start against nothing must fail loudly.
            self._nc = await asyncio.wait_for(
                nats.connect(
                    servers=[u.strip() for u in config.nats_url.split(",")],
                    name="qiming-collect",
                    connect_timeout=min(5, self._timeout),
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=1,
                    ping_interval=config.ping_interval_seconds,  # a hung server is dropped after 2 unanswered pings
                    max_outstanding_pings=2,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=_log_reconnected,
                ),
                self._timeout,
            )
        except Exception as exc:
            raise connect_error(exc, self._login_refused or self._last_error, config) from exc
        self._js = self._nc.jetstream(timeout=self._timeout)
        try:
            await self._open_stream()
        except NATS_ERRORS as exc:
            raise startup_error(exc, config) from exc
        except QimingError as exc:  # a stream the collector cannot read (a message that is not a pack): no restart
            raise ConfigError(str(exc)) from exc  # fixes it, so exit 2 (the unit does not restart it)

    async def _open_stream(self) -> None:
        config = self._config
        info = await ensure_stream(self._js, config, self._subject)
        self._columns = await writes_columns(self._js, config, info)
        self._log_id = hashlib.sha256(f"{config.stream}|{info.created}".encode()).hexdigest()[:32]
        largest = self._nc.max_payload
        if info.config.max_msg_size and info.config.max_msg_size > 0:  # a stream's own limit (headers included)
            largest = min(largest, info.config.max_msg_size)
        self._max_message_bytes = largest - _HEADER_ROOM_BYTES
        if self._max_message_bytes < _HEADER_ROOM_BYTES:
            raise ConfigError(
                f"JetStream stream {config.stream} takes messages of at most {largest} bytes (max_msg_size), too few "
                f"for packs of events: raise it to at least 1 MiB (nats stream edit --max-msg-size)"
            )
        self._max_pack_bytes = min(config.max_pack_bytes, self._max_message_bytes)
        for shard in range(config.shards):
            try:
                subject = self._subject.format(shard)
                last = await self._js.get_msg(config.stream, subject=subject, direct=config.direct_get)
                self._shard_last[shard] = last.seq
            except NotFoundError:
                pass
        # Rebuild the de-duplication index from the window's packs.
        now_us = time.time_ns() // 1000
        seq = await self._first_seq_received_since(now_us - config.dedup_window_seconds * 1_000_000)
        while (msg := await self._next_msg(seq, self._all_subjects)) is not None:
            pack = self._decode_ids(msg.seq, msg.data)
            self._index.add(msg.seq, pack)
            self._last_received_us = max(self._last_received_us, pack.received_at_us)
            seq = msg.seq + 1

    # -- writing -----------------------------------------------------------------------------------

    def head(self) -> LogHead:
        return self._run(self._head())

    async def _head(self) -> LogHead:
        info = await self._js.stream_info(self._config.stream)
        last_seq = info.state.last_seq
        if not last_seq:
            return LogHead(self._log_id, 0, self._last_received_us)
        pack = await self._pack_at(last_seq) if info.state.messages else None
        if pack is None:
            # The last pack aged out (max_age) or was deleted: the end is still after it, and cursors handed out
            # before stay valid.
            return LogHead(self._log_id, position(last_seq, MAX_PACK_EVENTS - 1), self._last_received_us)
        return LogHead(self._log_id, position(last_seq, len(pack) - 1), pack.received_at_us)

    def append(self, batches: Sequence[WriteBatch], now_us: int) -> list[list[Appended]]:
        """Publish the group's new events, one pack per shard, and record the rest in the database."""
        received_us = max(now_us, self._last_received_us)
        self._last_received_us = received_us
        results: list[list[Appended | None]]
        if self._config.shards == 1:
            # One shard (the default): first the usual case, a group of ids all new, in column operations.
            rows = batches[0].rows if len(batches) == 1 else list(chain.from_iterable(b.rows for b in batches))
            stored = self._run(self._append_new(rows, received_us)) if rows else []
            results = results_per_batch(batches, stored, len(rows))
            if len(stored) < len(rows):
                self._append_rest(batches, received_us, results)
        else:
            results = [[None] * len(batch.rows) for batch in batches]
            self._append_rest(batches, received_us, results)
        done: list[list[Appended]] = results  # type: ignore[assignment]
        if self._unanswered:
            self._answer_as_stored(batches, done)
        # Within the de-duplication window, as for the events themselves (docs/collect.md, "Exactly once").
        settle_known_rejections(batches, self._indexed)
        try:
            self._side.record_side(batches, done, received_us)
        except Exception:
            self._keep_unanswered(batches, done)
            raise
        return done

    def _keep_unanswered(self, batches: Sequence[WriteBatch], done: list[list[Appended]]) -> None:
        """The events this append stored, whose callers get the side records' error instead of their answer."""
        for batch, out in zip(batches, done, strict=True):
            for row, appended in zip(batch.rows, out, strict=True):
                if not appended.duplicate:
                    self._unanswered[row.event_id] = appended.seq
        while len(self._unanswered) > _UNANSWERED_EVENTS:  # the oldest go: their clients got the error long ago
            del self._unanswered[next(iter(self._unanswered))]

    def _answer_as_stored(self, batches: Sequence[WriteBatch], done: list[list[Appended]]) -> None:
        """A write again of events an append stored but could not answer (``_keep_unanswered``): stored now, the
        same payload at the same position, not DUPLICATE (the first stored copy is the one the log keeps)."""
        for batch, out in zip(batches, done, strict=True):
            for r, row in enumerate(batch.rows):
                seq = self._unanswered.get(row.event_id)
                if seq is not None and out[r].duplicate and out[r].seq == seq and not out[r].payload_mismatch:
                    out[r] = Appended(seq, False)
                    del self._unanswered[row.event_id]

    def _indexed(self, event_ids: list[str]) -> dict[str, tuple[int, str]]:
        """Position and fingerprint of the ids the log holds (rejected events of a group: rare). Other collectors'
        packs are read first: a retry may reach this collector after another one stored the event, and a rejected
        event is never published, so nothing else would make this collector read them."""
        try:
            self._run(self._read_all_news())
        except QimingError as exc:  # the events are published: answer from what this collector has read
            log.warning("reading other collectors' packs before a rejected event's look-up failed: %s", exc)
        get = self._index.get
        return {event_id: hit for event_id in event_ids if (hit := get(event_id)) is not None}

    async def _read_all_news(self) -> None:
        for shard in range(self._config.shards):
            await self._read_news(shard)

    async def _append_new(self, rows: list[LogRow], received_us: int) -> list[Appended]:
        """Publish ``rows`` if all their ids are new (none twice, none in the index): their results. Stops with
        the results of what it stored so far (none if the ids were not all new) when another collector wrote
        some of the ids meanwhile; the rest is then ``_append_rest``'s."""
        pack = Pack.of_rows(received_us, rows)
        ids = pack.event_ids
        if len(set(ids)) < len(ids) or not self._index.holds_none_of(ids):
            return []
        stored: list[Appended] = []
        for stream_seq, start, end in await self._publish_parts(0, pack, known_new=True):
            first = position(stream_seq, 0)  # a pack's events are at consecutive positions
            columns = range(first, first + end - start), repeat(False), repeat(False)  # seq, duplicate, mismatch
            stored += map(tuple.__new__, repeat(Appended), zip(*columns, strict=False))
        return stored

    async def _publish_parts(self, shard: int, pack: Pack, known_new: bool) -> list[tuple[int, int, int]]:
        """Publish ``pack``, whose ids are not in the index, in parts of the size allowed: (stream sequence, start,
        end) of each part stored. Stops early when catching up (another collector wrote to the shard) indexed ids
        of a part still to publish: the caller sorts the rest out. ``known_new``: none of the ids can have been
        indexed under another shard meanwhile (one shard), so the index takes them without looking."""
        caught_up = self._caught_up[shard]
        parts = pack.bounds(self._max_pack_bytes)
        stored = []
        for start, end in parts:
            part = pack if len(parts) == 1 else pack.part(start, end)
            if time.monotonic() - self._moved_at[shard] < _AHEAD_SECONDS:
                # Other collectors write to this shard: read what they wrote first (a small request when nothing,
                # their packs otherwise, which a refusal would make us read anyway) rather than send the pack to
                # have it refused. A refused pack cost a send of the whole pack (~1 µs of CPU per event) for nothing.
                await self._read_news(shard)
            if self._caught_up[shard] != caught_up and not self._index.holds_none_of(part.event_ids):
                break
            try:
                stream_seq = await self._publish_unchanged(shard, self._encoded(part), part.event_ids)
            except _ShardMoved:
                break
            if not known_new:
                self._apply(stream_seq, part)
            elif not self._index.holds_pack(stream_seq, part):  # else catching up found it by its id, and indexed it
                # Asked of the index, not of the pack cache: a reader (ReadEvents, GetIngestStats) on this loop may
                # have read the pack into the cache between its store and this ack, and it was then never indexed:
                # a retry of the acknowledged batch was stored again (walk 2026-12-07, leader reads with replicas).
                self._index.add_new(stream_seq, part)
                self._packs.put(stream_seq, part)
            stored.append((stream_seq, start, end))
        return stored

    def _append_rest(
        self, batches: Sequence[WriteBatch], received_us: int, results: list[list[Appended | None]]
    ) -> None:
        """Every event of ``batches`` without a result yet, one event at a time: ids seen before, the same id
        twice in the group, several shards, or a shard another collector wrote to meanwhile."""
        first: dict[str, tuple[int, int]] = {}
        repeats: list[tuple[int, int, LogRow]] = []
        by_shard: dict[int, list[tuple[int, int, LogRow]]] = {}
        shards = self._config.shards
        for b, batch in enumerate(batches):
            for r, row in enumerate(batch.rows):
                event_id = row.event_id
                if event_id in first:  # the same id twice in one group: the first one decides
                    repeats.append((b, r, row))
                    continue
                first[event_id] = (b, r)
                if results[b][r] is not None:
                    continue  # stored by _append_new
                key = row.user_id or row.anonymous_id or event_id
                by_shard.setdefault(shard_of(key, shards) if shards > 1 else 0, []).append((b, r, row))
        if by_shard:
            self._run(self._publish(by_shard, received_us, results))
        for b, r, row in repeats:
            fb, fr = first[row.event_id]
            original = results[fb][fr]
            assert original is not None
            # Compared with the copy the log keeps: the group's first copy may itself be a duplicate of an
            # older event with another payload (the index holds the kept copy's fingerprint either way).
            kept = self._index.get(row.event_id)
            kept_fingerprint = kept[1] if kept is not None else batches[fb].rows[fr].fingerprint
            results[b][r] = Appended(original.seq, True, kept_fingerprint != row.fingerprint)

    def _encoded(self, pack: Pack) -> bytes:
        data = pack.encode() if self._columns else pack.encode_rows()
        if len(data) > self._max_message_bytes:  # one event alone above what the server takes
            raise FailedPrecondition(
                f"one event ({len(data)} bytes packed) does not fit in a JetStream message of {self._max_message_bytes}"
                f" bytes: lower max_event_bytes, or raise the server's max_payload or the stream's max_msg_size",
                reason="LOG_MISCONFIGURED",
            )
        return data

    async def _publish(
        self,
        by_shard: dict[int, list[tuple[int, int, LogRow]]],
        received_us: int,
        results: list[list[Appended | None]],
    ) -> None:
        outcomes = await asyncio.gather(
            *(self._commit_shard(shard, items, received_us, results) for shard, items in by_shard.items()),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _commit_shard(
        self, shard: int, items: list[tuple[int, int, LogRow]], received_us: int, results: list[list[Appended | None]]
    ) -> None:
        for _ in range(_MAX_ATTEMPTS):
            fresh = []
            for b, r, row in items:
                if results[b][r] is not None:
                    continue
                earlier = self._index.get(row.event_id)
                if earlier is not None:
                    results[b][r] = Appended(earlier[0], True, earlier[1] != row.fingerprint)
                else:
                    fresh.append((b, r, row))
            try:
                await self._publish_packs(shard, fresh, received_us, results)
                return
            except _ShardMoved:
                await self._catch_up(shard)
        raise Unavailable(
            f"JetStream shard {shard} kept moving under concurrent writers; retry the batch",
            reason="LOG_CONTENDED",
        )

    async def _publish_packs(
        self, shard: int, items: list[tuple[int, int, LogRow]], received_us: int, results: list[list[Appended | None]]
    ) -> None:
        """Publish ``items`` (ids not in the index) and fill in their results. Raises _ShardMoved, with the results of
        what was stored filled in, when the shard moved with some of the ids."""
        pack = Pack.of_rows(received_us, [row for _, _, row in items])
        new_tuple = tuple.__new__
        done = 0
        for stream_seq, start, end in await self._publish_parts(shard, pack, known_new=False):
            first = position(stream_seq, 0)  # a pack's events are at consecutive positions
            for index, (b, r, _) in enumerate(items[start:end]):
                results[b][r] = new_tuple(Appended, (first + index, False, False))
            done = end
        if done < len(items):
            raise _ShardMoved

    async def _publish_unchanged(self, shard: int, data: bytes, event_ids: Sequence[str]) -> int:
        """Publish ``data``; when another collector wrote to the shard first, read what it wrote and publish
        the same bytes again if none of this pack's ids were among it (the usual case under concurrent
        collectors: building the pack again cost more than reading theirs). Raises _ShardMoved otherwise."""
        # Random, not a digest of the ~350 KB pack (hashing it cost ~3 % of the collector's CPU): the id only has
        # to stay the same across the re-publishes of these bytes, which reuse it.
        msg_id = uuid.uuid4().hex
        for _ in range(_MAX_ATTEMPTS):
            try:
                return await self._publish_pack(shard, data, msg_id, event_ids)
            except _ShardMoved:
                # The refused write may be our own re-send: a publish whose ack was lost, stored after the read
                # that looked for it. nats-server 2.15 checks the expected sequence before the duplicate window
                # (2.9 did it after), so such a re-send is refused, not acked as a duplicate: the pack is ours.
                if found := await self._catch_up(shard, msg_id):
                    return found
                if not self._index.holds_none_of(event_ids):
                    raise
        raise _ShardMoved

    async def _publish_pack(self, shard: int, data: bytes, msg_id: str, event_ids: Sequence[str]) -> int:
        """Store one pack of ``event_ids``; its stream sequence. Raises _ShardMoved when the shard has news to read
        first."""
        subject = self._subject.format(shard)
        for _ in range(_MAX_ATTEMPTS):
            headers = {
                "Nats-Msg-Id": msg_id,
                "Nats-Expected-Last-Subject-Sequence": str(self._shard_last[shard]),
            }
            try:
                ack = await self._js.publish(
                    subject, data, timeout=self._timeout, stream=self._config.stream, headers=headers
                )
            except APIError as exc:
                if exc.err_code == WRONG_LAST_SEQUENCE:
                    self._moved_at[shard] = time.monotonic()
                    raise _ShardMoved from exc
                raise  # _run maps it (a full stream, a deleted one …)
            except TimeoutError:  # nats.errors.TimeoutError is one too
                # The outcome is unknown: if the pack was stored, catching up finds it by its id. If NATS answers
                # nothing (down, or reconnecting), _run makes that UNAVAILABLE: the client retries the batch, and a
                # pack stored after all is found by that retry's catch-up (the shard moved), so nothing doubles.
                if found := await self._catch_up(shard, msg_id):
                    return found
                if not self._index.holds_none_of(event_ids) and await self._held_by_others(event_ids, msg_id):
                    # Another collector stored some of these events meanwhile (a client that gave up on this call
                    # sent the batch there): sending the pack again would store them twice (review 2026-12-07).
                    # The caller sorts them out event by event, as after a refusal.
                    raise _ShardMoved from None
                await asyncio.sleep(0.2)
                continue
            self._shard_last[shard] = max(self._shard_last[shard], ack.seq)
            return ack.seq
        raise Unavailable("JetStream did not acknowledge the write; retry the batch", reason="LOG_UNAVAILABLE")

    async def _held_by_others(self, event_ids: Sequence[str], msg_id: str) -> bool:
        """Whether a pack that is not ``msg_id``'s holds one of ``event_ids`` (after a publish timed out: rare). A
        pack of ours read by the catch-up without being recognised is left to JetStream's duplicate window."""
        held = {hit[0] >> PACK_BITS for event_id in event_ids if (hit := self._index.get(event_id)) is not None}
        for stream_seq in sorted(held):
            try:
                msg = await self._js.get_msg(self._config.stream, seq=stream_seq, direct=self._config.direct_get)
            except NotFoundError:
                continue  # aged out: it no longer holds them
            if (msg.headers or {}).get("Nats-Msg-Id") != msg_id:
                return True
        return False

    def _apply(self, stream_seq: int, pack: Pack) -> None:
        self._index.add(stream_seq, pack)
        self._packs.put(stream_seq, pack)

    async def _catch_up(self, shard: int, msg_id: str = "") -> int:
        """Index the shard's packs written by others since ours; the sequence of ``msg_id`` if seen."""
        subject = self._subject.format(shard)
        read, found = await self._read_news(shard, msg_id)
        if not read:
            # Nothing new, yet the write was refused (or its outcome is unknown): the shard's last packs may have
            # aged out (max_age) or been deleted, and JetStream then expects the last one left, or 0 for none.
            # Only ever lowered here: a pack written since the loop above is read by the next catch-up.
            try:
                last = await self._js.get_msg(self._config.stream, subject=subject, direct=self._config.direct_get)
                self._shard_last[shard] = min(self._shard_last[shard], last.seq)
            except NotFoundError:
                self._shard_last[shard] = 0
        return found

    async def _read_news(self, shard: int, msg_id: str = "") -> tuple[int, int]:
        """Index the shard's packs after the last one indexed: how many, and the sequence of ``msg_id`` if seen."""
        subject = self._subject.format(shard)
        found = 0
        read = 0
        while (msg := await self._next_msg(self._shard_last[shard] + 1, subject)) is not None:
            pack = self._decode(msg.seq, msg.data)
            self._apply(msg.seq, pack)
            self._shard_last[shard] = msg.seq
            self._last_received_us = max(self._last_received_us, pack.received_at_us)
            read += 1
            self._caught_up[shard] += 1
            if msg_id and (msg.headers or {}).get("Nats-Msg-Id") == msg_id:
                found = msg.seq
        return read, found

    # -- reading -----------------------------------------------------------------------------------

    def read(
        self,
        after_seq: int,
        limit: int,
        event_types: Sequence[str] = (),
        user_id: str | None = None,
        anonymous_id: str | None = None,
    ) -> LogPage:
        events = self._run(self._read(after_seq, limit, frozenset(event_types), user_id, anonymous_id))
        return LogPage(events, events[-1].seq if events else after_seq)

    def seq_before_time(self, received_us: int) -> int:
        return self._run(self._seq_before_time(received_us))

    def delivery_delays_us(self, start_us: int, end_us: int, limit: int) -> list[int]:
        return self._run(self._delivery_delays_us(start_us, end_us, limit))
