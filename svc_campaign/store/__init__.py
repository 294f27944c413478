"""svc_campaign's storage: tables (one SQLAlchemy schema for every database) and their migrations."""

from pathlib import Path

from sqlalchemy import MetaData

from svc_campaign.store._tables import define_tables
from svc_common.db import StoreSchema
from svc_common.ops import instance_table

metadata = MetaData()
instances = instance_table(metadata, "campaign")
tables = define_tables(metadata)

SCHEMA = StoreSchema(
    service="campaign",
    metadata=metadata,
    instance_table=instances,
    migrations_dir=Path(__file__).parent / "migrations",
)

__all__ = ["SCHEMA", "metadata", "tables"]
