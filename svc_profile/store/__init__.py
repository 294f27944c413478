"""svc_profile's storage: tables (one SQLAlchemy schema for every database) and their migrations."""

from pathlib import Path

from sqlalchemy import MetaData

from svc_common.db import StoreSchema
from svc_common.ops import instance_table, key_check_table
from svc_profile.store._tables import define_tables

metadata = MetaData()
instances = instance_table(metadata, "profile")
key_checks = key_check_table(metadata, "profile")
tables = define_tables(metadata)

SCHEMA = StoreSchema(
    service="profile",
    metadata=metadata,
    instance_table=instances,
    migrations_dir=Path(__file__).parent / "migrations",
    key_check_table=key_checks,
)

__all__ = ["SCHEMA", "metadata", "tables"]
