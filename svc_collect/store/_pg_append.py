"""The PostgreSQL append in four round trips, on a connection the writer keeps.

Why: a group commit holds the head lock from its ``SELECT … FOR UPDATE`` to the end of its ``COMMIT`` (the lock
goes only when the commit is on disk), so whatever a group spends on the wire is time every following batch queues
for. Through the pool and SQLAlchemy one append took fourteen round trips (pre-ping, ``BEGIN``, the lock, a savepoint
and its release around the ``COPY``, one ``UPDATE`` per event type of the statistics, the head, ``COMMIT``), each
~0.2–0.4 ms of driver and Python work on a loaded machine and each a point where the writer thread waits for the GIL
behind the event loop's per-event work: ~6 ms for a 100-event batch, against 10 ms between batches at 10,000 events/s
(``loadtests/research/collect_pg_ack_phases.py``). Here an append is

1. ``BEGIN; SELECT … FROM collect_log_head … FOR UPDATE`` (one simple query);
2. ``COPY … FROM STDIN (FORMAT BINARY)`` with the group's rows (two round trips: the copy's start and its end);
3. the quarantine records and releases when there are any (rare), then the statistics as one upsert, the head
   move and ``COMMIT``, in one simple query with the values bound client-side.

Nothing of the durability changes: ``COMMIT`` is the transaction's own, under the session's ``synchronous_commit``
(on unless the operator changed it), and the acknowledgement waits for its answer. Exactly-once is unchanged too:
the ``COPY`` assumes no id of the group is in the log (the common case) and, when the unique index says otherwise,
the transaction is rolled back and the group written again after looking its ids up (the next
``lookups_after_miss`` groups look up first). Without a savepoint: rolling back the whole transaction loses only
the head lock, which the second attempt takes again.

The connection is checked out of the service's pool once and kept (no pre-ping per append); it runs in autocommit
mode so that psycopg sends no ``BEGIN`` of its own. A connection found broken is dropped: at the first statement of
an append (nothing sent yet) the append retries once on a fresh one, as the pool's pre-ping would have; later it
fails as UNAVAILABLE and the next append reconnects.
"""

from __future__ import annotations

import logging
import threading
import types
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import psycopg
import sqlalchemy.exc
from psycopg.errors import UniqueViolation

from svc_common.config import redact_url
from svc_common.db import Database, copy_span, storable_text
from svc_common.errors import Unavailable

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from svc_collect.store._log import Appended, QuarantineRow, WriteBatch

log = logging.getLogger("qiming.collect.log")

EVENT_ID_INDEX = "ux_collect_event_event_id"
_LOCK = "BEGIN; SELECT log_id, last_seq, last_received_us FROM collect_log_head WHERE head_id = 1 FOR UPDATE"
_LOOKUP = "SELECT seq, event_id, fingerprint FROM collect_event WHERE event_id = ANY(string_to_array(%s, ','))"
_QUARANTINE = (
    "INSERT INTO collect_quarantine (quarantine_id, event_id, event_type, reason, field_path, message,"
    " quarantined_at_us, replay_count, sealed_event) VALUES (%s, %s, %s, %s, %s, %s, %s, 0, %s)"
)
_RELEASE = (
    "UPDATE collect_quarantine SET released_seq = %s, released_at_us = %s, replay_count = replay_count + 1"
    " WHERE quarantine_id = %s AND released_seq IS NULL"  # once, whoever replays it
)
_STAT = (
    "INSERT INTO collect_ingest_stat (minute_us, event_type, accepted_count, duplicate_count, rejected_count)"
    " VALUES {values} ON CONFLICT (minute_us, event_type) DO UPDATE SET"
    " accepted_count = collect_ingest_stat.accepted_count + excluded.accepted_count,"
    " duplicate_count = collect_ingest_stat.duplicate_count + excluded.duplicate_count,"
    " rejected_count = collect_ingest_stat.rejected_count + excluded.rejected_count"
)
_MOVE_HEAD = "UPDATE collect_log_head SET last_seq = %s, last_received_us = %s WHERE head_id = 1"

Assign = Callable[
    [Sequence["WriteBatch"], dict[str, tuple[int, str]], int, int], tuple[list[list["Appended"]], list[tuple], int]
]
Counts = Callable[[Sequence["WriteBatch"], list[list["Appended"]]], dict[str, list[int]]]
Lookup = Callable[[list[str]], dict[str, tuple[int, str]]]
Settle = Callable[[Sequence["WriteBatch"], Lookup], None]
Quarantined = Callable[["WriteBatch"], Sequence["QuarantineRow"]]
Released = Callable[["WriteBatch", list["Appended"]], list[tuple[int, str]]]


class _Refused(Exception):
    """The COPY met an id already in the log: the transaction was rolled back, look the ids up and write again."""


class PgAppender:
    """Appends for :class:`SqlEventLog` on PostgreSQL (see the module's docstring)."""

    def __init__(
        self,
        database: Database,
        copy_sql: str,
        copy_types: Sequence[str],
        assign: Assign,
        counts: Counts,
        lookups_after_miss: Callable[[], int],
        settle: Settle,
        quarantined: Quarantined,
        released: Released,
    ) -> None:
        self._engine = database.engine
        self._copy_sql = copy_sql
        self._copy_types = list(copy_types)
        self._assign = assign
        self._counts = counts
        self._lookups_after_miss = lookups_after_miss
        self._settle = settle
        self._quarantined = quarantined
        self._released = released
        self._span_target = cast("Connection", types.SimpleNamespace(engine=database.engine))
        self._held: Any = None  # the pool's proxy of the kept connection
        self._lock = threading.Lock()
        self.lookups_ahead = 0  # groups left that look their ids up before writing

    def close(self) -> None:
        with self._lock:
            self._drop(invalidate=False)

    def append(self, batches: Sequence[WriteBatch], now_us: int) -> list[list[Appended]]:
        with self._lock:
            try:
                if self.lookups_ahead == 0:
                    try:
                        return self._append(batches, now_us, lookup=False)
                    except _Refused:
                        self.lookups_ahead = self._lookups_after_miss()
                else:
                    self.lookups_ahead -= 1
                return self._append(batches, now_us, lookup=True)
            except psycopg.OperationalError as exc:
                self._drop(invalidate=True)
                log.warning("database unavailable: %s", redact_url(str(exc).splitlines()[0] if str(exc) else repr(exc)))
                raise Unavailable("the service's database is unavailable; retry with backoff") from exc

    # -- one transaction ---------------------------------------------------------------------------

    def _append(self, batches: Sequence[WriteBatch], now_us: int, *, lookup: bool) -> list[list[Appended]]:
        conn, head = self._lock_head()
        try:
            _, last_seq, last_received_us = head
            received_us = max(now_us, last_received_us)  # positions and receive times rise together
            seen: dict[str, tuple[int, str]] = {}
            if lookup:
                seen = self._existing(conn, list({row.event_id for batch in batches for row in batch.rows}))
            results, rows, last_seq = self._assign(batches, seen, last_seq, received_us)
            if rows:
                self._copy(conn, rows, refusable=not lookup)
            self._settle(batches, lambda ids: self._existing(conn, ids))
            # The head's receive time is its newest event's (the ingest lag): a batch that stored nothing leaves it.
            head_received_us = received_us if last_seq != head[1] else last_received_us
            self._finish(conn, batches, results, received_us, last_seq, head_received_us)
            return results
        except BaseException:
            self._rollback(conn)
            raise

    def _lock_head(self) -> tuple[psycopg.Connection, tuple[str, int, int]]:
        """``BEGIN`` and the head row, locked; once more on a fresh connection when the kept one is broken."""
        for attempt in (1, 2):
            reused = self._held is not None
            conn = self._connection()
            try:
                with conn.cursor() as cursor:
                    cursor.execute(_LOCK)
                    cursor.nextset()
                    row = cursor.fetchone()
            except psycopg.OperationalError:
                if not reused or attempt == 2:
                    raise
                self._drop(invalidate=True)  # gone while idle (a restart, a timeout): as the pre-ping would
                continue
            except psycopg.Error:
                # Any other refusal (a read-only database, a missing privilege) leaves the kept connection inside
                # the failed transaction, and every later BEGIN failed until a restart (review 2026-12-07).
                self._rollback(conn)
                raise
            if row is None:
                self._rollback(conn)
                raise RuntimeError("collect_log_head has no row: the collect schema is incomplete (run qiming migrate)")
            return conn, (row[0], int(row[1]), int(row[2]))
        raise AssertionError("unreachable")

    def _existing(self, conn: psycopg.Connection, ids: list[str]) -> dict[str, tuple[int, str]]:
        # Planned for each call (prepare=False): psycopg prepares a statement after five runs, and a generic plan
        # made while the table was small (a sequential scan) would stay as the log grows to millions of rows. The
        # ids go as one comma-joined string (validated UUIDs: no commas): a list of 1,000 strings as an array
        # parameter cost the client 1.3 ms per batch, the join 0.2 ms.
        with conn.cursor() as cursor:
            cursor.execute(_LOOKUP, (",".join(ids),), prepare=False)
            return {event_id: (seq, fingerprint) for seq, event_id, fingerprint in cursor}

    def _copy(self, conn: psycopg.Connection, rows: list[tuple], *, refusable: bool) -> None:
        try:
            with (
                copy_span(self._span_target, self._copy_sql, len(rows)),
                conn.cursor() as cursor,
                cursor.copy(self._copy_sql) as copy,
            ):
                copy.set_types(self._copy_types)
                for row in rows:
                    copy.write_row(row)
        except UniqueViolation as exc:
            # Only a re-sent id sends the group the long way; any other clash (the seq key) is a real fault.
            if not refusable or exc.diag.constraint_name != EVENT_ID_INDEX:
                raise
            self._rollback(conn)
            raise _Refused from None

    def _finish(
        self,
        conn: psycopg.Connection,
        batches: Sequence[WriteBatch],
        results: list[list[Appended]],
        received_us: int,
        last_seq: int,
        head_received_us: int,
    ) -> None:
        """Quarantine and releases (when any), then statistics, head and ``COMMIT`` in one round trip."""
        quarantined = [
            (
                q.quarantine_id,
                storable_text(q.event_id)[:64],
                storable_text(q.event_type)[:128],
                q.reason,
                storable_text(q.field_path)[:256],
                storable_text(q.message),
                received_us,
                q.sealed_event,
            )
            for batch in batches
            for q in self._quarantined(batch)
        ]
        for batch in batches:
            batch.released.clear()  # of an attempt before this one that failed (rolled back)
        releases = [
            (batch, seq, quarantine_id)
            for batch, out in zip(batches, results, strict=True)
            for seq, quarantine_id in self._released(batch, out)
        ]
        if quarantined or releases:
            with conn.cursor() as cursor:
                if quarantined:
                    cursor.executemany(_QUARANTINE, quarantined)
                for batch, seq, quarantine_id in releases:  # a replay's (rare): one statement each, its count read
                    cursor.execute(_RELEASE, (seq, received_us, quarantine_id))
                    if cursor.rowcount:
                        batch.released.add(quarantine_id)
        minute = received_us - received_us % 60_000_000
        stats = [
            (minute, storable_text(event_type)[:128], accepted, duplicate, rejected)
            for event_type, (accepted, duplicate, rejected) in self._counts(batches, results).items()
        ]
        # Several rows of one type (a type cut to 128 characters twice) would make the upsert touch a row twice.
        merged: dict[str, list[int]] = {}
        for _, event_type, *values in stats:
            merged[event_type] = [a + b for a, b in zip(merged.get(event_type, [0, 0, 0]), values, strict=True)]
        statements = []
        params: list[object] = []
        if merged:
            statements.append(_STAT.format(values=", ".join(["(%s, %s, %s, %s, %s)"] * len(merged))))
            for event_type, values in merged.items():
                params.extend((minute, event_type, *values))
        statements.append(_MOVE_HEAD)
        params.extend((last_seq, head_received_us))
        statements.append("COMMIT")
        with psycopg.ClientCursor(conn) as cursor:
            cursor.execute("; ".join(statements), params)

    # -- the kept connection -----------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection:
        if self._held is None:
            try:
                held = self._engine.raw_connection()
            except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.TimeoutError) as exc:
                # The server is down or refuses connections, or the pool is exhausted: as every other statement.
                log.warning("database unavailable: %s", redact_url(str(exc).splitlines()[0]))
                raise Unavailable("the service's database is unavailable; retry with backoff") from exc
            try:
                held.driver_connection.autocommit = True
            except BaseException:
                held.invalidate()
                raise
            self._held = held
        return self._held.driver_connection

    def _rollback(self, conn: psycopg.Connection) -> None:
        if conn.closed or conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            return
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            self._drop(invalidate=True)

    def _drop(self, *, invalidate: bool) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        if invalidate or held.driver_connection.closed:
            held.invalidate()
            return
        try:
            held.driver_connection.autocommit = False
        except psycopg.Error:
            held.invalidate()
            return
        held.close()
