"""svc_collect's storage: tables (one SQLAlchemy schema for every database), the embedded event log,
schemas, quarantine and statistics, and their migrations."""

from pathlib import Path

from sqlalchemy import MetaData

from svc_collect.store._catalog import QuarantineRecord, SchemaRecord, SqlCatalog, StatRow
from svc_collect.store._log import (
    Appended,
    LogHead,
    LogPage,
    LogRow,
    QuarantineRow,
    SqlEventLog,
    StoredEvent,
    WriteBatch,
    stored_row_bytes,
)
from svc_collect.store._tables import define_tables
from svc_common.db import StoreSchema
from svc_common.ops import instance_table, key_check_table

metadata = MetaData()
instances = instance_table(metadata, "collect")
key_checks = key_check_table(metadata, "collect")
tables = define_tables(metadata)

SCHEMA = StoreSchema(
    service="collect",
    metadata=metadata,
    instance_table=instances,
    migrations_dir=Path(__file__).parent / "migrations",
    key_check_table=key_checks,
)

__all__ = [
    "SCHEMA",
    "Appended",
    "LogHead",
    "LogPage",
    "LogRow",
    "QuarantineRecord",
    "QuarantineRow",
    "SchemaRecord",
    "SqlCatalog",
    "SqlEventLog",
    "StatRow",
    "StoredEvent",
    "WriteBatch",
    "metadata",
    "stored_row_bytes",
    "tables",
]
