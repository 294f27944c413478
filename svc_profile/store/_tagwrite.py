"""Bulk writes of tag values (model scores, imports): a group of writes resolves its ids and upserts its values
in one statement.

``executemany`` pays the driver's per-row work (binding nine parameters, a statement step), SQLAlchemy's
parameter processing and, before it, one id lookup per 500 writes whose million result rows are built in
Python; a million model scores then cost more in Python than in the database. Here the varying columns go as
one JSON array (SQLite, read with ``json_each``) or one binary array per column (PostgreSQL, ``unnest``),
joined with the identities inside the ``INSERT … SELECT``; the columns every write of a group shares
(provenance, time, trace) are single parameters. Other databases (Dameng, openGauss) keep the store's portable
statements (``lookup_ids`` then ``upsert_tags``). Writes of level-3 tags take that portable path on every database:
their values are sealed bound to the person, who is known only after the id lookup.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from svc_profile.store._sql import ProfileStore
from svc_profile.store._tagsql import TAG_UPDATES

_SET = ", ".join(f"{c} = excluded.{c}" for c in TAG_UPDATES)  # sealed_value too: a clear write replaces a sealed value
_COLUMNS = "profile_id, name, tag_value, sealed_value, source, writer, writer_version, written_us, expires_us, trace_id"

# SQLite: each write is the JSON array [id type, id value, tag name, value JSON text, expiry or null, position].
_J = "json_extract(j.value, '$[{}]')".format
_SQLITE_JOIN = (  # CROSS JOIN keeps the writes outermost: one primary-key probe per write, never a scan
    f"FROM json_each(?) AS j CROSS JOIN {{identity}} AS i ON i.id_value = {_J(1)} AND i.id_type = {_J(0)}"
)
_SQLITE_UPSERT = (
    f"INSERT INTO {{tag}} ({_COLUMNS}) SELECT i.profile_id, {_J(2)}, {_J(3)}, NULL, ?, ?, ?, ?, {_J(4)}, ? "
    # By person, then in write order: inserts walk the (profile_id, name) key in order, and of two writes
    # of one person's tag the later is applied last (wins), as in a sequence of single upserts.
    f"{_SQLITE_JOIN} WHERE true ORDER BY i.profile_id, {_J(5)} "  # WHERE true: SQLite's upsert parse
    f"ON CONFLICT (profile_id, name) DO UPDATE SET {_SET}"
)
_SQLITE_PERSONS = f"SELECT DISTINCT i.profile_id {_SQLITE_JOIN}"
_SQLITE_MISSING = (
    "SELECT j.key FROM json_each(?) AS j WHERE NOT EXISTS "
    f"(SELECT 1 FROM {{identity}} AS i WHERE i.id_value = {_J(1)} AND i.id_type = {_J(0)})"
)

# PostgreSQL: one binary array per column; k is the write's position (1-based).
_PG_WRITES = (
    "unnest(%(ty)b::int4[], %(id)b::text[], %(n)b::text[], %(t)b::text[], %(e)b::int8[]) "
    "WITH ORDINALITY AS v(ty, id, n, t, e, k)"
)
_PG_JOIN = f"FROM {_PG_WRITES} JOIN {{identity}} AS i ON i.id_value = v.id AND i.id_type = v.ty"
_PG_UPSERT = (
    # One row per person and tag, the last write of it (ON CONFLICT may not meet a key twice in one statement).
    f"INSERT INTO {{tag}} ({_COLUMNS}) SELECT DISTINCT ON (i.profile_id, v.n) i.profile_id, v.n, v.t, NULL, "
    f"%(source)s, %(writer)s, %(version)s, %(at)s, v.e, %(trace)s {_PG_JOIN} "
    f"ORDER BY i.profile_id, v.n, v.k DESC ON CONFLICT (profile_id, name) DO UPDATE SET {_SET}"
)
_PG_PERSONS = f"SELECT DISTINCT i.profile_id {_PG_JOIN}"
_PG_MISSING = (
    f"SELECT v.k - 1 FROM {_PG_WRITES} WHERE NOT EXISTS "
    "(SELECT 1 FROM {identity} AS i WHERE i.id_value = v.id AND i.id_type = v.ty)"
)


@dataclass(frozen=True)
class Provenance:
    """The columns every write of a group shares."""

    source: str
    writer: str
    writer_version: str
    written_us: int
    trace_id: str


def write_values(
    store: ProfileStore,
    conn: Connection,
    writes: Sequence[tuple[int, str, str, str, int | None]],
    provenance: Provenance,
    *,
    persons: bool = False,
    sensitive: frozenset[str] | set[str] = frozenset(),
) -> tuple[list[int], list[str]]:
    """Upsert each write (id type, stored id value, tag name, value as the column's JSON text, expiry or None)
    on the person holding that id. Returns the positions of the writes whose id no person holds (not written)
    and, with ``persons``, the persons written (sorted). Values of the tags in ``sensitive`` are sealed."""
    if not writes:
        return [], []
    sealed = [k for k, w in enumerate(writes) if w[2] in sensitive] if sensitive else []
    if sealed:  # all the writes of one tag go one way: of two writes of one value the later still wins
        clear = [k for k, w in enumerate(writes) if w[2] not in sensitive]
        missing, pids = _portable(store, conn, [writes[k] for k in sealed], provenance, sensitive)
        more, others = write_values(store, conn, [writes[k] for k in clear], provenance, persons=persons)
        positions = sorted([sealed[k] for k in missing] + [clear[k] for k in more])
        return positions, sorted(set(pids) | set(others)) if persons else []
    dialect = conn.dialect.name
    tables = {"identity": store.t["identity"].name, "tag": store.t["tag"].name}
    shared = (provenance.source, provenance.writer, provenance.writer_version, provenance.written_us)
    if dialect == "sqlite":
        # Sorted by id: the identity probes read neighbouring index pages. Each write keeps its position: two ids
        # of one person may name the same tag, and the later write must still be applied last.
        order = sorted(range(len(writes)), key=lambda k: writes[k][:2])
        array = json.dumps([(*writes[k], k) for k in order], ensure_ascii=False)
        pids = _column(conn, _SQLITE_PERSONS.format(**tables), (array,)) if persons else []
        done = conn.exec_driver_sql(_SQLITE_UPSERT.format(**tables), (*shared, provenance.trace_id, array)).rowcount
        missing = (
            sorted(order[k] for k in _column(conn, _SQLITE_MISSING.format(**tables), (array,)))
            if done != len(writes)
            else []
        )
        return missing, sorted(pids)
    if dialect == "postgresql":
        arrays = {name: [w[i] for w in writes] for i, name in enumerate(("ty", "id", "n", "t", "e"))}
        pids = _column(conn, _PG_PERSONS.format(**tables), arrays) if persons else []
        done = conn.exec_driver_sql(
            _PG_UPSERT.format(**tables),
            {
                **arrays,
                "source": provenance.source,
                "writer": provenance.writer,
                "version": provenance.writer_version,
                "at": provenance.written_us,
                "trace": provenance.trace_id,
            },
        ).rowcount
        # rowcount counts a person's tag once however many writes named it: look for missing ids only then.
        missing = sorted(_column(conn, _PG_MISSING.format(**tables), arrays)) if done != len(writes) else []
        return missing, sorted(pids)
    return _portable(store, conn, writes, provenance)


def _portable(
    store: ProfileStore,
    conn: Connection,
    writes: Sequence[tuple[int, str, str, str, int | None]],
    provenance: Provenance,
    sensitive: frozenset[str] | set[str] = frozenset(),
) -> tuple[list[int], list[str]]:
    owners = store.lookup_ids(conn, {(w[0], w[1]) for w in writes})
    missing: list[int] = []
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for k, (id_type, value, name, text, expires) in enumerate(writes):
        pid = owners.get((id_type, value))
        if pid is None:
            missing.append(k)
            continue
        rows[(pid, name)] = {  # the later write of one person's tag wins
            "profile_id": pid,
            "name": name,
            "tag_value": json.loads(text),  # the column's own type encodes it again
            "source": provenance.source,
            "writer": provenance.writer,
            "writer_version": provenance.writer_version,
            "written_us": provenance.written_us,
            "expires_us": expires,
            "trace_id": provenance.trace_id,
        }
    store.upsert_tags(conn, [rows[key] for key in sorted(rows)], sensitive=sensitive)
    return missing, sorted({pid for pid, _ in rows})


def _column(conn: Connection, sql: str, params: Any) -> list[Any]:
    """The first column of a statement's rows, read from the driver's cursor (no SQLAlchemy row per result)."""
    result = conn.exec_driver_sql(sql, params)
    try:
        return [row[0] for row in result.cursor.fetchall()]
    finally:
        result.close()


def encode_value(item: list[Any]) -> str:
    """An encoded tag value (``model.encode``) as the JSON text the ``tag_value`` column stores."""
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
