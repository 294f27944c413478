"""Reads of the log consumer straight on the SQLite driver: its tuples, no SQLAlchemy row per result row (a batch
reads some 10^4 day buckets; SQLAlchemy's per-row work cost more than SQLite's)."""

from __future__ import annotations

import contextlib
import json
import json.decoder
import json.scanner
from collections import namedtuple
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection

_SCAN = json.scanner.make_scanner(json.decoder.JSONDecoder())


def loads(text: str) -> Any:
    """``json.loads`` of a document as ``JsonText`` writes it (compact): its scanner called straight, without the
    checks around it (half the time for a short document); anything else (whitespace around the document, not a
    string, not JSON) goes through ``json.loads`` itself, so the answer and the error are the same."""
    try:
        value, end = _SCAN(text, 0)
    except (StopIteration, TypeError):
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


@contextlib.contextmanager
def _driver_cursor(conn: Connection) -> Iterator[Any]:
    """A cursor of the driver whose errors come out as SQLAlchemy's (``database is locked`` an OperationalError),
    which the service maps to UNAVAILABLE as for its other statements; a bare sqlite3 error would be INTERNAL."""
    cursor = conn.connection.cursor()
    try:
        yield cursor
    except conn.dialect.loaded_dbapi.Error as error:
        raise exc.DBAPIError.instance(
            "(a read of svc_profile.store._raw)", None, error, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
        ) from error
    finally:
        cursor.close()


_SQL: dict[tuple[str, int, int], str] = {}
_CHUNK = 500


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
    with _driver_cursor(conn) as cursor:
        cursor.execute(sql, (first_day, *types, *pids))
        return cursor.fetchall()


_ROW_TYPES: dict[tuple[str, ...], Any] = {}


def persons_sqlite(
    conn: Connection, table: str, pids: Sequence[str], columns: Sequence[str], json_columns: frozenset[str]
) -> dict[str, Any]:
    """``ProfileStore.load_persons`` with columns named (evaluation's read: the log consumer, the time sweep, a
    recompute): the rows as named tuples with the JSON columns decoded as ``JsonText`` decodes them (None stays
    None), ``profile_id`` first; one statement per chunk of ids, no SQLAlchemy row or result processor per row."""
    columns = tuple(columns)
    row_type = _ROW_TYPES.get(columns)
    if row_type is None:
        row_type = _ROW_TYPES[columns] = namedtuple("PersonRow", columns)  # type: ignore[misc]
    decoded = [i for i, c in enumerate(columns) if c in json_columns]
    make = row_type._make
    out: dict[str, Any] = {}
    with _driver_cursor(conn) as cursor:
        for start in range(0, len(pids), _CHUNK):
            part = pids[start : start + _CHUNK]
            sql = f"SELECT {', '.join(columns)} FROM {table} WHERE profile_id IN ({', '.join('?' * len(part))})"
            cursor.execute(sql, tuple(part))
            for raw in cursor.fetchall():
                row = list(raw)
                for i in decoded:
                    if row[i] is not None:
                        row[i] = loads(row[i])
                out[row[0]] = make(row)
    return out


def rows_by_person(
    conn: Connection, head: str, params: tuple[Any, ...], pids: Sequence[str]
) -> Iterator[tuple[Any, ...]]:
    """The driver's rows of ``head`` (a statement ending in ``WHERE`` or ``AND``, its ``?`` bound to ``params``)
    and ``profile_id IN`` each chunk of ``pids``: evaluation's per-person reads without a SQLAlchemy row apiece."""
    with _driver_cursor(conn) as cursor:
        for start in range(0, len(pids), _CHUNK):
            part = tuple(pids[start : start + _CHUNK])
            cursor.execute(f"{head} profile_id IN ({', '.join('?' * len(part))})", (*params, *part))
            yield from cursor.fetchall()
