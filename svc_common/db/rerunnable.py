"""Checks for migrations that must be able to run again: Dameng commits each DDL statement, so a run that failed part
way leaves some steps done while ``alembic_version`` still names the revision before. Each step asks first.

Online only: offline SQL (``alembic upgrade --sql``, a review of the DDL) has no database to ask, so every check says
"not there" and the SQL holds every step. A fresh inspector per question: an inspector caches what it read.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def _inspector() -> sa.Inspector | None:
    return None if op.get_context().as_sql else sa.inspect(op.get_bind())


def has_table(table: str) -> bool:
    inspector = _inspector()
    return inspector is not None and inspector.has_table(table)


def has_column(table: str, column: str) -> bool:
    inspector = _inspector()
    return inspector is not None and column in {c["name"].lower() for c in inspector.get_columns(table)}


def has_index(table: str, index: str) -> bool:
    inspector = _inspector()
    return (
        inspector is not None
        and inspector.has_table(table)
        and index in {str(i["name"]).lower() for i in inspector.get_indexes(table)}
    )


def create_index_once(index: str, table: str, columns: list[str]) -> None:
    if not has_index(table, index):
        op.create_index(index, table, columns)
