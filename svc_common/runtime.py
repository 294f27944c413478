"""What every service does the same way at start: open its database, migrate, record the instance.

A service's ``server.py`` builds its store and servicers on top of a :class:`ServiceRuntime` and
returns a :class:`~svc_common.server.ServiceSpec`; the four services differ only in that domain part.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from grpc import aio

from svc_common import __version__
from svc_common.config import ServiceSettings
from svc_common.db import Database, StoreSchema
from svc_common.errors import StartupError
from svc_common.ops._instances import InstanceRegistry
from svc_common.ops._key_check import check_keyring_in_database
from svc_common.protection import KeyProvider, key_provider_from_settings
from svc_common.protection._keys import check_keyring_against_record, key_check_path
from svc_common.server import DEFAULT_PROBE_INTERVAL_MILLIS, DependencyProbe, ServiceSpec

log = logging.getLogger("qiming.runtime")


def _refuse_a_schema_behind(schema: StoreSchema, database: Database) -> None:
    """Without migrations at start, a schema behind this release would fail calls with INTERNAL (a missing table)
    while health says SERVING. Exit 3 instead: systemd starts it again, and it serves once ``qiming migrate`` has
    run (the rolling upgrade of docs/database.md)."""
    behind = schema.migrations.pending(database.engine)
    if behind is None:
        return
    current, head = behind
    state = f"is at {current}" if current else "has never been migrated"
    raise StartupError(
        f"the database schema of {schema.service} {state}; this release needs {head}: run `qiming migrate "
        f"{schema.service}` (migrate_on_start is off)"
    )


class ServiceRuntime:
    """The database side of one running service."""

    def __init__(
        self, schema: StoreSchema, settings: ServiceSettings, database: Database, keys: KeyProvider | None = None
    ) -> None:
        self.schema = schema
        self.settings = settings
        self.database = database
        self.keys = keys if keys is not None else key_provider_from_settings(settings)
        self.instances = InstanceRegistry(database, schema.instance_table, schema.service, __version__)
        self.grpc_services: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.schema.service

    @classmethod
    def open(cls, schema: StoreSchema, settings: ServiceSettings) -> ServiceRuntime:
        """Connect (with retry), load the keyring and, unless disabled, apply pending migrations."""
        database = Database.from_settings(settings)
        try:
            # At start: a bad keyring must stop the process, not fail a later call; so must one whose keys are not
            # those this service used before (a key id recorded with other bytes, another pseudonym key).
            keys = key_provider_from_settings(settings)
            check_keyring_against_record(key_check_path(settings), keys.keyring(), schema.service)
        except BaseException:
            database.dispose()
            raise
        try:
            if settings.migrate_on_start:
                schema.migrations.upgrade(database.engine)
            else:
                _refuse_a_schema_behind(schema, database)
            if schema.key_check_table is not None:  # another host's keyring on the same database
                check_keyring_in_database(database, schema.key_check_table, keys.keyring(), schema.service)
        except BaseException:
            database.dispose()
            raise
        return cls(schema, settings, database, keys)

    def database_probe(self, interval_millis: int = DEFAULT_PROBE_INTERVAL_MILLIS) -> DependencyProbe:
        """A probe of the service database (``SELECT 1`` on a pooled connection) for ``ServiceSpec.dependency_probes``:
        health is NOT_SERVING while the database does not answer."""
        return DependencyProbe("database", lambda: asyncio.to_thread(self._ping_database), interval_millis)

    def _ping_database(self) -> None:
        # The engine, not Database.connection(): that one logs each failure, and the probe logs the outage once.
        with self.database.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def schema_revision(self) -> str:
        with self.database.engine.connect() as conn:
            return self.schema.migrations.current(conn) or ""

    def spec(
        self,
        grpc_services: Sequence[str],
        register: Callable[[aio.Server], None],
        on_start: Sequence[Callable[[], Awaitable[None]]] = (),
        on_stop: Sequence[Callable[[], Awaitable[None]]] = (),
        self_checked_methods: Sequence[str] = (),
        self_checked_messages: Sequence[str] = (),
        dependency_probes: Sequence[DependencyProbe] = (),
    ) -> ServiceSpec:
        """The service's spec; its own ``on_start`` hooks run after the start is recorded, its ``on_stop``
        hooks before the stop is recorded and the database closed. ``self_checked_methods``,
        ``self_checked_messages`` and ``dependency_probes`` (e.g. :meth:`database_probe`): see ServiceSpec."""
        self.grpc_services = tuple(grpc_services)

        async def start() -> None:
            await asyncio.to_thread(self.instances.record_start)
            for hook in on_start:
                await hook()

        async def stop() -> None:
            try:
                for hook in on_stop:
                    await hook()
                await asyncio.to_thread(self.instances.record_stop)
            finally:
                self.database.dispose()

        return ServiceSpec(
            name=self.name,
            grpc_services=tuple(grpc_services),
            register=register,
            on_start=[start],
            on_stop=[stop],
            self_checked_methods=tuple(self_checked_methods),
            self_checked_messages=tuple(self_checked_messages),
            dependency_probes=list(dependency_probes),
        )
