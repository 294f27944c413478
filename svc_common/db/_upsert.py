"""The one seam for SQL that differs by database: insert-or-update by key.

- SQLite and PostgreSQL: ``INSERT … ON CONFLICT (key) DO UPDATE`` / ``DO NOTHING``.
- openGauss: the same statement object; its dialect compiles it to ``ON DUPLICATE KEY UPDATE``.
- Dameng: ``MERGE INTO … USING (SELECT … FROM DUAL) … WHEN MATCHED … WHEN NOT MATCHED …``.

The statement takes bind parameters named after the columns, so one call runs it for many rows
(``executemany``).

``add`` columns are additive: on a clash the stored value and the new one are summed
(``SET n = t.n + excluded.n``; Dameng ``SET t.n = t.n + s.n``), so counters are folded in one statement
without reading them first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ClauseElement, Executable


class MergeInto(Executable, ClauseElement):
    """Dameng's upsert. Only compiled for the ``dm`` dialect."""

    inherit_cache = False

    def __init__(
        self,
        table: Table,
        columns: Sequence[str],
        keys: Sequence[str],
        updates: Sequence[str],
        add: Sequence[str] = (),
    ):
        self.table = table
        self.columns = list(columns)
        self.keys = list(keys)
        self.updates = list(updates)
        self.add = list(add)


@compiles(MergeInto, "dm")
def _compile_merge_dm(element: MergeInto, compiler: Any, **kw: Any) -> str:
    quote = compiler.preparer.quote
    table = compiler.preparer.format_table(element.table)
    source = ", ".join(
        f"{compiler.process(bindparam(c, type_=element.table.c[c].type), **kw)} AS {quote(c)}" for c in element.columns
    )
    on = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in element.keys)
    sql = f"MERGE INTO {table} t USING (SELECT {source} FROM DUAL) s ON ({on})"
    if element.updates or element.add:
        sets = ", ".join(
            [f"t.{quote(c)} = s.{quote(c)}" for c in element.updates]
            + [f"t.{quote(c)} = t.{quote(c)} + s.{quote(c)}" for c in element.add]
        )
        sql += f" WHEN MATCHED THEN UPDATE SET {sets}"
    cols = ", ".join(quote(c) for c in element.columns)
    vals = ", ".join(f"s.{quote(c)}" for c in element.columns)
    return sql + f" WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({vals})"


def upsert_statement(
    dialect_name: str,
    table: Table,
    columns: Sequence[str],
    keys: Sequence[str],
    updates: Sequence[str] = (),
    add: Sequence[str] = (),
) -> Executable:
    """Insert rows of ``columns``; on a clash of the unique ``keys``, set ``updates`` and add ``add`` to the
    stored values (neither: keep the old row)."""
    unknown = [c for c in [*columns, *keys, *updates, *add] if c not in table.c]
    if unknown:
        raise ValueError(f"{table.name} has no column(s) {unknown}")
    missing = [c for c in add if c not in columns]
    if missing or set(add) & set(updates):
        raise ValueError(f"additive column(s) {sorted(add)} must be inserted and not also in updates")
    if dialect_name == "dm":
        return MergeInto(table, columns, keys, updates, add)
    module = sqlite if dialect_name == "sqlite" else postgresql  # openGauss compiles the PG statement.
    stmt = module.insert(table).values({c: bindparam(c) for c in columns})
    if updates or add:
        sets: dict[str, Any] = {c: stmt.excluded[c] for c in updates}
        sets.update({c: table.c[c] + stmt.excluded[c] for c in add})
        return stmt.on_conflict_do_update(index_elements=list(keys), set_=sets)
    return stmt.on_conflict_do_nothing(index_elements=list(keys))


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    updates: Sequence[str] = (),
    add: Sequence[str] = (),
) -> None:
    """Run :func:`upsert_statement` for ``rows`` (all with the same columns) on ``conn``."""
    if not rows:
        return
    columns = list(rows[0])
    stmt = upsert_statement(conn.dialect.name, table, columns, keys, updates, add)
    conn.execute(stmt, list(rows))
