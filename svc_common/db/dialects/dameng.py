"""Alembic support for Dameng DM8 (dmSQLAlchemy ships the SQLAlchemy dialect, not the Alembic impl)."""

from __future__ import annotations

from alembic.ddl.impl import DefaultImpl


class DamengImpl(DefaultImpl):
    __dialect__ = "dm"
    # DM8 commits DDL implicitly, like Oracle: each migration step stands on its own.
    transactional_ddl = False
