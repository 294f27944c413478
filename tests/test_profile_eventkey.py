"""The retained events keyed by person, time and event id (profile_0003): the migration keeps the rows, the
key serves the reads by person, and a replayed event is still stored once. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from profile_helpers import profile_settings
from test_ddl_snapshots import make_dialect

from svc_common.db import Database
from svc_profile.store import SCHEMA, tables
from svc_profile.store._sql import EVENT_KEY, ProfileStore

ROWS = [
    ("e1", "p1", 1_000, "page_view", "s1", "home", "{}"),
    ("e2", "p1", 2_000, "trade_filled", "s1", "trade", json.dumps({"amount_fen": ["m", 5]})),
    ("e3", "p2", 1_000, "page_view", "s2", "home", "{}"),
]
COLUMNS = ProfileStore.EVENT_COLUMNS[:7]  # the columns of profile_0002 to profile_0005


def _database(tmp_path: Path, url: str) -> Database:
    return Database.from_settings(profile_settings(tmp_path, url))


def _rows(db: Database) -> list[tuple]:
    with db.connection() as conn:
        columns = ", ".join(COLUMNS)
        return sorted(tuple(r) for r in conn.execute(sa.text(f"SELECT {columns} FROM profile_event")))


def _shape(db: Database) -> tuple[list[str], set[str]]:
    inspector = sa.inspect(db.engine)
    key = inspector.get_pk_constraint("profile_event")["constrained_columns"]
    return key, {i["name"] for i in inspector.get_indexes("profile_event")}


def test_the_migration_rekeys_the_stored_events_and_back(tmp_path: Path, database_url: str) -> None:
    db = _database(tmp_path, database_url)
    migrations = SCHEMA.migrations
    try:
        assert migrations.upgrade(db.engine, "profile_0002") == "profile_0002"
        with db.connection(write=True) as conn:
            columns = ", ".join(COLUMNS)
            binds = ", ".join(f":{c}" for c in COLUMNS)
            insert = sa.text(f"INSERT INTO profile_event ({columns}) VALUES ({binds})")
            conn.execute(insert, [dict(zip(COLUMNS, r, strict=True)) for r in ROWS])
        assert _shape(db) == (
            ["event_id"],
            {"ix_profile_event_profile", "ix_profile_event_time", "ix_profile_event_type"},
        )
        assert migrations.upgrade(db.engine, "profile_0003") == "profile_0003"
        assert _rows(db) == sorted(ROWS)
        assert _shape(db) == (list(EVENT_KEY), {"ix_profile_event_time", "ix_profile_event_type"})
        with db.engine.connect() as conn:  # the way back keeps the rows as well
            command.downgrade(migrations._config(conn), "profile_0002")
            conn.commit()
        assert _rows(db) == sorted(ROWS)
        assert _shape(db)[0] == ["event_id"]
        assert migrations.upgrade(db.engine) == migrations.head()
        assert _rows(db) == sorted(ROWS)
    finally:
        db.dispose()


def test_a_replayed_event_is_stored_once(tmp_path: Path, database_url: str) -> None:
    db = _database(tmp_path, database_url)
    try:
        SCHEMA.migrations.upgrade(db.engine)
        store = ProfileStore(db, tables)
        with db.connection(write=True) as conn:
            store.insert_events(conn, ROWS)
        with db.connection(write=True) as conn:  # the same batch again (a replay), one event new among them
            store.insert_events(conn, [*ROWS, ("e4", "p1", 2_000, "page_view", "s1", "home", "{}")])
        assert _rows(db) == sorted([*ROWS, ("e4", "p1", 2_000, "page_view", "s1", "home", "{}")])
        with db.connection() as conn:
            events = store.load_events(conn, ["p1"], ["page_view", "trade_filled"], 0)
        assert sorted((e.occurred_us, e.event_type) for e in events["p1"]) == [
            (1_000, "page_view"),
            (2_000, "page_view"),
            (2_000, "trade_filled"),
        ]
    finally:
        db.dispose()


def test_the_way_back_keeps_one_row_per_event_id(tmp_path: Path, database_url: str) -> None:
    """The wider key can hold one event twice (under two persons, or at two times); the downgrade to a key of the
    event id alone keeps one of them instead of failing (and leaving the database stuck at profile_0003)."""
    db = _database(tmp_path, database_url)
    migrations = SCHEMA.migrations
    twice = [("e1", "p9", 1_000, "page_view", "s9", "home", "{}"), ("e3", "p2", 5_000, "page_view", "s2", "home", "{}")]
    try:
        assert migrations.upgrade(db.engine, "profile_0003") == "profile_0003"
        with db.connection(write=True) as conn:
            ProfileStore(db, tables).insert_events(conn, [*ROWS, *twice])
        with db.engine.connect() as conn:
            command.downgrade(migrations._config(conn), "profile_0002")
            conn.commit()
        kept = _rows(db)
        assert sorted(r[0] for r in kept) == ["e1", "e2", "e3"]
        assert {r[0]: r[1:3] for r in kept} == {"e1": ("p1", 1_000), "e2": ("p1", 2_000), "e3": ("p2", 1_000)}
    finally:
        db.dispose()


@pytest.mark.parametrize("dialect_name", ["sqlite", "postgresql", "opengauss", "dm"])
def test_a_merges_drop_of_copies_the_winner_holds_compiles(dialect_name: str) -> None:
    statement = ProfileStore(None, tables).copies_held_by("winner", "loser")  # type: ignore[arg-type]
    sql = str(statement.compile(dialect=make_dialect(dialect_name))).upper()
    assert sql.startswith("DELETE FROM PROFILE_EVENT") and "EXISTS (SELECT" in sql
