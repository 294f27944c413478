"""Every statement of svc_profile, on a Core connection the caller's transaction owns.

Bulk by construction: lookups take lists of keys (chunked ``IN``), writes take lists of rows
(``executemany`` through the upsert seam), so a log batch costs a handful of statements whatever its size.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import Text, and_, bindparam, delete, func, insert, select, type_coerce, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import Delete

from svc_common.db import Database, upsert_statement
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_profile.store._raw import days_sqlite

CUSTOMER = types_pb2.ID_TYPE_CUSTOMER
CANONICAL = types_pb2.ID_TYPE_CANONICAL
ANONYMOUS = types_pb2.ID_TYPE_ANONYMOUS
_CHUNK = 500
EVENT_KEY = ("profile_id", "occurred_us", "event_id")
"""The retained events' primary key (``pk_profile_event``)."""


def chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_COMPILED: dict[tuple[Any, ...], tuple[str, list[str] | None, list[tuple[str, Any]], str | None]] = {}
_BIND = re.compile(r"%\((\w+)\)s")


def bulk(
    conn: Connection,
    key: tuple[Any, ...],
    make: Any,
    rows: Sequence[Any],
    names: Sequence[str] | None = None,
    encoded: Iterable[str] = (),
) -> None:
    """``executemany`` of a Core statement over ``rows`` (dicts keyed by its bind names, or tuples in the order
    of ``names``), compiled once per dialect and handed to the driver as plain tuples/dicts: SQLAlchemy's
    per-row parameter processing (the largest cost of a log batch's writes) is skipped, the columns' own bind
    processors (JSON …) kept except for the binds in ``encoded`` (values the caller encoded already).
    On PostgreSQL the rows go as one array per column in one statement (``unnest``): one execution on the
    server instead of one per row. ``make()`` builds the statement the first time ``key`` is seen."""
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
    if arrays is not None and len(rows) > 1 and _distinct_keys(arrays, index, rows):
        columns = zip(*rows, strict=True)
        conn.exec_driver_sql(arrays, {n: list(column) for n, column in zip(names, columns, strict=True)})
        return
    if positional is not None:
        if list(positional) != list(names):
            pick = itemgetter(*(index[n] for n in positional))
            rows = [pick(r) for r in rows] if len(positional) > 1 else [(pick(r),) for r in rows]
        params: list[Any] = rows if isinstance(rows, list) else list(rows)
    else:
        params = [dict(zip(names, r, strict=True)) for r in rows]
    conn.exec_driver_sql(sql, params)


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
        arrays = _unnest_form(compiled) if dialect.name == "postgresql" and positional is None else None
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


class TagRow(NamedTuple):
    """A stored tag as evaluation reads it (``tag_value`` decoded JSON, shared between equal values: read-only)."""

    tag_value: Any
    source: str
    writer_version: str
    expires_us: int | None


class ProfileStore:
    def __init__(self, database: Database, tables: dict[str, Any]) -> None:
        self.database = database
        self.t = tables

    # -- identities ----------------------------------------------------------------------------------
    def lookup_ids(self, conn: Connection, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], str]:
        wanted = set(keys)
        values = sorted({v for _, v in wanted})
        t = self.t["identity"]
        found: dict[tuple[int, str], str] = {}
        for part in chunks(values):
            for id_value, id_type, pid in conn.execute(
                select(t.c.id_value, t.c.id_type, t.c.profile_id).where(t.c.id_value.in_(part))
            ):
                if (id_type, id_value) in wanted:
                    found[(id_type, id_value)] = pid
        return found

    def identities_of(self, conn: Connection, pids: Sequence[str]) -> dict[str, list[Any]]:
        t = self.t["identity"]
        out: dict[str, list[Any]] = defaultdict(list)
        for part in chunks(list(pids)):
            for row in conn.execute(select(t).where(t.c.profile_id.in_(part)).order_by(t.c.linked_us)):
                out[row.profile_id].append(row)
        return out

    def event_ids_of(self, conn: Connection, pids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """(customer id, anonymous id) of each person, the first linked of each type ("" when none): what a
        ``$segment_*`` event names. Many persons (a recompute): one scan of those two types, no IN lists."""
        t = self.t["identity"]
        wanted = set(pids)
        base = select(t.c.profile_id, t.c.id_type, t.c.id_value).where(t.c.id_type.in_([CUSTOMER, ANONYMOUS]))
        base = base.order_by(t.c.linked_us.desc())  # the earliest linked comes last and wins
        out: dict[str, list[str]] = {}
        parts: Iterable[Sequence[str] | None] = (None,) if len(wanted) > 5 * _CHUNK else chunks(sorted(wanted))
        for part in parts:
            stmt = base if part is None else base.where(t.c.profile_id.in_(part))
            for pid, id_type, value in conn.execute(stmt):
                if pid in wanted:
                    slot = out.setdefault(pid, ["", ""])
                    slot[0 if id_type == CUSTOMER else 1] = value
        return {pid: (v[0], v[1]) for pid, v in out.items()}

    def customers_of(self, conn: Connection, pids: Sequence[str]) -> dict[str, str]:
        t = self.t["identity"]
        out: dict[str, str] = {}
        for part in chunks(list(pids)):
            rows = conn.execute(
                select(t.c.profile_id, t.c.id_value).where(t.c.profile_id.in_(part), t.c.id_type == CUSTOMER)
            )
            out.update({pid: value for pid, value in rows})
        return out

    def insert_links(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        if rows:
            conn.execute(insert(self.t["identity"]), rows)

    def delete_link(self, conn: Connection, id_type: int, id_value: str) -> None:
        t = self.t["identity"]
        conn.execute(delete(t).where(t.c.id_type == id_type, t.c.id_value == id_value))

    # -- persons -------------------------------------------------------------------------------------
    def insert_persons(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        if rows:
            conn.execute(insert(self.t["person"]), rows)

    def load_persons(
        self, conn: Connection, pids: Sequence[str], columns: Sequence[str] | None = None
    ) -> dict[str, Any]:
        t = self.t["person"]
        base = select(t) if columns is None else select(*(t.c[c] for c in ("profile_id", *columns)))
        out: dict[str, Any] = {}
        for part in chunks(list(pids)):
            out.update({row.profile_id: row for row in conn.execute(base.where(t.c.profile_id.in_(part)))})
        return out

    def window_sums(
        self, conn: Connection, pids: Sequence[str] | None, event_type: str, first_day: int, column: str
    ) -> dict[str, int]:
        """SUM of a day-bucket column per person over days >= ``first_day``, aggregated by the database
        (``pids`` None: everyone, in one pass over the (event_type, day) index)."""
        t = self.t["day"]
        out: dict[str, int] = {}
        stmt = (
            select(t.c.profile_id, func.sum(t.c[column]))
            .where(t.c.event_type == event_type, t.c.day >= first_day)
            .group_by(t.c.profile_id)
        )
        parts: Iterable[Sequence[str] | None] = chunks(list(pids)) if pids is not None else (None,)
        for part in parts:
            query = stmt if part is None else stmt.where(t.c.profile_id.in_(part))
            out.update({pid: int(total) for pid, total in conn.execute(query) if total})
        return out

    def all_customers(self, conn: Connection) -> dict[str, str]:
        t = self.t["identity"]
        return dict(conn.execute(select(t.c.profile_id, t.c.id_value).where(t.c.id_type == CUSTOMER)).all())

    def scan_persons(self, conn: Connection, columns: Sequence[str]) -> Iterator[Any]:
        t = self.t["person"]
        yield from conn.execute(select(*(t.c[c] for c in columns)))

    def update_persons(self, conn: Connection, rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
        if not rows:
            return
        t = self.t["person"]
        columns = tuple(columns)
        bulk(
            conn,
            ("update_persons", columns),
            lambda: (
                update(t)
                .where(t.c.profile_id == bindparam("pid"))
                .values({c: bindparam(f"v_{c}", type_=t.c[c].type) for c in columns})
            ),
            [{"pid": r["profile_id"], **{f"v_{c}": r[c] for c in columns}} for r in rows],
        )

    def write_features(self, conn: Connection, rows: list[tuple[str, str, int]]) -> None:
        """(profile_id, features as JSON text, updated_us) per person: the log consumer's feature write."""
        bulk(
            conn,
            ("write_features",),
            self.features_statement,
            rows,
            ("pid", "v_features", "v_updated"),
            encoded=("v_features",),
        )

    def features_statement(self) -> Any:
        t = self.t["person"]
        return (
            update(t)
            .where(t.c.profile_id == bindparam("pid"))
            .values(
                features=bindparam("v_features", type_=t.c.features.type),
                updated_us=bindparam("v_updated", type_=t.c.updated_us.type),
            )
        )

    def delete_person(self, conn: Connection, pid: str) -> None:
        for name in ("identity", "day", "event", "tag", "member", "lifecycle", "person"):
            t = self.t[name]
            conn.execute(delete(t).where(t.c.profile_id == pid))

    def count_persons(self, conn: Connection) -> int:
        return int(conn.execute(select(func.count()).select_from(self.t["person"])).scalar_one())

    # -- day buckets and events ------------------------------------------------------------------------
    def load_days(
        self, conn: Connection, pids: Sequence[str] | None, types: Iterable[str] | None, first_day: int
    ) -> dict[str, dict[str, dict[int, list[int]]]]:
        """{profile: {event_type: {day: [count, amount_fen]}}} from ``first_day`` on; ``pids`` None: everyone."""
        t = self.t["day"]
        out: dict[str, dict[str, dict[int, list[int]]]] = {}
        base = select(t.c.profile_id, t.c.event_type, t.c.day, t.c.n, t.c.amount_fen).where(t.c.day >= first_day)
        if types is not None:
            types = sorted(set(types))
            if not types:
                return out
            base = base.where(t.c.event_type.in_(types))
        if pids is not None:  # one statement, compiled once, run per chunk of ids (the consumer's read)
            base = base.where(t.c.profile_id.in_(bindparam("ids", expanding=True)))
        parts: Iterable[Sequence[str] | None] = chunks(list(pids)) if pids is not None else (None,)
        for part in parts:
            if part is None:
                result = conn.execute(base)
            elif conn.dialect.name == "postgresql" and types is not None:
                result = conn.exec_driver_sql(
                    self._days_by_key(), {"ids": list(part), "types": types, "first": first_day}
                ).tuples()
            elif conn.dialect.name == "sqlite" and types is not None:
                result = days_sqlite(conn, self.t["day"].name, part, types, first_day)
            else:
                result = conn.execute(base, {"ids": list(part)}).tuples()
            for pid, event_type, day, n, amount in result:
                by_type = out.get(pid)
                if by_type is None:
                    by_type = out[pid] = {}
                buckets = by_type.get(event_type)
                if buckets is None:
                    buckets = by_type[event_type] = {}
                buckets[day] = [n, amount]
        return out

    def _days_by_key(self) -> str:
        """PostgreSQL: the day rows of an array of persons through the primary key, one index probe per person.
        (psycopg prepares a repeated statement; the generic plan of ``profile_id IN (…500 binds…)`` filtered
        every row of the wanted types through an unhashed list: ~1 s per batch at 20,000 persons.)"""
        name = self.t["day"].name
        return (
            f"SELECT d.profile_id, d.event_type, d.day, d.n, d.amount_fen FROM unnest(%(ids)s::varchar[]) AS v(pid)"
            f" JOIN {name} d ON d.profile_id = v.pid WHERE d.day >= %(first)s AND d.event_type = ANY(%(types)s)"
        )

    def add_days(self, conn: Connection, deltas: dict[tuple[str, str, int], list[int]]) -> None:
        """Add counts to day buckets with one additive upsert (``n = n + excluded.n``): nothing is read."""
        if not deltas:
            return
        t = self.t["day"]
        columns = ("profile_id", "event_type", "day", "n", "amount_fen")
        bulk(
            conn,
            ("add_days",),
            lambda: upsert_statement(
                conn.dialect.name, t, columns, ("profile_id", "event_type", "day"), add=("n", "amount_fen")
            ),
            [(*k, *v) for k, v in sorted(deltas.items())],
            columns,
        )

    EVENT_COLUMNS = ("event_id", "profile_id", "occurred_us", "event_type", "session_id", "screen", "properties")

    def insert_events(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        """Retained events as tuples in ``EVENT_COLUMNS`` order, ``properties`` as JSON text already; an event
        stored before (the same person, time and ``event_id``: a replay) is kept."""
        if rows:
            t = self.t["event"]
            columns = self.EVENT_COLUMNS
            bulk(
                conn,
                ("insert_events", columns),
                lambda: upsert_statement(conn.dialect.name, t, columns, EVENT_KEY),
                rows,
                columns,
                encoded=("properties",),
            )

    def load_events(
        self, conn: Connection, pids: Sequence[str] | None, types: Iterable[str], since_us: int
    ) -> dict[str, list[Any]]:
        t = self.t["event"]
        types = sorted(set(types))
        out: dict[str, list[Any]] = defaultdict(list)
        if not types:
            return out
        base = (
            select(t.c.profile_id, t.c.occurred_us, t.c.event_type, t.c.session_id, t.c.screen, t.c.properties)
            .where(t.c.event_type.in_(types), t.c.occurred_us >= since_us)
            .order_by(t.c.occurred_us)
        )
        parts: Iterable[Sequence[str] | None] = chunks(list(pids)) if pids is not None else (None,)
        for part in parts:
            stmt = base if part is None else base.where(t.c.profile_id.in_(part))
            for row in conn.execute(stmt):
                out[row.profile_id].append(row)
        return out

    def scan_events(
        self, conn: Connection, start_us: int | None, end_us: int | None, types: Sequence[str] | None = None
    ) -> Iterator[Any]:
        """Retained events in [start, end) ordered by person then time (funnels, paths)."""
        t = self.t["event"]
        stmt = select(t.c.profile_id, t.c.occurred_us, t.c.event_type, t.c.session_id, t.c.screen, t.c.properties)
        if start_us is not None:
            stmt = stmt.where(t.c.occurred_us >= start_us)
        if end_us is not None:
            stmt = stmt.where(t.c.occurred_us < end_us)
        if types is not None:
            stmt = stmt.where(t.c.event_type.in_(sorted(set(types))))
        yield from conn.execute(stmt.order_by(t.c.profile_id, t.c.occurred_us))

    def purge_events(self, conn: Connection, before_us: int) -> int:
        t = self.t["event"]
        return conn.execute(delete(t).where(t.c.occurred_us < before_us)).rowcount or 0

    # -- tags ----------------------------------------------------------------------------------------
    def load_tags(self, conn: Connection, pids: Sequence[str] | None) -> dict[str, dict[str, Any]]:
        t = self.t["tag"]
        out: dict[str, dict[str, Any]] = defaultdict(dict)
        parts: Iterable[Sequence[str] | None] = chunks(list(pids)) if pids is not None else (None,)
        for part in parts:
            stmt = select(t) if part is None else select(t).where(t.c.profile_id.in_(part))
            for row in conn.execute(stmt):
                out[row.profile_id][row.name] = row
        return out

    def tag_rows(self, conn: Connection, pids: Sequence[str]) -> dict[str, dict[str, TagRow]]:
        """The tags of ``pids`` as evaluation reads them (``load_tags``' rows, lean: the JSON of the values
        decoded once per distinct text, which repeat across persons)."""
        t = self.t["tag"]
        stmt = self.tag_rows_statement()
        out: dict[str, dict[str, TagRow]] = {}
        decoded: dict[str, Any] = {}
        postgres = conn.dialect.name == "postgresql"
        for part in chunks(list(pids)):
            if postgres:  # through the primary key (see _days_by_key)
                result = conn.exec_driver_sql(
                    "SELECT g.profile_id, g.name, g.tag_value, g.source, g.writer_version, g.expires_us"
                    f" FROM unnest(%(ids)s::varchar[]) AS v(pid) JOIN {t.name} g ON g.profile_id = v.pid",
                    {"ids": list(part)},
                )
            else:
                result = conn.execute(stmt, {"ids": list(part)})
            for pid, name, text, source, version, expires in result.tuples():
                value = decoded.get(text)
                if value is None:
                    value = decoded[text] = json.loads(text)
                mine = out.get(pid)
                if mine is None:
                    mine = out[pid] = {}
                mine[name] = TagRow(value, source, version, expires)
        return out

    def tag_rows_statement(self) -> Any:
        t = self.t["tag"]
        return select(
            t.c.profile_id,
            t.c.name,
            type_coerce(t.c.tag_value, Text),
            t.c.source,
            t.c.writer_version,
            t.c.expires_us,
        ).where(t.c.profile_id.in_(bindparam("ids", expanding=True)))

    def upsert_tags(self, conn: Connection, rows: list[dict[str, Any]], value_text: bool = False) -> None:
        """``value_text``: each row's ``tag_value`` is its JSON text already (compact, as ``JsonText`` writes it)."""
        if not rows:
            return
        t = self.t["tag"]
        columns = tuple(rows[0])
        updates = ("tag_value", "source", "writer", "writer_version", "written_us", "expires_us", "trace_id")
        bulk(
            conn,
            ("upsert_tags", columns),
            lambda: upsert_statement(conn.dialect.name, t, columns, ("profile_id", "name"), updates),
            rows,
            encoded=("tag_value",) if value_text else (),
        )

    def delete_tags(self, conn: Connection, keys: list[tuple[str, str]]) -> None:
        if not keys:
            return
        t = self.t["tag"]
        stmt = delete(t).where(and_(t.c.profile_id == bindparam("p"), t.c.name == bindparam("n")))
        conn.execute(stmt, [{"p": p, "n": n} for p, n in keys])

    # -- memberships ---------------------------------------------------------------------------------
    def load_members(
        self, conn: Connection, pids: Sequence[str] | None, segment_ids: Sequence[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        """{profile: {segment: row}} (rows of members and of former members, whose ``seq`` continues)."""
        t = self.t["member"]
        out: dict[str, dict[str, Any]] = defaultdict(dict)
        base = select(t)
        if segment_ids is not None:
            base = base.where(t.c.segment_id.in_(list(segment_ids)))
        parts: Iterable[Sequence[str] | None] = chunks(list(pids)) if pids is not None else (None,)
        by_key = pids is not None and segment_ids is None and conn.dialect.name == "postgresql"
        columns = ", ".join(f"m.{c.name}" for c in t.c)
        for part in parts:
            if by_key:  # through the primary key's profile index (see _days_by_key)
                result = conn.exec_driver_sql(
                    f"SELECT {columns} FROM unnest(%(ids)s::varchar[]) AS v(pid) JOIN {t.name} m"
                    " ON m.profile_id = v.pid",
                    {"ids": list(part or ())},
                )
            else:
                result = conn.execute(base if part is None else base.where(t.c.profile_id.in_(part)))
            for row in result:
                out[row.profile_id][row.segment_id] = row
        return out

    def upsert_members(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        t = self.t["member"]
        columns = tuple(rows[0])
        updates = ("is_member", "seq", "entered_us", "changed_us")
        bulk(
            conn,
            ("upsert_members", columns),
            lambda: upsert_statement(conn.dialect.name, t, columns, ("segment_id", "profile_id"), updates),
            rows,
        )

    def add_outbox(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        if rows:
            t = self.t["outbox"]
            columns = tuple(rows[0])
            bulk(conn, ("add_outbox", columns), lambda: insert(t).values({c: bindparam(c) for c in columns}), rows)

    def unsent(self, conn: Connection, limit: int) -> list[Any]:
        t = self.t["outbox"]
        stmt = select(t.c.outbox_id, t.c.body).where(t.c.sent_us.is_(None)).order_by(t.c.outbox_id).limit(limit)
        return list(conn.execute(stmt))

    def mark_sent(self, conn: Connection, ids: list[int], at_us: int) -> None:
        t = self.t["outbox"]
        for part in chunks(ids):
            conn.execute(update(t).where(t.c.outbox_id.in_(part)).values(sent_us=at_us))

    # -- lifecycle and cursor ------------------------------------------------------------------------
    def add_transitions(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        if rows:
            conn.execute(insert(self.t["lifecycle"]), rows)

    def load_cursor(self, conn: Connection, name: str) -> str:
        t = self.t["consumer"]
        return conn.execute(select(t.c.log_cursor).where(t.c.name == name)).scalar_one_or_none() or ""

    def save_cursor(self, conn: Connection, name: str, cursor: str, events: int, at_us: int) -> None:
        t = self.t["consumer"]
        done = conn.execute(
            update(t).where(t.c.name == name).values(log_cursor=cursor, events=t.c.events + events, updated_us=at_us)
        ).rowcount
        if not done:
            conn.execute(insert(t).values(name=name, log_cursor=cursor, events=events, updated_us=at_us))

    # -- merges --------------------------------------------------------------------------------------
    def copies_held_by(self, winner: str, loser: str) -> Delete:
        """Deletes the events of ``loser`` that ``winner`` holds too: the same event, sent again after svc_collect's
        de-duplication window while the two were apart (e.g. after an unlink), is stored under both; moving the
        loser's copy would break the events' key."""
        events = self.t["event"]
        held = events.alias("held")
        same = (
            select(held.c.event_id)
            .where(
                held.c.profile_id == winner,
                held.c.occurred_us == events.c.occurred_us,
                held.c.event_id == events.c.event_id,
            )
            .exists()
        )
        return delete(events).where(events.c.profile_id == loser, same)

    def move_rows(self, conn: Connection, loser: str, winner: str) -> None:
        """Everything of ``loser`` that simply changes owner (ids, events, lifecycle history)."""
        conn.execute(self.copies_held_by(winner, loser))
        for name in ("identity", "event", "lifecycle"):
            t = self.t[name]
            conn.execute(update(t).where(t.c.profile_id == loser).values(profile_id=winner))
        days = self.load_days(conn, [loser], None, -(10**9)).get(loser, {})
        deltas = {(winner, e, d): v for e, by_day in days.items() for d, v in by_day.items()}
        t = self.t["day"]
        conn.execute(delete(t).where(t.c.profile_id == loser))
        self.add_days(conn, deltas)
