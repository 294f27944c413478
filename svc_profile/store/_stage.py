"""The log consumer's SQLite writes staged in memory, so that they run as whole statements on the pipeline's thread.

A batch's bulk writes on SQLite were ``executemany`` calls, which take the GIL back after every row's step: beside the
busy consumer a thread other than the consumer's would wait a switch interval (5 ms) per row, so they ran on the
consumer's own thread (~30 % of its time, most of it SQLite's B-tree work). Now, when the batch ends, each write's
rows go into a table of a private in-memory database (``Stage``: an insert into an unindexed table, a fraction of the
cost), whose image is handed over with the commit; the pipeline's thread loads it into a schema attached to the
batch's connection (``load``) and runs each write as one ``INSERT … SELECT`` / ``UPDATE … FROM`` / ``DELETE … IN
(SELECT …)`` over its table, the GIL released for all its rows. The rows keep their order (rowid), so the statements
meet the rows as ``executemany`` did, one after the other (``SqliteForm``).
"""

from __future__ import annotations

import itertools
import re
import sqlite3
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection

SCHEMA = "qiming_stage"
"""The schema the staged rows are loaded into on the consumer's connection (``ATTACH ':memory:'``)."""
_INFO = "qiming_stage_attached"
_VERSIONS = itertools.count(1)
AVAILABLE = hasattr(sqlite3.Connection, "serialize") and sqlite3.sqlite_version_info >= (3, 33)
"""``serialize``/``deserialize`` (Python 3.11 on SQLite 3.23+) and ``UPDATE … FROM`` (3.33): else no staging."""


class SqliteForm:
    """A statement of one row of ``?`` values (as ``executemany`` runs it) as one statement over a staged table
    (columns ``c1`` … ``cN`` in the order of the ``?``):

    - ``INSERT INTO t (…) VALUES (?, …) [ON CONFLICT …]`` → ``INSERT INTO t (…) SELECT c1, … FROM s ORDER BY rowid
      [ON CONFLICT …]``: the rows inserted in order, a conflict met against the rows before it as with
      ``executemany``;
    - ``UPDATE t SET a=?, … WHERE t.k = ? [AND …]`` → ``UPDATE t SET a=s.c1, … FROM s WHERE t.k = s.c3 …``, for rows
      whose ``WHERE`` values are distinct only (``fits``: ``UPDATE … FROM`` applies one of several rows that match
      one target, where ``executemany`` would apply each in turn);
    - ``DELETE FROM t WHERE t.a = ? [AND …]`` → ``DELETE FROM t WHERE (t.a, …) IN (SELECT c1, … FROM s)``.

    None (``of``) for any other statement: it stays an ``executemany``."""

    def __init__(self, template: str, width: int, keys: tuple[int, ...] | None) -> None:
        self.template, self.width, self.keys = template, width, keys
        """``template``: ``{0}`` the staged table, ``{c1}`` … each column's value (``c1`` …, or a parameter)."""

    @classmethod
    def of(cls, sql: str, width: int) -> SqliteForm | None:
        if not AVAILABLE or width < 1 or sql.count("?") != width or "{" in sql:
            return None
        columns = ", ".join(f"{{c{i}}}" for i in range(1, width + 1))
        if sql.startswith("INSERT INTO "):
            values = re.search(r" VALUES \(\?(?:, \?)*\)(?= ON CONFLICT |$)", sql)
            if values is None or " RETURNING " in sql:
                return None
            select = f" SELECT {columns} FROM {{0}} WHERE true ORDER BY {{order}}"  # WHERE: ON CONFLICT's parse
            return cls(sql[: values.start()] + select + sql[values.end() :], width, None)
        head, sep, where = sql.partition(" WHERE ")
        compared = r"[\w.\"]+ = \?"
        if not sep or not re.fullmatch(rf"{compared}(?: AND {compared})*", where):
            return None
        keys = re.findall(r"([\w.\"]+) = \?", where)
        if sql.startswith("DELETE FROM ") and "?" not in head and len(keys) == width:
            return cls(f"{head} WHERE ({', '.join(keys)}) IN (SELECT {columns} FROM {{0}})", width, None)
        if sql.startswith("UPDATE ") and " FROM " not in head and head.count("?") == width - len(keys):
            number = iter(range(1, width + 1))
            sets = re.sub(r"\?", lambda _: f"{{s{next(number)}}}", head)
            compare = " AND ".join(f"{k} = {{s{next(number)}}}" for k in keys)
            return cls(f"{sets} FROM {{0}} AS __s WHERE {compare}", width, tuple(range(width - len(keys), width)))
        return None

    def fits(self, rows: Sequence[Sequence[Any]]) -> bool:
        if self.keys is None:
            return True
        pick = itemgetter(*self.keys)  # one key: its values; several: tuples of them
        return len(set(map(pick, rows))) == len(rows)

    def statement(self, table: str, constants: Sequence[int] = (), order: Sequence[int] = ()) -> str:
        """The statement over ``table``; the columns in ``constants`` (1-based, ascending) are not staged but bound as
        parameters ``?1``, ``?2`` … in that order (``Stage.add``). ``order`` (1-based columns, an INSERT): the rows
        inserted in the order of those columns' values (sorted here, on the thread that runs the statement), not in
        their staged order; one-value columns left out of it."""
        sort = [f"c{i}" for i in order if i not in constants]
        values: dict[str, str] = {"order": ", ".join(sort) if sort else "rowid"}
        bound = {c: j for j, c in enumerate(constants, 1)}
        for i in range(1, self.width + 1):
            j = bound.get(i)
            values[f"c{i}"] = f"?{j}" if j else f"c{i}"
            values[f"s{i}"] = f"?{j}" if j else f"__s.c{i}"
        return self.template.format(table, **values)


_CHUNK_ROWS = 64
"""Rows per multi-row ``INSERT … VALUES`` into a staged table: ``executemany`` steps (and takes the GIL back) once
per row, one statement per 64 rows costs the consumer's thread ~30 % less (longer ones cost more to prepare)."""


def constant(rows: Sequence[Sequence[Any]], width: int) -> dict[int, Any]:
    """The columns (0-based) holding one value in every row: None, or an ``int`` or ``str`` (exactly those types, so
    that the value bound once is the one each row would have bound). Staging them costs the consumer's thread for
    every row, None most (the driver binds it through its adapter lookup, ~0.3 µs: a retained event's unset
    ``anonymous_id`` and ``context_fields``, a tag's ``sealed_value`` and ``expires_us``)."""
    out: dict[int, Any] = {}
    if not rows:
        return out
    first, last, n = rows[0], rows[-1], len(rows)
    for i in range(width):
        value, other = first[i], last[i]
        if value is None:
            if other is None and list(map(itemgetter(i), rows)).count(None) == n:
                out[i] = None
            continue
        kind = type(value)
        if (kind is int or kind is str) and type(other) is kind and other == value:  # else varying, the usual case
            column = list(map(itemgetter(i), rows))
            if column.count(value) == n and set(map(type, column)) == {kind}:
                out[i] = value
    return out


def _insert(db: sqlite3.Connection, name: str, rows: Sequence[Sequence[Any]], columns: list[int]) -> None:
    """Columns ``columns`` (0-based) of ``rows`` into table ``name``, in order: their values in one flat list, taken
    ``_CHUNK_ROWS`` rows at a time by a multi-row statement, the rest row by row."""
    width = len(columns)
    if not rows:
        return
    if width == 1:
        flat = list(map(itemgetter(columns[0]), rows))
    else:
        flat = list(
            itertools.chain.from_iterable(map(itemgetter(*columns), rows) if len(columns) < len(rows[0]) else rows)
        )
    one = f"({', '.join('?' * width)})"
    size = max(1, min(_CHUNK_ROWS, db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
    step = size * width
    whole = len(rows) // size * step
    if whole:
        sql = f"INSERT INTO {name} VALUES {', '.join([one] * size)}"
        for start in range(0, whole, step):
            db.execute(sql, flat[start : start + step])
    if whole < len(flat):
        db.executemany(
            f"INSERT INTO {name} VALUES {one}", [flat[i : i + width] for i in range(whole, len(flat), width)]
        )


class Stage:
    """One batch's staged rows: a private in-memory database, used by the consumer's thread only."""

    def __init__(self) -> None:
        self._db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self._db.execute("BEGIN")
        self._tables = 0

    def add(self, rows: Sequence[Sequence[Any]], width: int) -> tuple[str, list[int], list[Any]]:
        """A table of ``rows`` (columns c1 … c``width``, in order) but their ``constant`` columns: returns its name in
        the loaded schema, the 1-based numbers of the columns left out and their one value each (``constant``), for
        ``SqliteForm.statement`` and its parameters."""
        self._tables += 1
        name = f"qiming_rows_{self._tables}"
        same = constant(rows, width)
        if len(same) == width:
            del same[0]  # a table needs a column: the first one stays
        kept = [i for i in range(width) if i not in same]
        self._db.execute(f"CREATE TABLE {name} ({', '.join(f'c{i + 1}' for i in kept)})")
        _insert(self._db, name, rows, kept)
        return f"{SCHEMA}.{name}", [i + 1 for i in same], list(same.values())

    def image(self) -> bytes:
        # Each image gets a schema cookie of its own. ``deserialize`` does not expire the driver's cached statements
        # over the schema: one prepared for the previous image, with the same text and cookie, would read this one
        # through that image's root pages (its tables' places depend on their sizes). A new cookie makes SQLite
        # prepare them again.
        self._db.execute(f"PRAGMA schema_version = {next(_VERSIONS) % 2**31 + 1000}")
        self._db.execute("COMMIT")
        try:
            return self._db.serialize()
        finally:
            self._db.close()


def load(conn: Connection, image: bytes) -> None:
    """The staged tables of ``image`` in ``SCHEMA`` of ``conn`` (attached the first time the driver's connection
    meets it). Errors come out as SQLAlchemy's, as the statements' do."""
    record = conn.connection
    dbapi = record.dbapi_connection
    try:
        if record.info.get(_INFO) is not dbapi:
            attached = {row[1] for row in dbapi.execute("PRAGMA database_list")}
            if SCHEMA not in attached:
                dbapi.execute(f"ATTACH ':memory:' AS {SCHEMA}")  # not transactional: stays with the connection
            record.info[_INFO] = dbapi
        dbapi.deserialize(image, name=SCHEMA)
    except sqlite3.Error as error:
        raise exc.DBAPIError.instance(
            "(staged rows of a log batch)", None, error, sqlite3.Error, dialect=conn.dialect
        ) from error


__all__ = ["AVAILABLE", "SCHEMA", "SqliteForm", "Stage", "load"]
