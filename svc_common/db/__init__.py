"""Database kit: engine from URL, managed sessions, portable types, the upsert seam, migrations."""

from svc_common.db._copy import copy_span
from svc_common.db._driver import DriverQuery
from svc_common.db._engine import (
    SUPPORTED_DRIVERS,
    Database,
    create_engine_from_settings,
    dialect_name,
    normalize_database_url,
    validate_database_url,
    wait_for_database,
)
from svc_common.db._migrations import Migrations, StoreSchema, run_migrations_env
from svc_common.db._types import JsonText, UtcDateTime, storable_text
from svc_common.db._upsert import MergeInto, upsert, upsert_statement
from svc_common.db.dialects._register import register_dialects

register_dialects()

__all__ = [
    "SUPPORTED_DRIVERS",
    "Database",
    "DriverQuery",
    "JsonText",
    "MergeInto",
    "Migrations",
    "StoreSchema",
    "UtcDateTime",
    "copy_span",
    "create_engine_from_settings",
    "dialect_name",
    "normalize_database_url",
    "register_dialects",
    "run_migrations_env",
    "storable_text",
    "upsert",
    "upsert_statement",
    "validate_database_url",
    "wait_for_database",
]
