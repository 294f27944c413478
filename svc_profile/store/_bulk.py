"""The bulk seam of svc_profile's store: chunked key lists, and ``executemany`` of statements compiled once per
dialect (on PostgreSQL one array per column, ``unnest``; on SQLite, in the log consumer's batch, rows staged for one
statement over them: ``_stage``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy.engine import Connection

from svc_profile.store._stage import SqliteForm, Stage

_CHUNK = 500
FEW = 8
"""Rows an ``executemany`` may have and still count as ``whole`` (``write``): a step per row, with the GIL taken
again after each, costs the log consumer's pipeline thread little for so few."""


def chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_COMPILED: dict[tuple[Any, ...], tuple[str, list[str] | None, list[tuple[str, Any]], Any]] = {}
_BIND = re.compile(r"%\((\w+)\)s")


def bulk(
    conn: Connection,
    key: tuple[Any, ...],
    make: Any,
    rows: Sequence[Any],
    names: Sequence[str] | None = None,
    encoded: Iterable[str] = (),
    order: Sequence[str] = (),
) -> None:
    """``executemany`` of a Core statement over ``rows`` (dicts keyed by its bind names, or tuples in the order
    of ``names``), compiled once per dialect and handed to the driver as plain tuples/dicts: SQLAlchemy's
    per-row parameter processing (the largest cost of a log batch's writes) is skipped, the columns' own bind
    processors (JSON …) kept except for the binds in ``encoded`` (values the caller encoded already).
    On PostgreSQL the rows go as one array per column in one statement (``unnest``): one execution on the
    server instead of one per row. On SQLite, in the log consumer's batch, the rows are staged when the batch ends
    (``StagedRows``), so that the write too is one statement. ``make()`` builds the statement the first time ``key``
    is seen. ``order``: columns (bind names) whose values the rows are written in the order of (sorted here; a
    staged write on SQLite sorts them in its statement, off the consumer's thread)."""
    if not rows:
        return
    sql, positional, processors, arrays = _compiled(conn, key, make)
    skip = set(encoded)
    if names is None:  # dict rows
        names = list(rows[0])
        pick = itemgetter(*names)
        rows = [pick(r) for r in rows] if len(names) > 1 else [(pick(r),) for r in rows]
    index = {n: i for i, n in enumerate(names)}
    procs = [(index[n], proc) for n, proc in processors if n not in skip]
    if procs:
        listed = [list(r) for r in rows]
        for i, proc in procs:
            for r in listed:
                r[i] = proc(r[i])
        rows = [tuple(r) for r in listed]  # the driver takes tuples
    staging = isinstance(arrays, SqliteForm) and len(rows) > FEW
    if order and not staging:
        rows = sorted(rows, key=itemgetter(*(index[n] for n in order)))
    if isinstance(arrays, str) and len(rows) > 1 and _distinct_keys(arrays, index, rows):
        columns = zip(*rows, strict=True)
        values = {n: list(column) for n, column in zip(names, columns, strict=True)}
        write(conn, TableWrite(_target(sql), lambda c: c.exec_driver_sql(arrays, values)), whole=True)
        return
    if positional is not None:
        if list(positional) != list(names):
            pick = itemgetter(*(index[n] for n in positional))
            rows = [pick(r) for r in rows] if len(positional) > 1 else [(pick(r),) for r in rows]
        params: list[Any] = rows if isinstance(rows, list) else list(rows)
    else:
        params = [dict(zip(names, r, strict=True)) for r in rows]
    table = _target(sql)
    if staging and arrays.fits(params):
        write(conn, StagedRows(sql, params, arrays, table, positional, order))
        return
    if order and staging:  # not staged after all (a SqliteForm: positional rows): sorted here
        bound = list(positional or ())
        params = sorted(params, key=itemgetter(*(bound.index(n) for n in order)))
    write(conn, TableWrite(table, lambda c: c.exec_driver_sql(sql, params)), whole=len(params) <= FEW)


def _target(sql: str) -> str | None:
    match = re.match(r"(?:INSERT INTO|UPDATE|DELETE FROM) \"?(\w+)", sql)
    return match.group(1) if match else None


class TableWrite:
    """A deferred write of one table: a read of other tables in the same batch need not run it first
    (``pipeline.BatchConnection.reading``)."""

    __slots__ = ("run", "table")

    def __init__(self, table: str | None, run: Any) -> None:
        self.table, self.run = table, run

    def __call__(self, conn: Connection) -> Any:
        return self.run(conn)


def reader(conn: Any, *tables: str, rows: Callable[[dict[str, int], Sequence[Any]], bool] | None = None) -> Any:
    """The connection for a read of ``tables``: on the log consumer's batch connection only the buffered writes up to
    the last one of those tables run first (``BatchConnection.reading``); any other connection as it is. ``rows``:
    a buffered ``StagedRows`` matters to the read only when it holds a row passing this test (given the index of
    each column and the row); a write whose rows are not known always matters."""
    reading = getattr(conn, "reading", None)
    if reading is None:
        return conn
    if rows is None:
        return reading(tables)
    return reading(tables, lambda write: write.holds(rows) if isinstance(write, StagedRows) else True)


class StagedRows:
    """An ``executemany`` on SQLite that can instead go through the batch's staged rows (``_stage``): run as it is
    (called) when the batch needs the database before it ends, else ``staged`` into the batch's ``Stage`` for one
    statement on the pipeline's thread."""

    __slots__ = ("columns", "form", "order", "rows", "sql", "table")

    def __init__(
        self,
        sql: str,
        rows: list[Any],
        form: SqliteForm,
        table: str | None,
        columns: list[str],
        order: Sequence[str] = (),
    ) -> None:
        self.sql, self.rows, self.form, self.table = sql, rows, form, table
        self.columns = columns
        """The bind names of each row's values, in order (``holds``)."""
        self.order = [columns.index(n) for n in order]
        """The columns (0-based) the rows are to be written in the order of (``bulk``'s ``order``)."""

    def holds(self, test: Callable[[dict[str, int], Sequence[Any]], bool]) -> bool:
        """Whether ``test(index of each column, row)`` holds for one of its rows (``reader``'s ``matters``)."""
        index = {name: i for i, name in enumerate(self.columns)}
        return any(test(index, row) for row in self.rows)

    def __call__(self, conn: Connection) -> None:
        if self.order:
            self.rows = sorted(self.rows, key=itemgetter(*self.order))
        conn.exec_driver_sql(self.sql, self.rows)

    def staged(self, stage: Stage) -> Any:
        table, constants, values = stage.add(self.rows, self.form.width)
        text = self.form.statement(table, constants, [i + 1 for i in self.order])
        params = tuple(values)
        self.rows = []
        return TableWrite(self.table, lambda c: c.exec_driver_sql(text, params))


def write(conn: Any, statement: Any, whole: bool = False) -> None:
    """``statement(conn)``, a write whose answer nobody reads: deferred on the log consumer's connection
    (``pipeline.BatchConnection``: run before its next read or at the batch's end; ``whole``: one statement for
    all its rows; a ``StagedRows`` can be made one), at once on any other."""
    defer = getattr(conn, "defer", None)
    if defer is not None:
        defer(statement, whole)
    else:
        statement(conn)


def _compiled(conn: Connection, key: tuple[Any, ...], make: Any) -> tuple[str, Any, list[tuple[str, Any]], Any]:
    dialect = conn.dialect
    cache_key = (dialect.name, dialect.paramstyle, *key)
    entry = _COMPILED.get(cache_key)
    if entry is None:
        compiled = make().compile(dialect=dialect)
        names = list(compiled.binds)
        processors = []
        for name in names:
            bind = compiled.binds[name]
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                processors.append((name, proc))
        positional = list(compiled.positiontup) if compiled.positional and compiled.positiontup else None
        arrays: Any = None
        if dialect.name == "postgresql" and positional is None:
            arrays = _unnest_form(compiled)
        elif dialect.name == "sqlite" and dialect.paramstyle == "qmark" and positional is not None:
            arrays = SqliteForm.of(compiled.string, len(positional))
        entry = (compiled.string, positional, processors, arrays)
        _COMPILED[cache_key] = entry
    return entry


def _unnest_form(compiled: Any) -> str | None:
    """The PostgreSQL statement taking one array per bind (``%(name)s``) instead of one row of values:
    ``INSERT … VALUES (…)`` becomes ``INSERT … SELECT * FROM unnest(…)``; ``UPDATE … SET … WHERE`` and
    ``DELETE … WHERE`` read the rows from ``unnest(…) AS v`` (FROM / USING). None: keep ``executemany``."""
    sql: str = compiled.string
    names = list(dict.fromkeys(_BIND.findall(sql)))
    if not names or set(names) != set(compiled.binds):
        return None
    types = {n: compiled.binds[n].type.dialect_impl(compiled.dialect).compile(dialect=compiled.dialect) for n in names}
    arrays = ", ".join(f"%({n})b::{types[n]}[]" for n in names)  # binary: no text escaping
    if sql.startswith("INSERT INTO"):
        sql = sql.partition(" RETURNING ")[0]  # the generated key of one row: nothing a bulk insert reads
        values = re.search(r"VALUES \((.*?)\)(?= ON CONFLICT |$)", sql)
        if values is None or _BIND.findall(values.group(1)) != names:
            return None
        return sql[: values.start()] + f"SELECT * FROM unnest({arrays})" + sql[values.end() :]
    head, sep, where = sql.partition(" WHERE ")
    if not sep or " FROM " in where or " RETURNING " in where:
        return None
    source = f"unnest({arrays}) AS __v({', '.join(names)})"
    if sql.startswith("UPDATE "):
        return _BIND.sub(r"__v.\1", head) + f" FROM {source} WHERE " + _BIND.sub(r"__v.\1", where)
    if sql.startswith("DELETE FROM "):
        return head + f" USING {source} WHERE " + _BIND.sub(r"__v.\1", where)
    return None


def _distinct_keys(sql: str, index: dict[str, int], rows: Sequence[Sequence[Any]]) -> bool:
    """``ON CONFLICT … DO UPDATE`` may not meet one key twice in one statement (``executemany`` may)."""
    conflict = re.search(r"ON CONFLICT \(([^()]*)\) DO UPDATE", sql)
    if conflict is None:
        return True
    pick = itemgetter(*(index[k.strip().strip('"')] for k in conflict.group(1).split(",")))
    return len({pick(r) for r in rows}) == len(rows)
