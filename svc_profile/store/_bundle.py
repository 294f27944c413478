"""One person's whole profile in one statement: the id lookup and the person, identity, tag, membership and
day-bucket rows, as one ``UNION ALL`` compiled once per dialect and run without SQLAlchemy's per-call
compilation (``GetProfile`` by any id is one round trip; docs/profile.md, "Profiles")."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

BUNDLE_DIALECTS = frozenset({"sqlite", "postgresql"})
"""Where the one-statement read is used (tested); other databases read a profile with one query per table."""
_STRINGS, _NUMBERS = 6, 4
_ONE, _ZERO = sa.literal_column("1"), sa.literal_column("0")
_CACHE: dict[tuple[str, str], tuple[str, list[str] | None]] = {}


@dataclass
class Bundle:
    profile_id: str
    row: Any
    identities: list[Any] = field(default_factory=list)
    tags: dict[str, Any] = field(default_factory=dict)
    members: dict[str, Any] = field(default_factory=dict)
    days: dict[str, dict[int, list[int]]] = field(default_factory=dict)


def _branch(kind: str, where: Any, strings: list[Any], numbers: list[Any], blob: Any = None) -> Any:
    text, big = sa.Text(), sa.BigInteger()
    columns = [sa.literal_column(f"'{kind}'", sa.String()).label("kind")]
    columns += [sa.cast(v, text) if v is not None else sa.cast(sa.null(), text) for v in _pad(strings, _STRINGS)]
    columns += [sa.cast(v, big) if v is not None else sa.cast(sa.null(), big) for v in _pad(numbers, _NUMBERS)]
    columns.append(blob if blob is not None else sa.cast(sa.null(), sa.LargeBinary()))
    return sa.select(*columns).where(where)


def _pad(values: list[Any], size: int) -> list[Any]:
    return [*values, *([None] * (size - len(values)))]


def _statement(t: dict[str, Any]) -> Any:
    i = t["identity"]
    pid = (
        sa.select(i.c.profile_id)
        .where(i.c.id_value == sa.bindparam("id_value"), i.c.id_type == sa.bindparam("id_type"))
        .scalar_subquery()
    )
    p, tag, m, d = t["person"], t["tag"], t["member"], t["day"]
    raw = sa.type_coerce  # JSON documents come back as their text
    return sa.union_all(
        _branch(
            "p",
            p.c.profile_id == pid,
            [raw(p.c.attributes, sa.Text), raw(p.c.features, sa.Text), p.c.lifecycle_stage, p.c.profile_id],
            [p.c.created_us, p.c.updated_us, p.c.lifecycle_since_us],
            p.c.sealed_attributes,
        ),
        _branch(
            "i",
            i.c.profile_id == pid,
            [i.c.id_value, i.c.linked_by, i.c.source_ref],
            [i.c.id_type, i.c.linked_us],
        ),
        _branch(
            "t",
            tag.c.profile_id == pid,
            [
                tag.c.name,
                raw(tag.c.tag_value, sa.Text),
                tag.c.source,
                tag.c.writer,
                tag.c.writer_version,
                tag.c.trace_id,
            ],
            [tag.c.written_us, tag.c.expires_us],
            tag.c.sealed_value,
        ),
        _branch(
            "m",
            m.c.profile_id == pid,
            [m.c.segment_id],
            [
                sa.case((m.c.is_member.is_(True), sa.literal_column("1")), else_=sa.literal_column("0")),
                m.c.seq,
                m.c.entered_us,
                m.c.changed_us,
            ],
        ),
        _branch(
            "d",
            sa.and_(d.c.profile_id == pid, d.c.day >= sa.bindparam("first_day")),
            [d.c.event_type],
            [d.c.day, d.c.n, d.c.amount_fen],
        ),
    )


def load_bundle(
    conn: Connection, tables: dict[str, Any], key: tuple[int, str], first_day: int, open_tag: Any = None
) -> Bundle | None:
    """The profile holding ``key`` (id type, value) with its rows, or None when no profile holds it.
    ``open_tag(profile_id, name, sealed)``: the encoded value of a sealed (level 3) tag row."""
    dialect = conn.dialect
    cache_key = (dialect.name, dialect.paramstyle)
    entry = _CACHE.get(cache_key)
    if entry is None:
        compiled = _statement(tables).compile(dialect=dialect)
        positional = list(compiled.positiontup) if compiled.positional and compiled.positiontup else None
        entry = _CACHE[cache_key] = (compiled.string, positional)
    sql, positional = entry
    values = {"id_type": key[0], "id_value": key[1], "first_day": first_day}
    params: Any = tuple(values[n] for n in positional) if positional is not None else values
    bundle: Bundle | None = None
    rest = []
    for row in conn.exec_driver_sql(sql, params):
        if row[0] == "p":
            s1, s2, s3, s4 = row[1:5]
            n1, n2, n3 = row[7:10]
            sealed = bytes(row[11]) if row[11] is not None else None
            person = SimpleNamespace(
                profile_id=s4,
                attributes=json.loads(s1),
                features=json.loads(s2),
                lifecycle_stage=s3,
                created_us=n1,
                updated_us=n2,
                lifecycle_since_us=n3,
                sealed_attributes=sealed,
            )
            bundle = Bundle(s4, person)
        else:
            rest.append(row)
    if bundle is None:
        return None
    pid = bundle.profile_id
    for row in rest:
        kind, s, n = row[0], row[1:7], row[7:11]
        if kind == "i":
            bundle.identities.append(
                SimpleNamespace(
                    profile_id=pid, id_value=s[0], linked_by=s[1], source_ref=s[2], id_type=n[0], linked_us=n[1]
                )
            )
        elif kind == "t":
            sealed = row[11]
            if sealed is not None and open_tag is None:
                raise RuntimeError(f"tag {s[0]!r} of profile {pid} is sealed: load_bundle needs open_tag")
            bundle.tags[s[0]] = SimpleNamespace(
                profile_id=pid,
                name=s[0],
                tag_value=json.loads(s[1]) if sealed is None else open_tag(pid, s[0], bytes(sealed)),
                source=s[2],
                writer=s[3],
                writer_version=s[4],
                trace_id=s[5],
                written_us=n[0],
                expires_us=n[1],
            )
        elif kind == "m":
            bundle.members[s[0]] = SimpleNamespace(
                profile_id=pid, segment_id=s[0], is_member=bool(n[0]), seq=n[1], entered_us=n[2], changed_us=n[3]
            )
        else:
            bundle.days.setdefault(s[0], {})[n[0]] = [n[1], n[2]]
    bundle.identities.sort(key=lambda r: r.linked_us)
    return bundle


__all__ = ["BUNDLE_DIALECTS", "Bundle", "load_bundle"]
