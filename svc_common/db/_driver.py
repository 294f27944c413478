"""Hot reads run straight on the driver.

SQLAlchemy's per-call work (statement building, cache keys, a ``Row`` per result row) is a few microseconds a
row: more than SQLite's own work for a page of the event log. A ``DriverQuery`` is compiled once per dialect by
SQLAlchemy (so every database gets its own SQL: ``LIMIT``, ``FETCH FIRST``, its parameter style) and its rows come
back as the driver's tuples. Only for columns whose values need no result processing (integers, strings, bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select


class DriverQuery:
    def __init__(self, make: Callable[[], Select[Any]]) -> None:
        self._make = make
        self._compiled: dict[tuple[str, str], tuple[str, list[str] | None, dict[str, Any]]] = {}

    def sql(self, conn: Connection) -> tuple[str, list[str] | None, dict[str, Any]]:
        """The statement for ``conn``'s dialect, its positional parameter names (None: named) and defaults."""
        dialect = conn.dialect
        key = (dialect.name, dialect.paramstyle)
        entry = self._compiled.get(key)
        if entry is None:
            compiled = self._make().compile(dialect=dialect)
            positional = list(compiled.positiontup or ()) if compiled.positional else None
            # The binds the statement fills itself (SQLite's OFFSET of a LIMIT, literal values).
            defaults = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
            entry = self._compiled[key] = (compiled.string, positional, defaults)
        return entry

    def fetchall(self, conn: Connection, **values: Any) -> list[tuple[Any, ...]]:
        sql, positional, defaults = self.sql(conn)
        params = defaults | values
        cursor = conn.connection.cursor()
        try:
            cursor.execute(sql, tuple(params[name] for name in positional) if positional is not None else params)
            return cursor.fetchall()
        finally:
            cursor.close()
