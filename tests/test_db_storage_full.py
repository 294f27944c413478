"""Session 14 (a failure drill: a SQLite data directory on a full disk): a full disk is RESOURCE_EXHAUSTED
``STORAGE_FULL`` and an ERROR in the server log, not the UNAVAILABLE "retry with backoff" of a database that
restarts, so that callers and alerts on the reason tell the two apart; the service recovers once there is space."""

from __future__ import annotations

import logging

import pytest

from svc_collect.config import CollectSettings
from svc_common.db import Database
from svc_common.errors import ResourceExhausted


def test_a_full_disk_is_resource_exhausted_storage_full_and_recovers(tmp_path, caplog) -> None:
    database = Database.from_settings(CollectSettings(database_url=f"sqlite:///{tmp_path / 'full.db'}"))
    try:
        with database.connection(write=True) as conn:
            conn.exec_driver_sql("CREATE TABLE blobs (b BLOB)")
        with database.connection() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        logged = caplog.at_level(logging.ERROR, logger="svc_common.db._engine")
        with logged, pytest.raises(ResourceExhausted) as raised, database.connection(write=True) as conn:
            # SQLite's own limit for this connection: the next pages cannot be had (SQLITE_FULL), as on a full disk.
            conn.exec_driver_sql(f"PRAGMA max_page_count = {pages + 2}")
            conn.exec_driver_sql("INSERT INTO blobs VALUES (zeroblob(1000000))")
        assert raised.value.reason == "STORAGE_FULL"
        assert raised.value.message.startswith("the service's database storage is full; the operators must free space")
        assert [r.getMessage() for r in caplog.records][-1].startswith(
            "database storage full: database or disk is full"
        )
        with database.connection(write=True) as conn:  # space again (no limit): it works without a restart
            conn.exec_driver_sql("PRAGMA max_page_count = 1073741823")
            conn.exec_driver_sql("INSERT INTO blobs VALUES (zeroblob(1000000))")
        with database.connection() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM blobs").scalar() == 1
    finally:
        database.dispose()
