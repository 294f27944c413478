"""The embedded event log: a table in the service database, appended by one writer at a time.

Why one writer: a position (``seq``) must be a stable cursor. If two transactions took positions 7 and 8
and 8 committed first, a reader could pass 8 and never see 7. Each append therefore locks the single
``collect_log_head`` row (SQLite: ``BEGIN IMMEDIATE``), takes the next positions, writes, and commits;
positions follow commit order on every database. Throughput comes from group commit instead: the
service hands the writer every batch that arrived meanwhile, and one transaction makes them all durable.

De-duplication is exact, not windowed: under the lock, the ids of the group are looked up in the unique
index, so a re-sent id is found across batches, restarts and concurrent collectors.

The hot path talks to the driver directly: on PostgreSQL a writer with a connection of its own and four round
trips per append (``_pg_append.py``), COPY on openGauss, ``executemany`` elsewhere; everything else goes through
SQLAlchemy Core.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import NamedTuple

from psycopg.errors import UniqueViolation
from sqlalchemy import Table, and_, bindparam, func, insert, select, update
from sqlalchemy.engine import Connection

from svc_collect.store._pg_append import PgAppender
from svc_collect.store._sqlite_binding import bind_bytes_and_none_directly
from svc_collect.store._stats import MinuteCounts
from svc_collect.validation import counted_event_type
from svc_common.db import Database, DriverQuery, copy_span, storable_text

_HEAD_ID = 1
_LOOKUPS_AFTER_MISS = 16
_EVENT_ID_INDEX = "ux_collect_event_event_id"
_ID_CHUNK = 500
LOG_COLUMNS = (
    "seq",
    "event_id",
    "event_type",
    "user_id",
    "anonymous_id",
    "occurred_at_us",
    "received_at_us",
    "fingerprint",
    "flags",
    "payload",
    "sealed_values",
)

# The order in which an append writes them: a LogRow's fields, then the position and the receive time, so that the
# row written is ``log_row + (seq, received_us)`` (one tuple concatenation instead of reading nine attributes).
WRITE_COLUMNS = (*LOG_COLUMNS[1:6], *LOG_COLUMNS[7:], LOG_COLUMNS[0], LOG_COLUMNS[6])
# The PostgreSQL types of WRITE_COLUMNS, for binary COPY (varchar travels as text).
_COPY_TYPES = ("text", "text", "text", "text", "int8", "text", "int4", "bytea", "bytea", "int8", "int8")


class LogRow(NamedTuple):
    """One validated, protected event ready for the log; made as ``tuple.__new__(LogRow, values)`` (one per event)."""

    event_id: str
    event_type: str
    user_id: str | None
    anonymous_id: str | None
    occurred_at_us: int
    fingerprint: str
    flags: int
    payload: bytes
    sealed: bytes | None


ROW_FRAMING_BYTES = 512
"""What a row takes beside its payload, sealed values and ids where a log packs it (JetStream: the pack's fields, the
fingerprint, times, flags): more than they need."""


def stored_row_bytes(
    payload: bytes, sealed: bytes | None, event_id: str, event_type: str, user_id: str, anonymous_id: str
) -> int:
    """An upper bound of what one event takes in the log (``EventLog.largest_row_bytes``), its ids counted again, as a
    pack holds them beside the payload (their bytes are part of the payload's: at most 2 × a plain event's size)."""
    ids = f"{event_id}{event_type}{user_id}{anonymous_id}".encode()
    return len(payload) + (len(sealed) if sealed is not None else 0) + len(ids) + ROW_FRAMING_BYTES


@dataclass(slots=True)
class QuarantineRow:
    quarantine_id: str
    event_id: str
    event_type: str
    reason: str
    field_path: str
    message: str
    sealed_event: bytes
    # The rejected event's fingerprint when its event_id is valid: if the log holds that id already, the event is
    # a re-sent one and is answered DUPLICATE instead (:func:`settle_known_rejections`).
    fingerprint: str | None = None


@dataclass(slots=True)
class WriteBatch:
    """What one request makes durable: events for the log, and the events it rejected."""

    rows: list[LogRow]
    quarantined: list[QuarantineRow] = field(default_factory=list)
    received_us: int = 0
    # Quarantined events a replay let in: quarantine_id -> index into rows.
    releases: dict[str, int] = field(default_factory=dict)
    # Set by the append: rejected events whose id the log already holds (quarantine_id -> the stored copy). They are
    # not quarantined, and count as duplicates.
    known: dict[str, Appended] = field(default_factory=dict)
    # A replay's events still rejected, under their records' ids: never inserted; one the log holds (the same event,
    # sent again since) has its record released at the stored copy's position.
    replayed: list[QuarantineRow] = field(default_factory=list)
    # Set by the append: the quarantine records it released (``released_records``), not those a concurrent replay of
    # the same record had released first.
    released: set[str] = field(default_factory=set)

    def size(self) -> int:
        return len(self.rows) + len(self.quarantined)


class Appended(NamedTuple):
    """Where an event of the batch is in the log, and whether it was there already (a tuple: one per event)."""

    seq: int
    duplicate: bool
    # A duplicate whose payload differs from the first copy's (the first copy is kept).
    payload_mismatch: bool = False


# Positions examined per statement when reading one person's events (a primary-key range with a filter).
USER_SCAN_WINDOW = 50_000


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    received_at_us: int
    fingerprint: str
    flags: int
    payload: bytes
    sealed: bytes | None


@dataclass(frozen=True, slots=True)
class LogPage:
    """Events of one read, and the position up to which the log was examined for it: at least the last
    event's, further when the filter matched nothing after it (a follower need not look there again)."""

    events: list[StoredEvent]
    scanned_to: int


@dataclass(frozen=True, slots=True)
class LogHead:
    log_id: str
    last_seq: int
    last_received_us: int


def page_query(event: Table) -> DriverQuery:
    """A follower's page: the events after a position, in order (the hot read, run on the driver)."""
    c = event.c
    return DriverQuery(
        lambda: (
            select(c.seq, c.received_at_us, c.fingerprint, c.flags, c.payload, c.sealed_values)
            .where(c.seq > bindparam("after"))
            .order_by(c.seq)
            .limit(bindparam("limit"))
        )
    )


class SqlEventLog:
    def largest_row_bytes(self) -> None:
        """No limit: a row takes what a database column takes (1 GB), far above any ``max_event_bytes``."""
        return None

    def __init__(self, database: Database, tables: dict[str, Table]) -> None:
        self._db = database
        if database.engine.dialect.name == "sqlite":
            bind_bytes_and_none_directly(database.engine.dialect.dbapi)
        self._event = tables["event"]
        self._head = tables["head"]
        self._quarantine = tables["quarantine"]
        self._stat = tables["stat"]
        self._use_copy = database.engine.dialect.driver == "psycopg"
        paramstyle = database.engine.dialect.paramstyle
        self._mark = "?" if paramstyle == "qmark" else "%s"
        self._lookup_cache: dict[int, str] = {}
        self._lookups_ahead = 0  # groups left that look their ids up before writing (see _append_unseen)
        c = self._event.c
        self._page_query = DriverQuery(
            lambda: (
                select(c.seq, c.received_at_us, c.fingerprint, c.flags, c.payload, c.sealed_values)
                .where(c.seq > bindparam("after"))
                .order_by(c.seq)
                .limit(bindparam("limit"))
            )
        )
        marks = ", ".join([self._mark] * len(WRITE_COLUMNS))
        self._insert_sql = f"INSERT INTO collect_event ({', '.join(WRITE_COLUMNS)}) VALUES ({marks})"
        self._copy_sql = f"COPY collect_event ({', '.join(WRITE_COLUMNS)}) FROM STDIN"  # openGauss: text, as documented
        # Statements of every append, built once: building a Core statement (and its cache key) per
        # call costs more than running it, which shows in the latency of small batches.
        head = self._head.c
        self._lock_head_sql = select(self._head).where(head.head_id == _HEAD_ID).with_for_update()
        self._move_head_sql = (
            update(self._head)
            .where(head.head_id == _HEAD_ID)
            .values(last_seq=bindparam("new_seq"), last_received_us=bindparam("new_received_us"))
        )
        # Counts straight to the driver: a Core statement costs ~30 µs more per run.
        self._counts = MinuteCounts(self._mark)
        self._quarantine_insert_sql = insert(self._quarantine)
        # PostgreSQL: four round trips on a connection of the writer's own, binary COPY (_pg_append.py).
        self._pg = None
        if database.engine.dialect.name == "postgresql":
            binary_copy = f"{self._copy_sql} (FORMAT BINARY)"
            self._pg = PgAppender(
                database,
                binary_copy,
                _COPY_TYPES,
                self._assign,
                _side_counts,
                lambda: _LOOKUPS_AFTER_MISS,
                settle_known_rejections,
                quarantined_rows,
                released_records,
            )

    def open(self) -> None:
        """Nothing to do: the service database is opened by the runtime."""

    def close(self) -> None:
        """Gives the PostgreSQL writer's connection back; the service database is closed by the runtime."""
        if self._pg is not None:
            self._pg.close()

    # -- writing -----------------------------------------------------------------------------------

    def head(self) -> LogHead:
        with self._db.connection() as conn:
            row = conn.execute(select(self._head).where(self._head.c.head_id == _HEAD_ID)).one_or_none()
        if row is None:
            return LogHead("", 0, 0)
        return LogHead(row.log_id, row.last_seq, row.last_received_us)

    def append(self, batches: Sequence[WriteBatch], now_us: int) -> list[list[Appended]]:
        """Make every batch durable in one transaction; per batch, per row: its position and fate."""
        if self._pg is not None:
            return self._pg.append(batches, now_us)
        with self._db.connection(write=True) as conn:
            head = self._lock_head(conn)
            received_us = max(now_us, head.last_received_us)  # positions and receive times rise together
            if self._use_copy and self._lookups_ahead == 0:
                done = self._append_unseen(conn, batches, head.last_seq, received_us)
            else:
                done = None
                self._lookups_ahead = max(self._lookups_ahead - 1, 0)
            if done is None:
                ids = list({row.event_id for batch in batches for row in batch.rows})
                done = self._assign(batches, self._existing(conn, ids), head.last_seq, received_us)
                self._write_rows(conn, done[1])
            results, _, last_seq = done
            settle_known_rejections(batches, lambda ids: self._existing(conn, ids))
            counted = self._write_side_records(conn, batches, results, received_us)
            # The head's receive time is its newest event's (the ingest lag): a batch that stored nothing leaves it.
            moved_us = received_us if last_seq != head.last_seq else head.last_received_us
            conn.execute(self._move_head_sql, {"new_seq": last_seq, "new_received_us": moved_us})
        counted()
        return results

    def _append_unseen(
        self, conn: Connection, batches: Sequence[WriteBatch], last_seq: int, received_us: int
    ) -> tuple[list[list[Appended]], list[tuple], int] | None:
        """COPY the group as if none of its ids were in the log yet, which is the common case; None when the
        unique index says otherwise (nothing of it is kept, and the caller looks the ids up first).

        Why: looking up 1,000 ids before every COPY costs the database about as much as a third of the COPY
        (each id probes the unique index, which the COPY probes again). After a miss, the next
        ``_LOOKUPS_AFTER_MISS`` groups look up first: a producer replaying a backlog sends duplicates in runs."""
        done = self._assign(batches, {}, last_seq, received_us)
        savepoint = conn.begin_nested()
        try:
            self._write_rows(conn, done[1])
        except UniqueViolation as exc:
            savepoint.rollback()
            # Only a re-sent id sends the group the long way; any other clash (the seq key) is a real fault.
            # openGauss may not name the constraint: then it can only be the event id's.
            if exc.diag.constraint_name not in (None, _EVENT_ID_INDEX):
                raise
            self._lookups_ahead = _LOOKUPS_AFTER_MISS
            return None
        savepoint.commit()
        return done

    @staticmethod
    def _assign(
        batches: Sequence[WriteBatch], seen: dict[str, tuple[int, str]], last_seq: int, received_us: int
    ) -> tuple[list[list[Appended]], list[tuple], int]:
        """Positions for the rows whose ids are not in ``seen`` (which grows with them); the rows to write."""
        results: list[list[Appended]] = []
        new_rows: list[tuple] = []
        add_row = new_rows.append
        new_tuple = tuple.__new__
        for batch in batches:
            out: list[Appended] = []
            add = out.append
            for row in batch.rows:
                event_id = row[0]
                earlier = seen.get(event_id)
                if earlier is not None:
                    add(Appended(earlier[0], True, earlier[1] != row.fingerprint))
                    continue
                last_seq += 1
                seen[event_id] = (last_seq, row.fingerprint)
                add_row(row + (last_seq, received_us))  # noqa: RUF005 (half the cost of unpacking); WRITE_COLUMNS
                add(new_tuple(Appended, (last_seq, False, False)))
            results.append(out)
        return results, new_rows, last_seq

    def record_side(self, batches: Sequence[WriteBatch], results: list[list[Appended]], received_us: int) -> None:
        """Quarantine, releases and statistics of an append whose events went to another log (JetStream).

        The head row is locked as for an append, which serialises these writes across collectors."""
        with self._db.connection(write=True) as conn:
            self._lock_head(conn)
            counted = self._write_side_records(conn, batches, results, received_us)
        counted()

    def _write_side_records(
        self, conn: Connection, batches: Sequence[WriteBatch], results: list[list[Appended]], received_us: int
    ) -> Callable[[], None]:
        """What to call once the transaction committed (``MinuteCounts.add``)."""
        self._write_quarantine(conn, batches, results, received_us)
        return self._counts.add(conn, _side_counts(batches, results), received_us)

    def _lock_head(self, conn: Connection) -> LogHead:
        row = conn.execute(self._lock_head_sql).one_or_none()
        if row is None:
            raise RuntimeError("collect_log_head has no row: the collect schema is incomplete (run `qiming migrate`)")
        return LogHead(row.log_id, row.last_seq, row.last_received_us)

    def _existing(self, conn: Connection, ids: list[str]) -> dict[str, tuple[int, str]]:
        found: dict[str, tuple[int, str]] = {}
        if self._use_copy:
            # One comma-joined parameter, planned for each call (openGauss; PostgreSQL's is in _pg_append.py,
            # which says why).
            raw = conn.connection.driver_connection
            with raw.cursor() as cursor:
                cursor.execute(
                    "SELECT seq, event_id, fingerprint FROM collect_event"
                    " WHERE event_id = ANY(string_to_array(%s, ','))",
                    (",".join(ids),),
                    prepare=False,
                )
                for seq, event_id, fingerprint in cursor:
                    found[event_id] = (seq, fingerprint)
            return found
        # Straight to the driver: building a Core IN clause costs a few microseconds per id.
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ids[start : start + _ID_CHUNK]
            for seq, event_id, fingerprint in conn.exec_driver_sql(self._lookup_sql(len(chunk)), tuple(chunk)):
                found[event_id] = (seq, fingerprint)
        return found

    def _lookup_sql(self, count: int) -> str:
        sql = self._lookup_cache.get(count)
        if sql is None:
            marks = ", ".join([self._mark] * count)
            sql = f"SELECT seq, event_id, fingerprint FROM collect_event WHERE event_id IN ({marks})"
            self._lookup_cache[count] = sql
        return sql

    def _write_rows(self, conn: Connection, rows: list[tuple]) -> None:
        if not rows:
            return
        if self._use_copy:
            raw = conn.connection.driver_connection
            sql = self._copy_sql
            with copy_span(conn, sql, len(rows)), raw.cursor() as cursor, cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            conn.exec_driver_sql(self._insert_sql, rows)

    def _write_quarantine(
        self, conn: Connection, batches: Sequence[WriteBatch], results: list[list[Appended]], now_us: int
    ) -> None:
        rows = [
            {
                "quarantine_id": q.quarantine_id,
                "event_id": storable_text(q.event_id)[:64],
                "event_type": storable_text(q.event_type)[:128],
                "reason": q.reason,
                "field_path": storable_text(q.field_path)[:256],
                "message": storable_text(q.message),
                "quarantined_at_us": now_us,
                "replay_count": 0,
                "sealed_event": q.sealed_event,
            }
            for batch in batches
            for q in quarantined_rows(batch)
        ]
        if rows:
            conn.execute(self._quarantine_insert_sql, rows)
        c = self._quarantine.c
        for batch, out in zip(batches, results, strict=True):
            batch.released.clear()  # of an attempt before this one that failed (rolled back)
            for seq, quarantine_id in released_records(batch, out):
                done = conn.execute(
                    update(self._quarantine)
                    .where(c.quarantine_id == quarantine_id, c.released_seq.is_(None))  # once, whoever replays it
                    .values(released_seq=seq, released_at_us=now_us, replay_count=c.replay_count + 1)
                )
                if done.rowcount:
                    batch.released.add(quarantine_id)

    # -- reading -----------------------------------------------------------------------------------

    def read(
        self,
        after_seq: int,
        limit: int,
        event_types: Sequence[str] = (),
        user_id: str | None = None,
        anonymous_id: str | None = None,
    ) -> LogPage:
        c = self._event.c
        query = select(c.seq, c.received_at_us, c.fingerprint, c.flags, c.payload, c.sealed_values)
        if event_types:
            query = query.where(c.event_type.in_(list(event_types)))
        by_user = user_id is not None or anonymous_id is not None
        if user_id is not None:
            query = query.where(c.user_id == user_id)
        if anonymous_id is not None:
            query = query.where(c.anonymous_id == anonymous_id)
        with self._db.connection() as conn:
            if not by_user:
                if event_types:
                    rows = conn.execute(query.where(c.seq > after_seq).order_by(c.seq).limit(limit)).all()
                else:  # a follower's read, the hot one: straight on the driver
                    rows = self._page_query.fetchall(conn, after=after_seq, limit=limit)
                return LogPage(_stored(rows), rows[-1][0] if rows else after_seq)
            # No index by person (each would put every insert on a random page: docs/collect.md): scan the
            # primary key in windows up to the head read first — everything at or below it is committed.
            head = conn.execute(select(self._head.c.last_seq).where(self._head.c.head_id == _HEAD_ID)).scalar()
            head = int(head or 0)
            rows, after = [], after_seq
            while after < head and len(rows) < limit:
                upto = min(after + USER_SCAN_WINDOW, head)
                window = query.where(and_(c.seq > after, c.seq <= upto)).order_by(c.seq).limit(limit - len(rows))
                found = conn.execute(window).all()
                rows.extend(found)
                after = found[-1][0] if len(rows) == limit else upto
        return LogPage(_stored(rows), after)

    def seq_before_time(self, received_us: int) -> int:
        """The position just before the first event received at or after ``received_us``."""
        with self._db.connection() as conn:
            return self._seq_before_time(conn, received_us)

    def _seq_before_time(self, conn: Connection, received_us: int) -> int:
        # Receive times rise with positions (each append takes max(now, the head's last time) under the
        # head lock), so a binary search over the primary key finds the spot: no index on received_at_us,
        # which every insert would pay for.
        c = self._event.c
        low, high = conn.execute(select(func.min(c.seq), func.max(c.seq))).one()
        if high is None:
            return 0
        if conn.execute(select(c.received_at_us).where(c.seq == high)).scalar_one() < received_us:
            return int(high)
        probe = select(c.seq, c.received_at_us).where(c.seq >= bindparam("at")).order_by(c.seq).limit(1)
        low, high = int(low), int(high)
        while low < high:  # the first position received at or after received_us is in [low, high]
            seq, received = conn.execute(probe, {"at": (low + high) // 2}).one()
            if received >= received_us:
                high = seq
            else:
                low = seq + 1
        return low - 1

    def delivery_delays_us(self, start_us: int, end_us: int, limit: int) -> list[int]:
        """``received_at - occurred_at`` of the newest ``limit`` events received in the range."""
        c = self._event.c
        with self._db.connection() as conn:
            first = self._seq_before_time(conn, start_us)
            last = self._seq_before_time(conn, end_us)
            query = (
                select(c.received_at_us - c.occurred_at_us)
                .where(and_(c.seq > first, c.seq <= last))
                .order_by(c.seq.desc())
                .limit(limit)
            )
            return [int(v) for v in conn.execute(query).scalars()]


_EVENT_TYPE = itemgetter(1)  # of a LogRow
_DUPLICATE = itemgetter(1)  # of an Appended


def _side_counts(batches: Sequence[WriteBatch], results: list[list[Appended]]) -> dict[str, list[int]]:
    """Accepted, duplicate and rejected events of an append, by event type."""
    counts: dict[str, list[int]] = {}
    for batch, out in zip(batches, results, strict=True):
        if batch.releases or batch.replayed:
            # A replay: each event was counted (rejected) when it came. Only one it lets into the log counts again,
            # accepted; one the log holds already (sent again since, or released by another replay) does not.
            for row, appended in zip(batch.rows, out, strict=True):
                if not appended.duplicate:
                    counts.setdefault(row.event_type, [0, 0, 0])[0] += 1
            continue
        if not any(map(_DUPLICATE, out)):  # the usual case: counted in C
            for event_type, accepted in Counter(map(_EVENT_TYPE, batch.rows)).items():
                counts.setdefault(event_type, [0, 0, 0])[0] += accepted
        else:
            for row, appended in zip(batch.rows, out, strict=True):
                counts.setdefault(row.event_type, [0, 0, 0])[1 if appended.duplicate else 0] += 1
        known = batch.known
        for q in batch.quarantined:
            counts.setdefault(counted_event_type(q.event_type), [0, 0, 0])[1 if q.quarantine_id in known else 2] += 1
    return counts


def settle_known_rejections(
    batches: Sequence[WriteBatch], lookup: Callable[[list[str]], dict[str, tuple[int, str]]]
) -> None:
    """Find the rejected events that the log holds already, the same payload under the same event_id (``lookup``:
    id -> position, fingerprint of the stored copy, after this append's own rows are written): a client retrying an
    event the log has is told DUPLICATE, as for any re-sent id, even when the checks changed since (a stricter
    schema, another policy) and would now refuse it; quarantining that copy reported a durable event as refused, and
    counted it twice. Another payload under a stored id stays rejected and quarantined: it is content the log does
    not hold (a forged copy of a signed event, say), kept with its reason.

    Sets each batch's ``known`` afresh (an append tried again decides again); the writers leave those out of the
    quarantine. Rejected events are rare: nothing is looked up for a group without any."""
    candidates = [q for batch in batches for q in chain(batch.quarantined, batch.replayed) if q.fingerprint is not None]
    for batch in batches:
        if batch.known:
            batch.known = {}
    if not candidates:
        return
    found = lookup(list({q.event_id for q in candidates}))
    if not found:
        return
    for batch in batches:
        for q in chain(batch.quarantined, batch.replayed):
            hit = found.get(q.event_id) if q.fingerprint is not None else None
            if hit is not None and hit[1] == q.fingerprint:
                batch.known[q.quarantine_id] = Appended(hit[0], True, False)


def released_records(batch: WriteBatch, out: list[Appended]) -> list[tuple[int, str]]:
    """(position, quarantine_id) of the quarantine records a replay releases: the events it let into the log (not one
    whose id another payload holds: that one stays quarantined), and those still rejected that the log holds."""
    released = [
        (out[index].seq, quarantine_id)
        for quarantine_id, index in batch.releases.items()
        if not out[index].payload_mismatch
    ]
    released += [
        (batch.known[q.quarantine_id].seq, q.quarantine_id) for q in batch.replayed if q.quarantine_id in batch.known
    ]
    return released


def quarantined_rows(batch: WriteBatch) -> list[QuarantineRow]:
    """The rejected events of ``batch`` to quarantine: all but those the log holds already."""
    known = batch.known
    return [q for q in batch.quarantined if q.quarantine_id not in known] if known else batch.quarantined


def _stored(rows: Sequence) -> list[StoredEvent]:
    return [StoredEvent(r[0], r[1], r[2], r[3], bytes(r[4]), bytes(r[5]) if r[5] is not None else None) for r in rows]
