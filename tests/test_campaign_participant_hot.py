"""campaign_0006: no index of campaign_participant holds a column that a step of the walk changes, and on PostgreSQL
the table keeps room on its pages (fillfactor), so a participant's UPDATE is done in place ("HOT": no index entry
written). Checked on the running database (the updates of a wave of timers are HOT), on the catalogue, and offline
for every database the migration compiles for."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from campaign_helpers import add_template, campaign_service, campaign_settings, event, run_journey, wait_then_send
from test_ddl_snapshots import offline_migration_sql

from svc_campaign.store import SCHEMA, tables
from svc_campaign.store._participants import ParticipantStore
from svc_common.db import Database

VERSIONS = Path(__file__).parents[1] / "svc_campaign" / "store" / "migrations" / "versions"
MIGRATION = VERSIONS / "campaign_0006_participant_hot.py"
CUSTOMERS = [f"h{n:03d}" for n in range(60)]
# What a step of the walk may set on a stored participant (journey_walk.Walker.walk / on_timer, the exits).
STEP_COLUMNS = {"status", "current_node", "waiting_for", "next_action_at", "updated_at", "last_send_at", "exit_reason"}
STEP_COLUMNS |= {"entry_event", "converted_at"}


def test_no_index_of_the_participants_holds_a_column_a_step_changes() -> None:
    participant = tables["instance"]
    indexed = {c.name for index in participant.indexes for c in index.columns}
    assert indexed & STEP_COLUMNS == set()
    columns = {i.name: [c.name for c in i.columns] for i in participant.indexes}
    assert columns == {
        "ix_campaign_participant_user": ["user_id", "journey_id", "entered_at"],
        "ix_campaign_participant_journey": ["journey_id", "entered_at"],
    }


def test_a_customers_latest_participation_is_read_from_the_customers_index_on_sqlite(tmp_path) -> None:
    """SQLite without statistics: (journey_id, entered_at) orders the latest participation too, but reads every
    participant of the journey to find the customer's; (user_id, journey_id, entered_at) is one probe."""
    db = Database.from_settings(campaign_settings(tmp_path))
    try:
        SCHEMA.migrations.upgrade(db.engine)
        store = ParticipantStore(tables)
        with db.engine.connect() as conn:
            sql = str(store._previous.compile(dialect=conn.dialect))
            plan = " ".join(r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", ("c1", "j1", 1, 0)))
        assert "USING INDEX ix_campaign_participant_user (user_id=? AND journey_id=?)" in plan, plan
        assert "TEMP B-TREE" not in plan, plan
    finally:
        db.dispose()


def _stats(url: str, schema: str) -> tuple[int, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return tuple(
                conn.execute(
                    sa.text(
                        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
                        "WHERE relname = 'campaign_participant' AND schemaname = :schema"
                    ),
                    {"schema": schema},
                ).one()
            )
    finally:
        engine.dispose()


def test_a_wave_of_timers_updates_its_participants_in_place_on_postgresql(tmp_path, database_url_postgresql) -> None:
    with campaign_service(tmp_path, database_url_postgresql) as service:
        add_template(service, "t1")
        run_journey(service, wait_then_send(3600, "t1"), "j1")
        service.engine.handle([event("signup", c) for c in CUSTOMERS])
        service.clock.advance(hours=1)
        with service.db.connection() as conn:
            schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
            options = conn.execute(
                sa.text(
                    "SELECT c.reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relname = 'campaign_participant' AND n.nspname = current_schema()"
                )
            ).scalar_one()
        assert options == ["fillfactor=50"]
        assert service.engine.fire_due_timers().timers_fired == len(CUSTOMERS)
        assert service.engine.pending_timers() == 0
    # The service's connections are closed: their backends have reported their counts (PostgreSQL does so on exit).
    deadline = time.monotonic() + 10
    updated, hot = _stats(database_url_postgresql, schema)
    while updated < len(CUSTOMERS) and time.monotonic() < deadline:
        time.sleep(0.2)
        updated, hot = _stats(database_url_postgresql, schema)
    assert updated >= len(CUSTOMERS)
    # One transaction for the wave, which updates every row of its pages: half of each page is kept for their next
    # versions. With current_node or status indexed, none of the updates is HOT.
    assert hot >= len(CUSTOMERS) * 3 // 4, (updated, hot)


@pytest.mark.parametrize("dialect_name", ["opengauss", "dm", "postgresql", "sqlite"])
def test_the_migration_compiles_for_every_database(dialect_name: str) -> None:
    upgrade = offline_migration_sql(MIGRATION, dialect_name, "upgrade")
    downgrade = offline_migration_sql(MIGRATION, dialect_name, "downgrade")
    assert "DROP INDEX" in upgrade and "ix_campaign_participant_node" in upgrade
    assert "CREATE INDEX ix_campaign_participant_journey ON campaign_participant (journey_id, entered_at)" in upgrade
    assert (
        "CREATE INDEX ix_campaign_participant_user ON campaign_participant (user_id, journey_id, entered_at)" in upgrade
    )
    assert (
        "CREATE INDEX ix_campaign_participant_node ON campaign_participant (journey_id, current_node, status)"
        in downgrade
    )
    assert "CREATE INDEX ix_campaign_participant_user ON campaign_participant (user_id, journey_id)" in downgrade
    # The fillfactor is PostgreSQL's alone (openGauss has it too, but nothing unproven there changes).
    assert ("SET (fillfactor = 50)" in upgrade) == (dialect_name == "postgresql")
    assert ("RESET (fillfactor)" in downgrade) == (dialect_name == "postgresql")


def test_the_migration_and_the_way_back(tmp_path, database_url: str) -> None:
    db = Database.from_settings(campaign_settings(tmp_path, database_url))
    migrations = SCHEMA.migrations
    postgres = db.engine.dialect.name == "postgresql"

    def state() -> tuple[set[str], object]:
        indexes = {i["name"] for i in sa.inspect(db.engine).get_indexes("campaign_participant")}
        if not postgres:
            return indexes, None
        with db.engine.connect() as conn:
            options = conn.execute(
                sa.text(
                    "SELECT c.reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relname = 'campaign_participant' AND n.nspname = current_schema()"
                )
            ).scalar_one()
        return indexes, options

    try:
        assert migrations.upgrade(db.engine, "campaign_0005") == "campaign_0005"
        before = state()
        assert "ix_campaign_participant_node" in before[0] and before[1] is None
        assert migrations.upgrade(db.engine) == migrations.head()
        after = state()
        assert "ix_campaign_participant_journey" in after[0] and "ix_campaign_participant_node" not in after[0]
        assert after[1] == (["fillfactor=50"] if postgres else None)
        with db.engine.connect() as conn:
            command.downgrade(migrations._config(conn), "campaign_0005")
            conn.commit()
        assert state() == before
    finally:
        db.dispose()
