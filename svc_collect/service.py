"""svc_collect's domain: ingest once, validate, protect, durable before acknowledged; read by cursor;
statistics; quarantine. No gRPC here: the servicers in ``server.py`` translate."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from google.protobuf.message import DecodeError

from svc_collect.committer import STORE_DOWN, GroupCommitter
from svc_collect.config import CollectSettings
from svc_collect.output_only import clear_output_only, has_output_only
from svc_collect.protect import EventProtector, UndeclaredPersonalData
from svc_collect.read_masking import ReadMasking
from svc_collect.reading import Follows, customers_of, note_batch_customers, pages
from svc_collect.schemas import SchemaRegistry
from svc_collect.store import (
    Appended,
    LogHead,
    LogPage,
    LogRow,
    QuarantineRecord,
    QuarantineRow,
    SqlCatalog,
    StatRow,
    StoredEvent,
    WriteBatch,
    stored_row_bytes,
)
from svc_collect.store._log import ROW_FRAMING_BYTES
from svc_collect.validation import (
    NATIVE_AVAILABLE,
    NO_EVENT_TYPE,
    EventValidator,
    Rejection,
    flag_names,
    reason_name,
    reason_value,
    refuse_bad_filter,
    refuse_type_names,
    serialize,
)
from svc_collect.wire import encode_read_response
from svc_common.errors import (
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
    QimingError,
    ResourceExhausted,
    StartupError,
    Unavailable,
    refuse_reversed_range,
)
from svc_common.paging import PAGE_BYTES, fitting
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import errors_pb2, event_pb2
from svc_common.protection import Fingerprinter, KeyProvider, SealError, SystemEventSigner
from svc_common.server import note_customers

ACCEPTED = collect_pb2.EVENT_STATUS_ACCEPTED
DUPLICATE = collect_pb2.EVENT_STATUS_DUPLICATE
REJECTED = collect_pb2.EVENT_STATUS_REJECTED
_DELAY_SAMPLE = 10_000
READ_MESSAGE_BYTES = PAGE_BYTES  # a ReadEvents message's events (one event at least)
_EVENT_FRAMING_BYTES = 64  # received_at, cursor, fingerprint and the field's tag and length


log = logging.getLogger("qiming.collect")


class EventLog(Protocol):
    """Where accepted events go: the embedded SQL log, or NATS JetStream."""

    def open(self) -> None: ...

    def close(self) -> None: ...

    def largest_row_bytes(self) -> int | None:
        """Once open: the most bytes one stored event may take (``stored_row_bytes``); None: no limit a
        ``max_event_bytes`` could reach (the SQL log)."""
        ...

    def head(self) -> LogHead: ...

    def append(self, batches: Sequence[WriteBatch], now_us: int) -> list[list[Appended]]: ...

    def read(
        self,
        after_seq: int,
        limit: int,
        event_types: Sequence[str] = (),
        user_id: str | None = None,
        anonymous_id: str | None = None,
    ) -> LogPage: ...

    def seq_before_time(self, received_us: int) -> int: ...

    def delivery_delays_us(self, start_us: int, end_us: int, limit: int) -> list[int]: ...


@dataclass(frozen=True, slots=True)
class EventOutcome:
    """The fate of one event of a batch (built into ``EventResult`` by the servicer)."""

    index: int
    event_id: str
    status: int
    reason: int = 0
    field: str = ""
    message: str = ""
    cursor: str = ""
    quarantine_id: str = ""


_HEX_DIGITS = "0123456789abcdef"
RELEASED_MESSAGE = "released by an earlier replay: the event is in the log at this cursor"
HELD_MESSAGE = "the log holds this very event (it was sent again and accepted): released at its cursor"
PAYLOAD_MISMATCH_MESSAGE = "the same event_id was sent before with a different payload; the first one is kept"
REPLAY_MISMATCH_MESSAGE = (
    "the log holds another event under this event_id (a different payload), so this one was not stored; if it is a "
    "different event, send it again with a new event_id"
)


class IngestOutcomes(Sequence[EventOutcome]):
    """The outcomes of a batch, in order, kept compact: per event, the index of its row in ``rows`` /
    ``appended`` (it reached the log, as new or as a duplicate) or its ``EventOutcome`` (rejected).

    The servicer writes the results of a 1,000-event batch straight from this form (``log_tag``,
    ``rows[i].event_id``, ``appended[i].seq``); ``EventOutcome`` objects are made only when someone
    indexes or iterates (tests, replay)."""

    __slots__ = ("_list", "appended", "items", "log_tag", "rows")

    def __init__(self, items: list[int | EventOutcome], rows: list[LogRow], appended: list[Appended], log_tag: str):
        self.items = items
        self.rows = rows
        self.appended = appended
        self.log_tag = log_tag
        self._list: list[EventOutcome] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):  # type: ignore[no-untyped-def, override]
        return self.materialize()[index]

    def __iter__(self) -> Iterator[EventOutcome]:
        return iter(self.materialize())

    def materialize(self) -> list[EventOutcome]:
        if self._list is None:
            out: list[EventOutcome] = []
            for index, item in enumerate(self.items):
                if isinstance(item, EventOutcome):
                    out.append(item)
                    continue
                result = self.appended[item]
                cursor = f"{self.log_tag}.{result.seq:x}"
                event_id = self.rows[item].event_id
                if not result.duplicate:
                    out.append(EventOutcome(index, event_id, ACCEPTED, cursor=cursor))
                elif result.payload_mismatch:
                    reason = errors_pb2.ERROR_REASON_PAYLOAD_MISMATCH
                    out.append(
                        EventOutcome(
                            index, event_id, DUPLICATE, reason, message=PAYLOAD_MISMATCH_MESSAGE, cursor=cursor
                        )
                    )
                else:
                    out.append(EventOutcome(index, event_id, DUPLICATE, cursor=cursor))
            self._list = out
        return self._list


@dataclass(frozen=True, slots=True)
class IngestStats:
    by_type: list[tuple[str, int, int, int]]
    by_minute: list[tuple[int, int, int, int]]
    ingest_lag_millis: int
    delay_p50_millis: int
    delay_p99_millis: int


def now_micros() -> int:
    return time.time_ns() // 1000


class CollectService:
    def __init__(self, settings: CollectSettings, log: EventLog, catalog: SqlCatalog, keys: KeyProvider) -> None:
        self.settings = settings
        self._log = log
        self._catalog = catalog
        self.schemas = SchemaRegistry(catalog, settings.max_properties_per_event)
        self._validator = EventValidator(settings, self.schemas.schema_for, SystemEventSigner(keys))
        self._protector = EventProtector(
            keys, settings.sensitive_properties, settings.undeclared_pii, native=settings.native_checks
        )
        self._fingerprints = Fingerprinter(keys)
        self._read_masking = ReadMasking(self._protector, self.schemas)
        self._committer: GroupCommitter[WriteBatch, list[Appended]] = GroupCommitter(
            lambda batches: self._log.append(batches, now_micros()), settings.commit_max_events
        )
        self._unmask_roles = frozenset(settings.unmask_roles)
        self._log_tag = ""
        self._largest_row: int | None = None
        self.follows = Follows()
        self.log_unavailable: Callable[[str], None] | None = None
        """Told when an append finds the log (or its database) unavailable: the log's health probe's ``failed``."""

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._log.open)
        try:
            head = await asyncio.to_thread(self._log.head)
        except QimingError as exc:  # the log went away right after it opened: the start fails, not a call
            raise StartupError(f"the event log did not answer at start: {exc}") from exc
        self._log_tag = head.log_id.replace("-", "")[:8] or "00000000"
        self._largest_row = self._log.largest_row_bytes()
        plain_row_bytes = 2 * self.settings.max_event_bytes + ROW_FRAMING_BYTES  # stored_row_bytes's bound
        if self._largest_row is not None and self._largest_row < plain_row_bytes:  # an event as it came may not fit
            log.warning(
                "max_event_bytes = %d: one message of the event log holds events of at most %d bytes as stored; larger"
                " ones are rejected (EVENT_TOO_LARGE). Raise NATS's max_payload or the stream's max_msg_size.",
                self.settings.max_event_bytes,
                self._largest_row,
            )
        self.follows.reopen()
        # Receive times never go back (a log's are at least its newest): events stored before this start are at most
        # the head's, whatever the clock says now.
        start_us = max(now_micros(), head.last_received_us)
        await asyncio.to_thread(self.schemas.settle_sensitive_names, self.settings.sensitive_properties, start_us)
        await self.schemas.start()
        self._committer.start()
        if self._validator.native:
            log.info("events are checked in C first (svc_collect._fastcheck); the rest in Python")
        else:
            log.info(
                "events are checked in Python: %s",
                "native_checks is off" if NATIVE_AVAILABLE else "this install has no C extension (a pure-Python build)",
            )

    def end_follows(self) -> None:
        """The server is stopping: every following ReadEvents sends its position and ends (the reader resumes
        from its cursor elsewhere or after the restart) instead of holding the stop for the whole grace period."""
        self.follows.end()

    async def stop(self) -> None:
        await self._committer.close()
        await self.schemas.stop()
        await asyncio.to_thread(self._log.close)

    @property
    def event_log(self) -> EventLog:
        return self._log

    # -- cursors -----------------------------------------------------------------------------------

    def cursor(self, seq: int) -> str:
        return f"{self._log_tag}.{seq:x}"

    def parse_cursor(self, cursor: str, field: str = "after_cursor") -> int:
        tag, _, position = cursor.partition(".")
        # As ``cursor`` writes it: lower-case hex digits alone (``int`` also took "0x1", "+1", " 1 ", "0_1", "١").
        seq = int(position, 16) if position and position.strip(_HEX_DIGITS) == "" else -1
        if tag != self._log_tag or seq < 0 or len(cursor) > 40:
            raise InvalidArgument(
                f"{field} {cursor[:40]!r} is not a cursor of this log",
                reason="INVALID_CURSOR",
                violations=[FieldViolation(field, "pass back a cursor this log returned, unchanged")],
            )
        return seq

    async def refuse_cursor_ahead(self, seq: int, cursor: str) -> None:
        """A cursor is handed out only after its event is committed, so one beyond the head was never this log's
        as it is now: a database restored from a backup (it keeps its log id) or a forged cursor. Resuming after
        it would skip, silently, every new event up to that position."""
        head = await asyncio.to_thread(self._log.head)
        if seq > head.last_seq:
            raise InvalidArgument(
                f"after_cursor {cursor[:40]!r} is beyond the end of this log (position {head.last_seq:x}):"
                " the log was restored from a backup, or the cursor is forged",
                reason="INVALID_CURSOR",
                violations=[
                    FieldViolation("after_cursor", "beyond the log's end: resume from a cursor this log returned")
                ],
            )

    # -- ingest ------------------------------------------------------------------------------------

    async def ingest(self, events: Sequence[event_pb2.Event], output_only_cleared: bool = False) -> IngestOutcomes:
        """Validate, protect and durably append ``events``; one outcome per event, in order.

        ``output_only_cleared``: the caller has cleared the events' output-only fields already (the servicer does,
        from the request's bytes: ``output_only.clear_output_only_in``)."""
        limit = self.settings.max_batch_events
        if len(events) > limit:
            raise ResourceExhausted(
                f"batch has {len(events)} events; the limit is {limit} (split it, or raise max_batch_events)",
                reason="BATCH_TOO_LARGE",
                metadata={"max_batch_events": str(limit)},
            )
        if not events:
            return IngestOutcomes([], [], [], self._log_tag)
        now_us = now_micros()
        batch, pending = self._prepare(events, now_us, output_only_cleared=output_only_cleared)
        note_batch_customers(batch.rows, pending, events)
        appended = await self._append(batch)
        if batch.known:
            pending = self._known_as_duplicates(pending, batch.known)
        return IngestOutcomes(pending, batch.rows, appended, self._log_tag)

    async def _append(self, batch: WriteBatch) -> list[Appended]:
        try:
            appended = await self._committer.submit(batch)
        except Unavailable as exc:
            # The store is down (not a write that lost a race, LOG_CONTENDED): health turns NOT_SERVING now, not at
            # the next probe.
            if self.log_unavailable is not None and exc.reason in STORE_DOWN:
                self.log_unavailable(exc.message)
            raise
        self.follows.appended()
        return appended

    def _prepare(
        self,
        events: Sequence[event_pb2.Event],
        now_us: int,
        received_us: Sequence[int] | None = None,
        *,
        output_only_cleared: bool = False,
    ) -> tuple[WriteBatch, list[int | EventOutcome]]:
        """CPU work per event; ``pending[i]`` is the row index in the batch, or the event's outcome.

        ``received_us[i]``, when given (a replay), is when event i first reached the collector: its
        ``occurred_at`` is judged against that, not against ``now_us``.

        The hot loop of the collector: each event is serialized once (by the validator, after its id is
        normalized); that encoding is fingerprinted and, unless protection or flags changed the event,
        stored as it is."""
        rows: list[LogRow] = []
        quarantined: list[QuarantineRow] = []
        pending: list[int | EventOutcome] = []
        check = self._validator.check
        fingerprint = self._fingerprints.fingerprint
        protect = self._protector.protect
        append_row = rows.append
        append_pending = pending.append
        new_row = tuple.__new__
        largest = self._largest_row
        # Payload and sealed values up to this size fit whatever the ids (their bytes are the event's, at most): where
        # it is at least max_event_bytes, only an event protection made larger is ever measured.
        sure_fit = largest - self.settings.max_event_bytes - ROW_FRAMING_BYTES if largest is not None else 0
        for index, event in enumerate(events):
            if not output_only_cleared and has_output_only(event):
                clear_output_only(event)
            verdict = check(event, now_us if received_us is None else received_us[index])
            if verdict.__class__ is Rejection:
                q = self._quarantine_row(event, verdict)  # type: ignore[arg-type]
                quarantined.append(q)
                append_pending(_rejected(index, event.event_id, verdict, q.quarantine_id))  # type: ignore[arg-type]
                continue
            flags, data, occurred_us, schema, names, identities, event_id, event_type, user_id, anonymous_id = verdict  # type: ignore[misc]
            try:  # free unless raised (3.11 zero-cost try)
                sealed, changed = protect(event, schema, names, identities, data)
            except UndeclaredPersonalData as refused:  # undeclared_pii = "reject"; the event is unchanged
                q = self._quarantine_row(event, refused.rejection)
                quarantined.append(q)
                append_pending(_rejected(index, event.event_id, refused.rejection, q.quarantine_id))
                continue
            if flags:
                event.flags.extend(flag_names(flags))
            payload = event.SerializeToString() if (changed or flags) else data
            if (
                largest is not None
                and len(payload) + (len(sealed) if sealed else 0) > sure_fit  # one comparison for nearly all
                and (size := stored_row_bytes(payload, sealed, event_id, event_type, user_id, anonymous_id)) > largest
            ):
                rejection = _too_large_to_store(size, largest)
                q = self._quarantine_row(event_pb2.Event.FromString(data), rejection)  # as it came
                quarantined.append(q)
                append_pending(_rejected(index, event.event_id, rejection, q.quarantine_id))
                continue
            append_pending(len(rows))
            append_row(
                new_row(  # LogRow(...) without its Python-level __new__
                    LogRow,
                    (
                        event_id,
                        event_type,
                        user_id or None,
                        anonymous_id or None,
                        occurred_us,
                        fingerprint(data),
                        flags,
                        payload,
                        sealed,
                    ),
                )
            )
        return WriteBatch(rows, quarantined, now_us), pending

    def _quarantine_row(self, event: event_pb2.Event, rejection: Rejection) -> QuarantineRow:
        quarantine_id = str(uuid.uuid4())
        sealed = self._protector.sealer.seal(event.SerializeToString(), quarantine_id.encode())
        # A valid id (normalized by the validator) may be one the log holds: the append answers a retry of the same
        # payload DUPLICATE, comparing this fingerprint with the stored copy's (computed as for an accepted event).
        fingerprint = None
        if rejection.field != "event_id":
            fingerprint = self._fingerprints.fingerprint(serialize(event, deterministic=True))
        return QuarantineRow(
            quarantine_id,
            event.event_id,
            event.event_type or NO_EVENT_TYPE,
            rejection.reason_name,
            rejection.field,
            rejection.message,
            sealed,
            fingerprint,
        )

    def _known_as_duplicates(
        self, pending: list[int | EventOutcome], known: dict[str, Appended]
    ) -> list[int | EventOutcome]:
        """The outcomes of a batch with its rejected events that the log holds already answered DUPLICATE."""
        out: list[int | EventOutcome] = []
        for item in pending:
            stored = known.get(item.quarantine_id) if item.__class__ is EventOutcome else None  # type: ignore[union-attr]
            if stored is not None:
                item = EventOutcome(item.index, item.event_id, DUPLICATE, cursor=self.cursor(stored.seq))  # type: ignore[union-attr]
            out.append(item)
        return out

    # -- reading -----------------------------------------------------------------------------------

    def check_unmask(self, roles: frozenset[str]) -> None:
        if not roles & self._unmask_roles:
            raise PermissionDenied(
                "reading level 3+ values in clear needs one of the roles " + ", ".join(sorted(self._unmask_roles)),
                reason="PERMISSION_DENIED",
            )

    async def read(
        self,
        request: collect_pb2.ReadEventsRequest,
        roles: frozenset[str],
    ) -> AsyncIterator[tuple[list[event_pb2.Event], str]]:
        """Batches of events in log order, each with the cursor of its last event; a batch without events carries
        the position a filtered read reached (see ``reading.pages``)."""
        async for stored, cursor in pages(self, request, roles):
            if not request.unmask:
                stored = self._read_masking.apply(stored)
            yield [self._to_event(s, request.unmask) for s in stored], cursor

    async def read_encoded(self, request: collect_pb2.ReadEventsRequest, roles: frozenset[str]) -> AsyncIterator[bytes]:
        """The same batches as :meth:`read`, each already encoded as a ``ReadEventsResponse``.

        Masked reads (the usual case) frame the stored payloads without decoding them (``wire.py``)."""
        async for stored, cursor in pages(self, request, roles):
            if not request.unmask:
                stored = self._read_masking.apply(stored)  # values stored in clear before their schema protected them
            for part, part_cursor in self._parts_by_size(stored, cursor):
                if request.unmask:
                    events = [self._to_event(s, True) for s in part]
                    yield collect_pb2.ReadEventsResponse(events=events, cursor=part_cursor).SerializeToString()
                else:
                    yield encode_read_response(part, self._log_tag, part_cursor)

    def _parts_by_size(self, stored: list[StoredEvent], cursor: str) -> Iterator[tuple[list[StoredEvent], str]]:
        """A page in messages of at most ``READ_MESSAGE_BYTES`` of events (one event at least), each with its last
        event's cursor: 500 events of up to 64 KiB each (``max_event_bytes``) would pass the 4 MiB a default gRPC
        client accepts, and the server's own send limit, failing the stream in the middle of the log."""
        sizes = [len(s.payload) + (len(s.sealed) if s.sealed else 0) + _EVENT_FRAMING_BYTES for s in stored]
        start = 0
        while (end := start + fitting(sizes[start:], READ_MESSAGE_BYTES)) < len(stored):
            yield stored[start:end], self.cursor(stored[end - 1].seq)
            start = end
        yield stored[start:], cursor

    def _to_event(self, stored: StoredEvent, unmask: bool) -> event_pb2.Event:
        event = event_pb2.Event.FromString(stored.payload)
        event.received_at.FromMicroseconds(stored.received_at_us)
        event.cursor = self.cursor(stored.seq)
        event.fingerprint = stored.fingerprint
        if unmask and stored.sealed is not None:
            self._protector.unmask(event, stored.sealed)
        return event

    # -- statistics --------------------------------------------------------------------------------

    async def stats(self, start_us: int | None, end_us: int | None, event_types: Sequence[str]) -> IngestStats:
        refuse_bad_filter("event_types", event_types)
        _check_stats_request(start_us, end_us, event_types)
        now = now_micros()
        end = end_us if end_us is not None else now + 60_000_000
        start = start_us if start_us is not None else end - 3_600_000_000
        rows: list[StatRow] = await asyncio.to_thread(self._catalog.stats, start, end, event_types)
        by_type: dict[str, list[int]] = {}
        by_minute: dict[int, list[int]] = {}
        for r in rows:
            for bucket in (by_type.setdefault(r.event_type, [0, 0, 0]), by_minute.setdefault(r.minute_us, [0, 0, 0])):
                bucket[0] += r.accepted
                bucket[1] += r.duplicate
                bucket[2] += r.rejected
        head = await asyncio.to_thread(self._log.head)
        lag = (now - head.last_received_us) // 1000 if head.last_seq and head.last_received_us else 0
        # Events flagged occurred_at_in_future / _too_old are left out: one event stamped five years ago made the
        # p99 five years (their time is the client's clock, not a delivery).
        future_us, age_us = (
            self.settings.max_future_skew_seconds * 1_000_000,
            self.settings.max_event_age_seconds * 1_000_000,
        )
        sample = await asyncio.to_thread(self._log.delivery_delays_us, start, end, _DELAY_SAMPLE)
        delays = sorted(d for d in sample if -future_us <= d <= age_us)
        p50 = int(statistics.median(delays)) // 1000 if delays else 0
        p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))] // 1000 if delays else 0
        return IngestStats(
            by_type=[(t, *v) for t, v in sorted(by_type.items())],  # type: ignore[misc]
            by_minute=[(m, *v) for m, v in sorted(by_minute.items())],  # type: ignore[misc]
            ingest_lag_millis=max(lag, 0),
            delay_p50_millis=p50,
            delay_p99_millis=p99,
        )

    # -- quarantine --------------------------------------------------------------------------------

    def open_quarantined(self, record: QuarantineRecord) -> event_pb2.Event:
        return event_pb2.Event.FromString(
            self._protector.sealer.open(record.sealed_event, record.quarantine_id.encode())
        )

    def try_open_quarantined(self, record: QuarantineRecord) -> tuple[event_pb2.Event, str | None]:
        """``record``'s event, or (when its sealed copy cannot be opened: its key left the keyring, or the bytes are
        damaged) one holding only its id and type, and why: such a record is listed and answered alone, instead of
        failing every page or replay that reaches it."""
        try:
            return self.open_quarantined(record), None
        except (SealError, DecodeError) as exc:
            why = f"its sealed copy cannot be opened ({exc}): restore its key to the keyring, or leave it"
            return event_pb2.Event(event_id=record.event_id, event_type=record.event_type), why

    def masked(self, event: event_pb2.Event) -> event_pb2.Event:
        return self._protector.mask_copy(event, self.schemas.schema_for(event.event_type))

    async def replay(self, records: Sequence[QuarantineRecord]) -> list[EventOutcome]:
        """Re-validate quarantined events; those that pass enter the log (de-duplicated as ever)."""
        now_us = now_micros()
        opened = {r.quarantine_id: self.try_open_quarantined(r) for r in records if r.released_seq is None}
        problems = {quarantine_id: why for quarantine_id, (_, why) in opened.items() if why is not None}
        live = [r for r in records if r.released_seq is None and r.quarantine_id not in problems]
        events = [opened[r.quarantine_id][0] for r in live]
        note_customers(*customers_of(events))
        # On time when it arrived is on time: a replay days later must not find it too old.
        batch, pending = self._prepare(events, now_us, [r.quarantined_at_us for r in live])
        # A replay must not quarantine the same event a second time: failures only update the old record, or release
        # it when the log holds that very event (sent again since, and accepted then).
        prepared = {q.quarantine_id: q for q in batch.quarantined}
        batch.quarantined = []
        for record, item in zip(live, pending, strict=True):
            if isinstance(item, int):
                batch.releases[record.quarantine_id] = item
            elif (q := prepared.get(item.quarantine_id)) is not None and q.fingerprint is not None:
                batch.replayed.append(dataclasses.replace(q, quarantine_id=record.quarantine_id))
        appended = await self._append(batch) if batch.rows or batch.replayed else []
        known = batch.known
        failed = [(r, item) for r, item in zip(live, pending, strict=True) if isinstance(item, EventOutcome)]
        for record, outcome in failed:
            if record.quarantine_id in known:
                continue
            await asyncio.to_thread(
                self._catalog.note_failed_replay,
                record.quarantine_id,
                reason_name(outcome.reason),
                outcome.field,
                outcome.message,
            )
        for record, item in zip(live, pending, strict=True):
            if isinstance(item, int) and appended[item].payload_mismatch:
                # The log holds another event under this id: this one was not stored and stays quarantined (listed,
                # unresolved), not released as if it were in the log.
                await asyncio.to_thread(
                    self._catalog.note_failed_replay,
                    record.quarantine_id,
                    "PAYLOAD_MISMATCH",
                    "event_id",
                    REPLAY_MISMATCH_MESSAGE,
                )
        outcomes = IngestOutcomes(pending, batch.rows, appended, self._log_tag)
        # Results in the order of ``records``; one released by an earlier replay is a DUPLICATE at its position in
        # the log (asked for by id again: the caller learns where it went instead of getting no answer for it).
        position = {id(r): i for i, r in enumerate(records)}
        results = [
            EventOutcome(
                released_index,
                r.event_id,
                DUPLICATE,
                message=RELEASED_MESSAGE,
                cursor=self.cursor(seq),
                quarantine_id=r.quarantine_id,
            )
            for released_index, r in enumerate(records)
            if (seq := r.released_seq) is not None
        ]
        results += [  # left as they are: still quarantined, not counted as a failed replay
            EventOutcome(
                i,
                r.event_id,
                REJECTED,
                reason_value(r.reason),
                r.field_path,
                problems[r.quarantine_id],
                "",
                r.quarantine_id,
            )
            for i, r in enumerate(records)
            if r.quarantine_id in problems
        ]
        released = batch.released
        for o in outcomes:
            record = live[o.index]
            stored = known.get(record.quarantine_id) if o.status == REJECTED else None
            if stored is not None:  # still refused by the checks, but the log holds this very event: released now
                o = EventOutcome(o.index, o.event_id, DUPLICATE, message=HELD_MESSAGE, cursor=self.cursor(stored.seq))
            if o.status == DUPLICATE and o.reason == 0 and record.quarantine_id not in released:
                # A replay of the same record beside this one released it first: answered as released before.
                o = EventOutcome(o.index, o.event_id, DUPLICATE, message=RELEASED_MESSAGE, cursor=o.cursor)
            results.append(dataclasses.replace(o, index=position[id(record)], quarantine_id=record.quarantine_id))
        return sorted(results, key=lambda o: o.index)


def _too_large_to_store(size: int, largest: int) -> Rejection:
    """EVENT_TOO_LARGE for an event the log cannot hold as stored (one JetStream message each at most). It is
    quarantined as it came (``data``: protection's drops and masks are done again by a replay)."""
    return Rejection(
        errors_pb2.ERROR_REASON_EVENT_TOO_LARGE,
        "",
        f"event takes {size} bytes as the log stores it (sealed and pseudonymized values, ids, framing); one message"
        f" of the JetStream log holds {largest}: send smaller events, or raise NATS's max_payload (and the stream's"
        " max_msg_size), restart the collectors, and replay",
    )


def _rejected(index: int, event_id: str, rejection: Rejection, quarantine_id: str) -> EventOutcome:
    return EventOutcome(
        index, event_id, REJECTED, rejection.reason, rejection.field, rejection.message, quarantine_id=quarantine_id
    )


def _check_stats_request(start_us: int | None, end_us: int | None, event_types: Sequence[str]) -> None:
    """GetIngestStats: a range that ends before it starts, or a name no event type can have, is INVALID_ARGUMENT
    (both answered OK and empty: a caller's swapped bounds or typo looked like no traffic)."""
    refuse_reversed_range(start_us, end_us)
    refuse_type_names(event_types, counted=True)  # "(none)", "(invalid)": counts of rejected events
