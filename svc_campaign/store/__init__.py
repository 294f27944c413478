"""svc_campaign's storage: tables (one SQLAlchemy schema for every database), their migrations, and the stores
whose methods are every statement the domain modules run, by area: journeys (definitions, states, the log cursor),
reports, timers and trigger state, participants (visits, exits, the erased list), the outbox (writes, the
dispatcher, the contact history), the policy gate (consents, caps, gate locks), templates, experiments and
scheduled runs. A store method runs on a Core connection whose transaction the caller owns."""

from pathlib import Path

from sqlalchemy import MetaData

from svc_campaign.store._experiments import ExperimentStore
from svc_campaign.store._journeys import JourneyStore
from svc_campaign.store._messages import MessageStore
from svc_campaign.store._participants import ParticipantStore
from svc_campaign.store._policy import GateStore, PolicyStore
from svc_campaign.store._reports import ReportStore
from svc_campaign.store._scheduled import ScheduleStore
from svc_campaign.store._tables import define_tables
from svc_campaign.store._templates import TemplateStore
from svc_campaign.store._timers import TimerStore
from svc_common.db import StoreSchema
from svc_common.ops import instance_table, key_check_table

metadata = MetaData()
instances = instance_table(metadata, "campaign")
key_checks = key_check_table(metadata, "campaign")
tables = define_tables(metadata)

SCHEMA = StoreSchema(
    service="campaign",
    metadata=metadata,
    instance_table=instances,
    migrations_dir=Path(__file__).parent / "migrations",
    key_check_table=key_checks,
)

__all__ = [
    "SCHEMA",
    "ExperimentStore",
    "GateStore",
    "JourneyStore",
    "MessageStore",
    "ParticipantStore",
    "PolicyStore",
    "ReportStore",
    "ScheduleStore",
    "TemplateStore",
    "TimerStore",
    "metadata",
    "tables",
]
