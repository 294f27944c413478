"""A batch's INSERTs and UPDATEs run with ``executemany`` on the driver.

SQLAlchemy's ``conn.execute(stmt, rows)`` builds a parameter dict per row and calls each column's bind processor
for every value (about 15 µs a row for the outbox's 29 columns): more than the database's own work. A
``DriverWrite`` is compiled once per dialect by SQLAlchemy (so every database gets its own SQL and parameter
style, as :class:`svc_common.db.DriverQuery` does for reads), converts the values with the same bind processors
(``UtcDateTime``'s zone check and conversion, JSON text, SQLite's booleans and time text), and hands the driver
plain tuples (positional styles) or dicts (named styles) through ``exec_driver_sql`` (no per-row processing
there; errors and events stay SQLAlchemy's). Times repeat within a batch (one ``now``), so a
column's converted values are reused within one call.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import String, Table, any_, bindparam, cast, exc, func, insert, literal_column, select, update
from sqlalchemy.dialects.postgresql import JSON
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ClauseElement, Select
from sqlalchemy.types import TypeDecorator

from svc_common.db import JsonText, UtcDateTime, copy_span

_KEY = "k_key"
"""The bind of an UPDATE's key (the WHERE); set-clause binds are ``v_<column>``."""
_KEYS = "k_keys"
"""The bind of the keys of a shared UPDATE (see DriverWrite.shared_update)."""
SHARED_UPDATE_ROWS = 8
"""Rows that share their new values and go in one ``shared_update`` (PostgreSQL; fewer: with the JSON rows)."""
SHARED_UPDATES = 4
"""At most this many ``shared_update`` statements per batch; the other rows go as JSON rows in one statement."""


class _Compiled:
    __slots__ = ("converters", "names", "positional", "sql")

    def __init__(self, sql: str, names: list[str], converters: list[Callable[[Any], Any] | None], positional: bool):
        self.sql, self.names, self.converters, self.positional = sql, names, converters, positional


class DriverWrite:
    """``INSERT INTO table (columns) VALUES (...)`` or, with ``key``, ``UPDATE table SET columns WHERE key = ...``;
    a row is a mapping holding at least ``columns`` (and ``key`` for an UPDATE); other keys are ignored, as
    SQLAlchemy's executemany ignores them."""

    def __init__(self, table: Table, columns: Sequence[str], *, key: str | None = None) -> None:
        unknown = [c for c in (*columns, *([key] if key else [])) if c not in table.c]
        if unknown:
            raise ValueError(f"{table.name} has no column {unknown[0]!r}")
        self.table, self.columns, self.key = table, tuple(columns), key
        self._compiled: dict[tuple[str, str], _Compiled] = {}
        self._json_sql: dict[str, str] = {}
        self._shared_sql: dict[str, tuple[str, list[str]]] = {}
        self._copy_types: dict[str, tuple[list[int], list[tuple[int, str]]] | None] = {}
        """By database (URL): the type of each column a COPY writes, as the table has it there, and the columns whose
        values :func:`_fits_binary` checks (None: text COPY)."""

    def statement(self) -> ClauseElement:
        values = {c: bindparam(f"v_{c}", type_=self.table.c[c].type) for c in self.columns}
        if self.key is None:
            return insert(self.table).values(values).inline()  # no RETURNING of generated keys
        key = self.table.c[self.key]
        return update(self.table).where(key == bindparam(_KEY, type_=key.type)).values(values)

    def compiled(self, dialect: Any) -> _Compiled:
        entry = self._compiled.get((dialect.name, dialect.paramstyle))
        if entry is None:
            compiled = self.statement().compile(dialect=dialect)
            positional = bool(compiled.positional)
            names = list(compiled.positiontup or ()) if positional else list(compiled.binds)
            converters = [compiled.binds[n].type._cached_bind_processor(dialect) for n in names]
            entry = self._compiled[(dialect.name, dialect.paramstyle)] = _Compiled(
                compiled.string, names, converters, positional
            )
        return entry

    def rows(self, dialect: Any, rows: Iterable[Mapping[str, Any]]) -> tuple[str, list[Any]]:
        """The SQL for ``dialect`` and the driver's parameters of ``rows`` (what ``executemany`` is given)."""
        entry = self.compiled(dialect)
        converted = self.values(dialect, rows)
        if entry.positional:
            return entry.sql, converted
        return entry.sql, [dict(zip(entry.names, values, strict=True)) for values in converted]

    def fields(self, dialect: Any) -> list[str]:
        """The columns of :meth:`values`' tuples, in order (the key last for an UPDATE)."""
        return [self.key if n == _KEY else n[2:] for n in self.compiled(dialect).names]

    def values(self, dialect: Any, rows: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """Each row's values of :meth:`fields`, converted by the columns' bind processors for ``dialect``."""
        return _rows_of(self.columns_of(dialect, rows))

    def columns_of(self, dialect: Any, rows: Iterable[Mapping[str, Any]]) -> list[Sequence[Any]]:
        """:meth:`values` by column: one sequence per field, each as long as ``rows``. Converted a column at a time
        (a batch's rows share most values: NULLs, its one ``now``), a time column's equal values once."""
        entry = self.compiled(dialect)
        fields = self.fields(dialect)
        get = itemgetter(*fields)
        picked = list(map(get, rows))
        if len(fields) == 1:
            columns: list[Sequence[Any]] = [picked]
        else:
            columns = list(zip(*picked, strict=True)) if picked else [() for _ in fields]
        for at, convert in enumerate(entry.converters):
            column = columns[at]
            if convert is None or column.count(None) == len(column):
                continue
            if isinstance(self.table.c[fields[at]].type, UtcDateTime):
                memo: dict[Any, Any] = {}
                converted = []
                for value in column:
                    if value is not None and type(value) is dt.datetime:
                        hit = memo.get(value, _MISSING)
                        if hit is _MISSING:
                            # Equal instants in other zones share an entry: every zone converts to the same UTC.
                            hit = memo[value] = convert(value)
                        value = hit
                    elif value is not None:
                        value = convert(value)
                    converted.append(value)
                columns[at] = converted
            else:
                columns[at] = [None if value is None else convert(value) for value in column]
        return columns

    def executemany(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run for every row, in ``conn``'s transaction (nothing when ``rows`` is empty)."""
        if not rows:
            return
        if conn.dialect.name not in DRIVER_DIALECTS:
            # SQLAlchemy's own executemany, as before (openGauss and Dameng: not measured, not changed).
            statement = self.statement()
            params = [{f"v_{c}": row[c] for c in self.columns} for row in rows]
            if self.key:
                for row, values in zip(rows, params, strict=True):
                    values[_KEY] = row[self.key]
            conn.execute(statement, params)
            return
        if conn.dialect.name in BULK_DIALECTS:
            if self.key is None:
                self._copy(conn, rows)
            else:
                self._update(conn, rows)
            return
        sql, params = self.rows(conn.dialect, rows)
        # On the driver with the parameters as they are, but through the connection: its errors are SQLAlchemy's
        # (a lost connection is recognised and invalidated) and its events (tracing) still see the statement.
        conn.exec_driver_sql(sql, params)

    # -- PostgreSQL: a batch in one statement -------------------------------------------------------------

    def copy_sql(self, dialect: Any, *, binary: bool = False) -> str:
        quote = dialect.identifier_preparer.quote
        columns = ", ".join(quote(c) for c in self.fields(dialect))
        sql = f"COPY {dialect.identifier_preparer.format_table(self.table)} ({columns}) FROM STDIN"
        return f"{sql} (FORMAT BINARY)" if binary else sql

    def copy_types(self, conn: Connection) -> tuple[list[int], list[tuple[int, str]]] | None:
        """The type (oid) of each column of :meth:`fields` as the table has it in ``conn``'s database, read from the
        catalogue once per database, with the (position, type name) of the columns whose values a binary COPY would
        not check (:func:`_fits_binary`); None when a type is not in :data:`BINARY_COPY_TYPES` (the COPY is then
        text)."""
        key = str(conn.engine.url)
        if key not in self._copy_types:
            found = {
                name: (oid, type_name)
                for name, oid, type_name in conn.exec_driver_sql(
                    "SELECT a.attname, a.atttypid::int, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = "
                    "a.atttypid WHERE a.attrelid = to_regclass(%(table)s) AND a.attnum > 0 AND NOT a.attisdropped",
                    {"table": conn.dialect.identifier_preparer.format_table(self.table)},
                )
            }
            types = [found.get(name) for name in self.fields(conn.dialect)]
            self._copy_types[key] = (
                (
                    [t[0] for t in types if t is not None],
                    [(at, t[1]) for at, t in enumerate(types) if t is not None and t[1] in _UNCHECKED_IN_BINARY],
                )
                if all(t is not None and t[1] in BINARY_COPY_TYPES for t in types)
                else None
            )
        return self._copy_types[key]

    def _copy(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """INSERT as ``COPY ... FROM STDIN`` (psycopg's ``Cursor.copy``): the rows go as one stream, formatted by
        psycopg's C dumpers, and the server inserts them without a statement per row. In PostgreSQL's binary format
        where every column's type allows (:meth:`copy_types`: the values as the bind processors give them, str, int,
        bool, bytes, an aware datetime, dumped by the column's own type): about 1 µs a 29-column outbox row on the
        client against 5 µs as text, and the server parses no text (times). A value the column refuses (a text too
        long for a VARCHAR(n)) is refused as in text."""
        binary = self.copy_types(conn)
        columns = self.columns_of(conn.dialect, rows)
        values = _rows_of(columns)
        if binary is not None and not _fits_binary(columns, binary[1]):
            binary = None  # a value binary would wrap or fail on: text, where the server refuses it as it should
        types = binary[0] if binary is not None else None
        sql = self.copy_sql(conn.dialect, binary=types is not None)
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            with copy_span(conn, sql, len(values)), cursor.copy(sql) as stream:
                if types is not None:
                    stream.set_types(types)
                for row in values:
                    stream.write_row(row)
        except conn.dialect.loaded_dbapi.Error as error:
            # As SQLAlchemy does for its own statements: a lost connection is invalidated, the error is its DBAPIError.
            lost = conn.dialect.is_disconnect(error, raw, cursor)
            if lost:
                conn.invalidate(error)
            raise exc.DBAPIError.instance(
                sql, None, error, conn.dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=conn.dialect
            ) from error
        finally:
            cursor.close()

    def json_update(self, dialect: Any) -> ClauseElement:
        """``UPDATE table SET c = v.c ... FROM json_populate_recordset(NULL::table, :rows) AS v WHERE table.key =
        v.key``: the whole batch in one statement (PostgreSQL). The rows travel as one JSON text (psycopg dumps a
        Python list element by element, ~3 µs each: ~1 ms per column of 200 rows) and PostgreSQL reads each value
        with its column's own type (a VARCHAR(n) refuses a longer value, a time keeps its zone)."""
        assert self.key is not None
        rows = (
            func.json_populate_recordset(
                literal_column(f"NULL::{dialect.identifier_preparer.format_table(self.table)}"),
                cast(bindparam("rows", type_=String()), JSON),
            )
            .table_valued(*(self.table.c[c].key for c in (*self.columns, self.key)))
            .alias("v")
        )
        return (
            update(self.table)
            .where(self.table.c[self.key] == rows.c[self.key])
            .values({c: rows.c[c] for c in self.columns})
        )

    def shared_update(self, dialect: Any) -> ClauseElement:
        """``UPDATE table SET c = :v_c ... WHERE key = ANY (ARRAY(SELECT json_array_elements_text(:k_keys)))``: rows
        that change the same columns to the same values in one statement (PostgreSQL), the keys as one JSON list."""
        assert self.key is not None
        values = {c: bindparam(f"v_{c}", type_=self.table.c[c].type) for c in self.columns}
        return update(self.table).where(among(self.table.c[self.key], _KEYS)).values(values)

    def _update(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """PostgreSQL: the rows that share their new values (a batch of timers moves its customers alike: the same
        node, status and time) in one :meth:`shared_update` per set of values, at most :data:`SHARED_UPDATES` sets
        of :data:`SHARED_UPDATE_ROWS` rows or more, biggest first; the others in one :meth:`json_update` (the
        server parses no JSON row per customer where they share)."""
        dialect = conn.dialect
        values = self.values(dialect, rows)
        groups: dict[tuple[Any, ...], list[Any]] = {}
        try:
            for row in values:
                groups.setdefault(row[:-1], []).append(row[-1])
        except TypeError:  # a value that does not hash (nothing the bind processors give): every row as JSON
            groups = {}
        shared = sorted((g for g in groups.items() if len(g[1]) >= SHARED_UPDATE_ROWS), key=lambda g: -len(g[1]))
        shared = shared[:SHARED_UPDATES]
        if shared:
            sql, names = self._shared_sql.get(dialect.name, (None, None))
            if sql is None or names is None:
                compiled = self.shared_update(dialect).compile(dialect=dialect)
                sql, names = compiled.string, list(compiled.binds)
                self._shared_sql[dialect.name] = (sql, names)
            fields = self.fields(dialect)[:-1]  # the order of values(): the key last
            for set_values, keys in shared:
                params = dict(zip((f"v_{c}" for c in fields), set_values, strict=True))
                params[_KEYS] = json.dumps(keys, ensure_ascii=False)
                conn.exec_driver_sql(sql, {n: params[n] for n in names})
            done = {id(keys) for _, keys in shared}
            values = [row for row in values if id(groups[row[:-1]]) not in done]  # the rest, in the caller's order
        if values:
            self._update_from_json(conn, values)

    def _update_from_json(self, conn: Connection, values: Sequence[tuple[Any, ...]]) -> None:
        """``values``: the rows as :meth:`values` gives them."""
        dialect = conn.dialect
        sql = self._json_sql.get(dialect.name)
        if sql is None:
            sql = self._json_sql[dialect.name] = str(self.json_update(dialect).compile(dialect=dialect))
        fields = self.fields(dialect)
        times: dict[dt.datetime, str] = {}  # a batch's rows share their times (its now): each formatted once

        def default(value: Any) -> str:
            found = times.get(value) if type(value) is dt.datetime and value.tzinfo is dt.UTC else None
            if found is None:
                found = _json_time(value)
                if type(value) is dt.datetime and value.tzinfo is dt.UTC:
                    times[value] = found
            return found

        document = json.dumps(
            [dict(zip(fields, row, strict=True)) for row in values], ensure_ascii=False, default=default
        )
        conn.exec_driver_sql(sql, {"rows": document})


def _json_time(value: Any) -> str:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.isoformat()  # read back by timestamptz with its offset
    raise TypeError(f"{type(value).__name__} is not written through JSON")


class JsonList(TypeDecorator[list[Any]]):
    """A list bound as one JSON text (psycopg's list dumping costs ~3 µs an element)."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: list[Any] | None, dialect: Any) -> str | None:
        return None if value is None else json.dumps(value, ensure_ascii=False)


def json_texts(name: str) -> Any:
    """The texts of the JSON array bound as ``name`` (a Python list): ``json_array_elements_text(:name)``, a set."""
    return func.json_array_elements_text(cast(bindparam(name, type_=JsonList()), JSON))


def among(column: Any, name: str) -> Any:
    """``column = ANY (ARRAY(SELECT json_array_elements_text(:name)))`` (PostgreSQL): one parameter for a batch's
    ids or customers, and an index probe per element whatever the statistics say."""
    return column == any_(func.array(select(json_texts(name)).scalar_subquery()))


ARRAY_DIALECTS = ["postgresql"]
"""Where a batch's reads and claims take their customers or ids as one array parameter (``= ANY``, and the recent
messages through ``policy.recent_lateral``); elsewhere ``IN (...)``. Tests empty ``policy.ARRAY_DIALECTS`` (the
gate's reads) to check that path."""

BINARY_COPY_TYPES = frozenset({"text", "varchar", "int2", "int4", "int8", "bool", "timestamptz", "bytea"})
"""PostgreSQL column types a COPY writes in binary (psycopg dumps the bind processors' values by these types)."""

_INT_RANGES = {"int2": 1 << 15, "int4": 1 << 31, "int8": 1 << 63}
_UNCHECKED_IN_BINARY = frozenset({*_INT_RANGES, "text", "varchar"})
"""Types whose binary dumpers do not refuse what text would: an int out of range wraps around (2**31 + 5 was stored
as -2147483643), and an int for a text column raises a bare TypeError where text stores its digits."""


def _fits_binary(columns: Sequence[Sequence[Any]], checked: Sequence[tuple[int, str]]) -> bool:
    for at, type_name in checked:
        column = columns[at]
        kinds = set(map(type, column))
        kinds.discard(type(None))
        bound = _INT_RANGES.get(type_name)
        if bound is None:
            if not kinds <= {str}:
                return False
        elif not kinds <= {int}:
            return False
        elif kinds:
            present = [v for v in column if v is not None] if None in column else column
            if min(present) < -bound or max(present) >= bound:
                return False
    return True


def _rows_of(columns: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """Rows from columns (see DriverWrite.columns_of)."""
    return list(zip(*columns, strict=True))


BULK_DIALECTS = ("postgresql",)
"""Where a batch's INSERT is one ``COPY`` and its UPDATE one statement over a JSON array of rows (psycopg's
executemany costs ~15 µs of client CPU a row, and the server runs a statement per row). Tests empty it to check
the fallback."""

DRIVER_DIALECTS = ("sqlite", "postgresql")
"""Where a batch's rows go to the driver's executemany: SQLite's runs the rows in C; on PostgreSQL SQLAlchemy's
executemany of these statements is psycopg's executemany as well (measured: no multi-row VALUES), after its own
per-row work."""


_MISSING = object()


class DriverRows:
    """A SELECT (or a statement with RETURNING) run on the driver (``exec_driver_sql``): compiled once per dialect
    from ``make(dialect)``, its bind values converted by their types, its rows returned as dicts by column label with
    the columns' own result processing (JSON, times), a time column's text parsed once per distinct value within one
    call."""

    def __init__(self, make: Callable[[Any], Any]) -> None:
        self._make = make
        self._compiled: dict[tuple[str, str], tuple[str, list[Any], list[Any], Any]] = {}

    def compiled(self, dialect: Any) -> tuple[str, list[Any], list[Any], Any]:
        """The SQL, the binds (name, converter, default) in the driver's order, the result columns (label,
        processor, memo flag) and whether the driver takes positional parameters."""
        key = (dialect.name, dialect.paramstyle)
        entry = self._compiled.get(key)
        if entry is None:
            statement = self._make(dialect)
            compiled = statement.compile(dialect=dialect)
            names = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
            binds = []
            for name in names:
                bind = compiled.binds[name]
                default = _MISSING if bind.required else bind.effective_value
                binds.append((name, bind.type._cached_bind_processor(dialect), default))
            columns = [
                (
                    c.key,
                    _JSON_RESULT if _plain_json(c.type, dialect) else c.type._cached_result_processor(dialect, None),
                    isinstance(c.type, UtcDateTime),
                )
                for c in (statement.selected_columns if isinstance(statement, Select) else statement.exported_columns)
            ]
            entry = self._compiled[key] = (compiled.string, binds, columns, bool(compiled.positional))
        return entry

    def fetch(self, conn: Connection, **values: Any) -> list[dict[str, Any]]:
        sql, binds, columns, positional = self.compiled(conn.dialect)
        params = []
        for name, convert, default in binds:
            value = values[name] if default is _MISSING else values.get(name, default)
            params.append(convert(value) if convert is not None and value is not None else value)
        names = [b[0] for b in binds]
        raw = conn.exec_driver_sql(sql, tuple(params) if positional else dict(zip(names, params, strict=True)))
        fetched = raw.fetchall()  # one call to the driver, not one per row
        if not fetched:
            return []
        values: list[Sequence[Any]] = list(zip(*fetched, strict=True))
        for at, (_, process, memoized) in enumerate(columns):
            column = values[at]
            if process is None or column.count(None) == len(column):
                continue
            if memoized:
                memo: dict[Any, Any] = {}
                converted = []
                for value in column:
                    hit = memo.get(value, _MISSING)
                    if hit is _MISSING:
                        hit = memo[value] = process(value)
                    converted.append(hit)
                values[at] = converted
            elif process is _JSON_RESULT:  # JsonText's own processing, without a call through TypeDecorator per value
                values[at] = [None if value is None else _json_loads(value) for value in column]
            else:
                values[at] = [process(value) for value in column]
        labels = [c[0] for c in columns]
        return [dict(zip(labels, row, strict=True)) for row in zip(*values, strict=True)]


_JSON_RESULT = object()
"""A result column of :class:`svc_common.db.JsonText` read as text (see DriverRows.fetch)."""


_SCAN = json.JSONDecoder().scan_once


def _json_loads(text: str) -> Any:
    """``json.loads(text)`` for the compact documents JsonText writes: the decoder's scanner straight away (json.loads
    first matches whitespace on both sides in Python); anything else (whitespace, trailing text, an error) goes
    through json.loads, which reads or refuses it as it always did."""
    try:
        value, end = _SCAN(text, 0)
    except (StopIteration, ValueError):
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


def _plain_json(type_: Any, dialect: Any) -> bool:
    """A JsonText column whose driver gives its text as it is (Text has no result processor there)."""
    return isinstance(type_, JsonText) and type_.impl_instance._cached_result_processor(dialect, None) is None


class DriverUpdates:
    """UPDATEs by key of rows that changed different sets of columns: one ``DriverWrite`` per set."""

    def __init__(self, table: Table, key: str) -> None:
        self.table, self.key = table, key
        self._writes: dict[tuple[str, ...], DriverWrite] = {}

    def write(self, columns: tuple[str, ...]) -> DriverWrite:
        found = self._writes.get(columns)
        if found is None:
            found = self._writes[columns] = DriverWrite(self.table, columns, key=self.key)
        return found


__all__ = ["DriverRows", "DriverUpdates", "DriverWrite", "among", "json_texts"]
