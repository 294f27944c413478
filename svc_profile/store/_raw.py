"""Reads of the log consumer straight on the SQLite driver: its tuples, no SQLAlchemy row per result row (a batch
reads some 10^4 day buckets; SQLAlchemy's per-row work cost more than SQLite's)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Connection

_SQL: dict[tuple[str, int, int], str] = {}


def days_sqlite(
    conn: Connection, table: str, pids: Sequence[str], types: Sequence[str], first_day: int
) -> list[tuple[Any, ...]]:
    """(profile_id, event_type, day, n, amount_fen) of ``pids``' buckets of ``types`` from ``first_day`` on, through
    the primary key; one statement text per (ids, types) count (the consumer's chunks are mostly full)."""
    key = (table, len(pids), len(types))
    sql = _SQL.get(key)
    if sql is None:
        if len(_SQL) > 256:
            _SQL.clear()
        sql = _SQL[key] = (
            f"SELECT profile_id, event_type, day, n, amount_fen FROM {table}"
            f" WHERE day >= ? AND event_type IN ({', '.join('?' * len(types))})"
            f" AND profile_id IN ({', '.join('?' * len(pids))})"
        )
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, (first_day, *types, *pids))
        return cursor.fetchall()
    finally:
        cursor.close()
