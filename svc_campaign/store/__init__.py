"""svc_campaign's storage: tables (one SQLAlchemy schema for every database), their migrations, and the stores
whose methods are the statements the domain modules run (by area: journeys, timers and trigger state, ...)."""

from pathlib import Path

from sqlalchemy import MetaData

from svc_campaign.store._journeys import JourneyStore
from svc_campaign.store._participants import ParticipantStore
from svc_campaign.store._tables import define_tables
from svc_campaign.store._templates import TemplateStore
from svc_campaign.store._timers import TimerStore
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

__all__ = ["SCHEMA", "JourneyStore", "ParticipantStore", "TemplateStore", "TimerStore", "metadata", "tables"]
