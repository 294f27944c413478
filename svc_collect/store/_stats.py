"""Per-minute ingest statistics (``collect_ingest_stat``): accepted, duplicate and rejected events per event type and
minute, added by every append in its own transaction while it holds the log's head lock (the SQL log's appends, and
JetStream's side records; PostgreSQL's append adds them in its own upsert, ``_pg_append.py``)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.engine import Connection

from svc_collect.validation import storable_text

log = logging.getLogger("qiming.collect")

_MINUTE_US = 60_000_000
_REMEMBERED_TYPES = 10_000
"""Types of the current minute whose row is known to exist, at most (a client inventing types cannot grow it)."""
_CHUNK = 500
"""Types per look-up of the rows that exist (drivers bound the parameters of one statement)."""


class MinuteCounts:
    """Adds an append's counts. A type whose row of the minute is known to exist (a committed append found or made
    it; rows are never deleted) is added by one ``UPDATE`` run for all such types of the group; another type by its
    own ``UPDATE``, then an ``INSERT`` when that found no row — the database compares the types either way, under
    the column's collation."""

    def __init__(self, mark: str) -> None:
        self._update_sql = (
            f"UPDATE collect_ingest_stat SET accepted_count = accepted_count + {mark},"
            f" duplicate_count = duplicate_count + {mark}, rejected_count = rejected_count + {mark}"
            f" WHERE minute_us = {mark} AND event_type = {mark}"
        )
        self._insert_sql = (
            "INSERT INTO collect_ingest_stat (minute_us, event_type, accepted_count, duplicate_count, rejected_count)"
            f" VALUES ({mark}, {mark}, {mark}, {mark}, {mark})"
        )
        self._mark = mark
        self._minute = 0
        self._known: set[str] = set()

    def add(self, conn: Connection, counts: dict[str, list[int]], now_us: int) -> Callable[[], None]:
        """Add ``counts`` (type -> accepted, duplicate, rejected) to the minute of ``now_us`` in ``conn``'s transaction.
        Returns what to call once that transaction committed (a rolled-back one's rows do not exist)."""
        minute = now_us - now_us % _MINUTE_US
        merged: dict[str, list[int]] = {}  # two refused types may be one once cut to the column's 128 characters
        for event_type, (accepted, duplicate, rejected) in counts.items():
            total = merged.setdefault(storable_text(event_type)[:128], [0, 0, 0])
            total[0], total[1], total[2] = total[0] + accepted, total[1] + duplicate, total[2] + rejected
        rows = [(accepted, duplicate, rejected, minute, key) for key, (accepted, duplicate, rejected) in merged.items()]
        known = self._known if minute == self._minute else set()
        together = [row for row in rows if row[4] in known] if conn.dialect.supports_sane_multi_rowcount else []
        rest = rows
        if len(together) > 1:
            rest = [row for row in rows if row[4] not in known]
            if conn.exec_driver_sql(self._update_sql, together).rowcount != len(together):
                self._insert_missing(conn, together, minute)
        for row in rest:
            accepted, duplicate, rejected, _, event_type = row
            if not conn.exec_driver_sql(self._update_sql, row).rowcount:
                conn.exec_driver_sql(self._insert_sql, (minute, event_type, accepted, duplicate, rejected))

        def committed() -> None:
            if minute != self._minute:
                self._minute, self._known = minute, set()
            if len(self._known) < _REMEMBERED_TYPES:
                self._known.update(key for key in merged if len(self._known) < _REMEMBERED_TYPES)

        return committed

    def _insert_missing(self, conn: Connection, rows: list[tuple[int, int, int, int, str]], minute: int) -> None:
        """Rows known to exist were not all found: deleted by hand since. The ``UPDATE`` of a missing one changed
        nothing, so inserting it with its counts is exact (where the column compares types exactly: SQLite, PostgreSQL,
        openGauss by default)."""
        keys = [row[4] for row in rows]
        present: set[str] = set()
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            marks = ", ".join([self._mark] * len(chunk))
            sql = (
                f"SELECT event_type FROM collect_ingest_stat WHERE minute_us = {self._mark} AND event_type IN ({marks})"
            )
            present.update(event_type for (event_type,) in conn.exec_driver_sql(sql, (minute, *chunk)))
        missing = [row for row in rows if row[4] not in present]
        log.warning("per-minute statistics rows of this minute were deleted; inserting %d again", len(missing))
        for accepted, duplicate, rejected, _, event_type in missing:
            conn.exec_driver_sql(self._insert_sql, (minute, event_type, accepted, duplicate, rejected))
