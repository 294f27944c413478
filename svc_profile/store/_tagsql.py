"""The statements of ``profile_tag``, and level-3 tag values sealed at rest (part of ``ProfileStore``).

A tag whose definition carries sensitivity level 3 or 4 (JR/T 0158) keeps its value SM4-GCM sealed in
``sealed_value``, bound to the person and the tag name (a sealed value copied onto another row does not open);
``tag_value`` then holds only the marker ``["sealed"]``. Every read here opens such rows, so evaluation and
authorised reads see the value; a row is read the same way whether it is sealed or not (rows written before
profile_0005, or while the definition was below level 3, are sealed by ``seal_plaintext``: docs/profile.md).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from types import SimpleNamespace
from typing import Any, NamedTuple

from sqlalchemy import Text, and_, bindparam, delete, select, type_coerce, update
from sqlalchemy.engine import Connection

from svc_common.db import upsert_statement
from svc_common.protection import Sealer
from svc_profile.store._bulk import bulk, chunks, reader
from svc_profile.store._raw import rows_by_person

SEALED = ["sealed"]
"""``tag_value`` of a sealed row (the value is in ``sealed_value``)."""
SEALED_TEXT = '["sealed"]'
TAG_ROW_COLUMNS = ("profile_id", "name", "tag_value", "source", "writer_version", "expires_us", "sealed_value")
"""What ``tag_rows`` reads of each tag (the value as its JSON text)."""
TAG_UPDATES = (
    "tag_value",
    "sealed_value",
    "source",
    "writer",
    "writer_version",
    "written_us",
    "expires_us",
    "trace_id",
)


TAG_WRITE_COLUMNS = ("profile_id", "name", *TAG_UPDATES)
"""The columns of a tag write as a tuple (``upsert_tags(…, columns=…)``), in this order."""


class TagRow(NamedTuple):
    """A stored tag as evaluation reads it (``tag_value`` decoded JSON, shared between equal values: read-only)."""

    tag_value: Any
    source: str
    writer_version: str
    expires_us: int | None


def value_json(encoded: Any) -> str:
    """An encoded tag value as the JSON text the ``tag_value`` column stores (what ``JsonText`` writes)."""
    return json.dumps(encoded, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


class TagSealer:
    """SM4-GCM sealing of one tag value, bound to (profile, tag name)."""

    def __init__(self, sealer: Sealer) -> None:
        self.sealer = sealer

    @staticmethod
    def context(pid: str, name: str) -> bytes:
        return f"profile_tag/{pid}/{name}".encode()

    def seal(self, pid: str, name: str, text: str) -> bytes:
        """``text``: the value's JSON text (as ``tag_value`` would hold it in clear)."""
        return self.sealer.seal(text.encode(), self.context(pid, name))

    def open(self, pid: str, name: str, sealed: bytes) -> Any:
        return json.loads(self.sealer.open(bytes(sealed), self.context(pid, name)))


class TagStatements:
    """The ``profile_tag`` half of ``ProfileStore`` (its attributes: ``t``, ``tag_sealer``)."""

    t: dict[str, Any]
    tag_sealer: TagSealer | None

    def open_tag(self, pid: str, name: str, sealed: bytes) -> Any:
        """The encoded value of a sealed row."""
        if self.tag_sealer is None:
            raise RuntimeError(f"tag {name!r} of profile {pid} is sealed, and this store has no keyring to open it")
        return self.tag_sealer.open(pid, name, sealed)

    def load_tags(
        self, conn: Connection, pids: Sequence[str] | None, names: Sequence[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        """{profile: {tag: row}} (of the tags ``names`` only, when given), sealed values opened (``tag_value`` the
        encoded value in either case)."""
        conn = reader(conn, self.t["tag"].name)
        t = self.t["tag"]
        out: dict[str, dict[str, Any]] = defaultdict(dict)
        parts: Iterable[Sequence[str] | None] = chunks(list(pids)) if pids is not None else (None,)
        for part in parts:
            stmt = select(t) if part is None else select(t).where(t.c.profile_id.in_(part))
            if names is not None:
                stmt = stmt.where(t.c.name.in_(list(names)))
            for row in conn.execute(stmt):
                if row.sealed_value is not None:
                    opened = self.open_tag(row.profile_id, row.name, row.sealed_value)
                    row = SimpleNamespace(**{**row._mapping, "tag_value": opened})
                out[row.profile_id][row.name] = row
        return out

    def tag_rows(self, conn: Connection, pids: Sequence[str]) -> dict[str, dict[str, TagRow]]:
        """The tags of ``pids`` as evaluation reads them (``load_tags``' rows, lean: the JSON of the values
        decoded once per distinct text, which repeat across persons; sealed values opened)."""
        conn = reader(conn, self.t["tag"].name)
        t = self.t["tag"]
        stmt = self.tag_rows_statement()
        out: dict[str, dict[str, TagRow]] = {}
        decoded: dict[str, Any] = {}
        postgres = conn.dialect.name == "postgresql"
        if conn.dialect.name == "sqlite":  # the driver's tuples, one chunk of ids after the other
            head = f"SELECT {', '.join(TAG_ROW_COLUMNS)} FROM {t.name} WHERE"
            parts: Iterable[Any] = [rows_by_person(conn, head, (), list(pids))]
        else:
            parts = chunks(list(pids))
        for part in parts:
            if postgres:  # through the primary key (see ProfileStore._days_by_key)
                result = conn.exec_driver_sql(
                    "SELECT g.profile_id, g.name, g.tag_value, g.source, g.writer_version, g.expires_us, g.sealed_value"
                    f" FROM unnest(%(ids)s::varchar[]) AS v(pid) JOIN {t.name} g ON g.profile_id = v.pid",
                    {"ids": list(part)},
                ).tuples()
            elif conn.dialect.name == "sqlite":
                result = part
            else:
                result = conn.execute(stmt, {"ids": list(part)}).tuples()
            for pid, name, text, source, version, expires, sealed in result:
                if sealed is not None:
                    value = self.open_tag(pid, name, sealed)
                else:
                    value = decoded.get(text)
                    if value is None:
                        value = decoded[text] = json.loads(text)
                mine = out.get(pid)
                if mine is None:
                    mine = out[pid] = {}
                mine[name] = TagRow(value, source, version, expires)
        return out

    def tag_rows_statement(self) -> Any:  # the columns of TAG_ROW_COLUMNS
        t = self.t["tag"]
        return select(
            t.c.profile_id,
            t.c.name,
            type_coerce(t.c.tag_value, Text),
            t.c.source,
            t.c.writer_version,
            t.c.expires_us,
            t.c.sealed_value,
        ).where(t.c.profile_id.in_(bindparam("ids", expanding=True)))

    def upsert_tags(
        self,
        conn: Connection,
        rows: Sequence[Any],
        value_text: bool = False,
        sensitive: frozenset[str] | set[str] = frozenset(),
        columns: tuple[str, ...] | None = None,
    ) -> None:
        """``value_text``: each row's ``tag_value`` is its JSON text already (compact, as ``JsonText`` writes it).
        Rows of a tag in ``sensitive`` are sealed here; a row without ``sealed_value`` is written in clear (and
        replaces a sealed value stored before). Rows are dicts, or with ``columns`` tuples of those columns in that
        order (``sealed_value`` among them: the log consumer's writes, no dict a row)."""
        if not rows:
            return
        if columns is not None and (sensitive or "sealed_value" not in columns):
            rows, columns = [dict(zip(columns, r, strict=True)) for r in rows], None
        if columns is None and (sensitive or "sealed_value" not in rows[0]):
            rows = [self._at_rest(r, value_text, sensitive) for r in rows]
        t = self.t["tag"]
        names = columns if columns is not None else tuple(rows[0])
        # sealed_value is bytes or None, which sqlite3 and psycopg take as they are: no bind processor per row.
        raw = ("sealed_value",) if conn.dialect.name in ("sqlite", "postgresql") else ()
        bulk(
            conn,
            ("upsert_tags", names),
            lambda: upsert_statement(conn.dialect.name, t, names, ("profile_id", "name"), TAG_UPDATES),
            rows,
            columns,
            encoded=(*raw, "tag_value") if value_text else raw,
        )

    def _at_rest(self, row: dict[str, Any], value_text: bool, sensitive: frozenset[str] | set[str]) -> dict[str, Any]:
        if row["name"] not in sensitive:
            return {**row, "sealed_value": None} if "sealed_value" not in row else row
        if self.tag_sealer is None:
            raise RuntimeError(f"tag {row['name']!r} is level 3: this store has no keyring to seal it")
        value = row["tag_value"]
        text = value if value_text else value_json(value)
        sealed = self.tag_sealer.seal(row["profile_id"], row["name"], text)
        return {**row, "tag_value": SEALED_TEXT if value_text else SEALED, "sealed_value": sealed}

    def delete_tags(self, conn: Connection, keys: list[tuple[str, str]]) -> None:
        if not keys:
            return
        t = self.t["tag"]
        bulk(
            conn,
            ("delete_tags",),
            lambda: delete(t).where(and_(t.c.profile_id == bindparam("p"), t.c.name == bindparam("n"))),
            list(keys),
            ("p", "n"),
        )

    def expired_tags_statement(self, names: Sequence[str], after_us: int, until_us: int) -> Any:
        """(profile_id, name) of the values of ``names`` that expired in (after, until]: the time sweep's query, a
        range of ``ix_profile_tag_name_expiry`` per name."""
        t = self.t["tag"]
        return select(t.c.profile_id, t.c.name).where(
            t.c.name.in_(list(names)), t.c.expires_us > after_us, t.c.expires_us <= until_us
        )

    def seal_plaintext(self, conn: Connection, names: Sequence[str], limit: int) -> int:
        """Seal up to ``limit`` rows of the tags ``names`` still stored in clear; returns how many it sealed (fewer
        than ``limit``: none is left)."""
        if not names:
            return 0
        if self.tag_sealer is None:
            raise RuntimeError("this store has no keyring to seal level-3 tags")
        t = self.t["tag"]
        rows = conn.execute(
            select(t.c.profile_id, t.c.name, type_coerce(t.c.tag_value, Text))
            .where(t.c.name.in_(sorted(names)), t.c.sealed_value.is_(None))
            .limit(limit)
        ).all()
        if rows:
            stmt = (
                update(t)
                .where(t.c.profile_id == bindparam("pid"), t.c.name == bindparam("tag"))
                .values(tag_value=bindparam("v", type_=Text()), sealed_value=bindparam("s"))
            )
            seal = self.tag_sealer.seal
            conn.execute(stmt, [{"pid": p, "tag": n, "v": SEALED_TEXT, "s": seal(p, n, text)} for p, n, text in rows])
        return len(rows)


__all__ = ["SEALED", "SEALED_TEXT", "TagRow", "TagSealer", "TagStatements", "value_json"]
