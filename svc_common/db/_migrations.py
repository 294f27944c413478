"""Alembic migrations per service, driven from code (no alembic.ini to install or edit).

Each service keeps its scripts in ``<package>/store/migrations`` and its own version table
(``<service>_alembic_version``), so several services may share one database or schema.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, Table, text
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)


class Migrations:
    """The migration scripts of one service."""

    def __init__(self, service: str, script_location: Path) -> None:
        self.service = service
        self.script_location = script_location
        self.version_table = f"{service}_alembic_version"

    def _config(self, connection: Connection | None = None) -> Config:
        config = Config()
        config.set_main_option("script_location", str(self.script_location))
        config.attributes["version_table"] = self.version_table
        config.attributes["connection"] = connection
        return config

    def head(self) -> str:
        heads = ScriptDirectory.from_config(self._config()).get_heads()
        if len(heads) != 1:
            raise RuntimeError(f"{self.service}: migrations must have one head, found {heads}")
        return heads[0]

    def current(self, connection: Connection) -> str | None:
        context = MigrationContext.configure(connection, opts={"version_table": self.version_table})
        return context.get_current_revision()

    def pending(self, engine: Engine) -> tuple[str | None, str] | None:
        """``(current, head)`` when the database's schema is behind this release's (never migrated: current None);
        None when it is at the head or at a revision this release does not know (a newer release migrated it: an
        older process keeps working on the additive schema during a rolling upgrade)."""
        with engine.connect() as connection:
            current = self.current(connection)
        head = self.head()
        if current == head:
            return None
        if current is None:
            return None, head
        scripts = ScriptDirectory.from_config(self._config())
        known = {script.revision for script in scripts.walk_revisions()}
        return (current, head) if current in known else None

    def upgrade(self, engine: Engine, revision: str = "head") -> str:
        """Apply pending migrations (serialised across processes on PostgreSQL); return the revision."""
        with engine.connect() as connection, _migration_lock(connection, self.service):
            command.upgrade(self._config(connection), revision)
            connection.commit()
            current = self.current(connection)
        log.info("schema migrated", extra={"service": self.service, "revision": current})
        return current or ""


@dataclass(frozen=True)
class StoreSchema:
    """A service's tables and the migrations that create them."""

    service: str
    metadata: MetaData
    instance_table: Table
    migrations_dir: Path
    key_check_table: Table | None = None
    """``<service>_key_check``: the check values of the keys the service's data is protected with
    (``svc_common.ops.check_keyring_in_database``)."""

    @property
    def migrations(self) -> Migrations:
        return Migrations(self.service, self.migrations_dir)


@contextmanager
def _migration_lock(connection: Connection, service: str) -> Iterator[None]:
    # Several replicas starting at once must not run the same migration twice.
    if connection.dialect.name in ("postgresql", "opengauss"):
        digest = hashlib.sha256(f"qiming-migrations:{service}".encode()).digest()
        key = int.from_bytes(digest[:8], "big") & 0x7FFFFFFFFFFFFFFF
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            connection.commit()
    else:
        # SQLite serialises writers itself; Dameng has no advisory locks: run `qiming migrate` once per upgrade.
        yield


def run_migrations_env(target_metadata: MetaData) -> None:
    """Body of every service's ``migrations/env.py``: online migrations on the given connection."""
    from alembic import context

    config = context.config
    connection: Connection | None = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through svc_common.db.Migrations (qiming migrate)")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=config.attributes["version_table"],
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
