"""Store-kit behaviour, the same cases on SQLite and PostgreSQL (by URL)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from svc_collect.config import CollectSettings
from svc_common.db import Database, JsonText, UtcDateTime, upsert
from svc_common.errors import StartupError
from svc_common.suite import entries


def _db(url: str) -> Database:
    return Database.from_settings(CollectSettings(database_url=url))


def test_migrations_create_exactly_the_declared_schema_for_every_service(database_url: str) -> None:
    db = _db(database_url)
    try:
        for entry in entries():
            schema = entry.schema
            assert schema.migrations.upgrade(db.engine) == schema.migrations.head()
            # Running again is a no-op (every start does it).
            assert schema.migrations.upgrade(db.engine) == schema.migrations.head()
            with db.engine.connect() as conn:
                context = MigrationContext.configure(conn, opts={"version_table": schema.migrations.version_table})
                diff = compare_metadata(context, schema.metadata)
            ours = [d for d in diff if _table_of(d).startswith(f"{entry.name}_")]
            assert ours == [], f"{entry.name}: migrations and tables differ: {ours}"
    finally:
        db.dispose()


def _table_of(diff: object) -> str:
    item = diff[0] if isinstance(diff, list) else diff
    for part in item[1:] if isinstance(item, tuple) else ():
        if isinstance(part, sa.Table):
            return part.name
        if isinstance(part, sa.Index) and part.table is not None:
            return part.table.name
        if isinstance(part, str) and part.endswith(("_instance",)):
            return part
    return str(item)


metadata = sa.MetaData()
things = sa.Table(
    "kit_thing",
    metadata,
    sa.Column("thing_id", sa.String(36), primary_key=True),
    sa.Column("owner_id", sa.String(36), nullable=False),
    sa.Column("counter", sa.BigInteger, nullable=False),
    sa.Column("seen_at", UtcDateTime(), nullable=False),
    sa.Column("attributes", JsonText(), nullable=True),
    sa.UniqueConstraint("owner_id", "counter", name="uq_kit_thing_owner_counter"),
)


@pytest.fixture
def kit_db(database_url: str):
    db = _db(database_url)
    metadata.create_all(db.engine)
    yield db
    metadata.drop_all(db.engine)
    db.dispose()


def test_upsert_inserts_updates_and_keeps(kit_db: Database) -> None:
    t0 = dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC)
    rows = [
        {"thing_id": "a", "owner_id": "o", "counter": 1, "seen_at": t0, "attributes": {"名": "甲"}},
        {"thing_id": "b", "owner_id": "o", "counter": 2, "seen_at": t0, "attributes": None},
    ]
    with kit_db.connection(write=True) as conn:
        upsert(conn, things, rows, keys=["thing_id"], updates=["counter", "seen_at"])
    later = t0 + dt.timedelta(hours=1)
    with kit_db.connection(write=True) as conn:
        upsert(
            conn,
            things,
            [{"thing_id": "a", "owner_id": "o", "counter": 10, "seen_at": later, "attributes": {"x": 1}}],
            keys=["thing_id"],
            updates=["counter", "seen_at"],
        )
        # No updates: an existing row is left as it is.
        upsert(
            conn,
            things,
            [{"thing_id": "b", "owner_id": "o", "counter": 99, "seen_at": later, "attributes": None}],
            keys=["thing_id"],
        )
    with kit_db.connection() as conn:
        got = {r.thing_id: r for r in conn.execute(sa.select(things))}
    assert got["a"].counter == 10 and got["a"].seen_at == later
    assert got["a"].attributes == {"名": "甲"}  # not in updates: kept
    assert got["b"].counter == 2 and got["b"].seen_at == t0


def test_times_come_back_aware_utc_whatever_zone_went_in(kit_db: Database) -> None:
    shanghai = dt.timezone(dt.timedelta(hours=8))
    local = dt.datetime(2026, 3, 1, 9, 30, tzinfo=shanghai)
    with kit_db.connection(write=True) as conn:
        conn.execute(things.insert().values(thing_id="t", owner_id="o", counter=1, seen_at=local))
    with kit_db.connection() as conn:
        value = conn.execute(sa.select(things.c.seen_at)).scalar_one()
        # Ordering and comparison happen in UTC on every database.
        count = conn.execute(
            sa.select(sa.func.count()).where(things.c.seen_at < dt.datetime(2026, 3, 1, 2, tzinfo=dt.UTC))
        ).scalar_one()
    assert value == local and value.tzinfo == dt.UTC and value.hour == 1
    assert count == 1


def test_naive_datetimes_are_refused(kit_db: Database) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), kit_db.connection(write=True) as conn:
        conn.execute(things.insert().values(thing_id="n", owner_id="o", counter=1, seen_at=dt.datetime(2026, 1, 1)))


def test_session_rolls_back_on_error(kit_db: Database) -> None:
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(RuntimeError), kit_db.session(write=True) as session:
        session.execute(things.insert().values(thing_id="r", owner_id="o", counter=1, seen_at=now))
        raise RuntimeError("domain failure after the insert")
    with kit_db.session() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(things)).scalar_one() == 0


def test_unreachable_database_fails_start_with_the_address_and_no_password() -> None:
    settings = CollectSettings(
        database_url="postgresql+psycopg://qiming:secret@127.0.0.1:1/nowhere",
        database_connect_retries=1,
        database_connect_retry_interval_millis=10,
    )
    with pytest.raises(StartupError) as err:
        Database.from_settings(settings)
    message = str(err.value)
    assert "127.0.0.1:1/nowhere is unreachable after 2 attempt(s)" in message
    assert "secret" not in message


def test_sqlite_connections_get_wal_full_sync_and_the_configured_cache(tmp_path) -> None:
    settings = CollectSettings(database_url=f"sqlite:///{tmp_path / 'p.db'}", sqlite_cache_mib=16)
    database = Database.from_settings(settings)
    try:
        with database.connection() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "cache_size")
            }
    finally:
        database.dispose()
    # synchronous 2 is FULL; a negative cache_size is KiB.
    assert pragmas == {"journal_mode": "wal", "synchronous": 2, "cache_size": -16 * 1024}


def test_postgresql_connections_plan_each_execution_for_its_parameters(database_url_postgresql: str) -> None:
    """No generic plans: one made while a table was small stays a sequential scan as the table grows."""
    database = _db(database_url_postgresql)
    try:
        with database.connection() as conn:
            assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar() == "force_custom_plan"
            # The URL's own options (a search_path here, as tests and deployments set) still apply.
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        database.dispose()


def test_reading_needs_no_transaction_on_postgresql_and_leaves_the_pool_as_it_was(kit_db: Database) -> None:
    """``Database.reading``: on PostgreSQL the statements run outside a transaction (no BEGIN/COMMIT round trips) and
    see what is committed; the pooled connection comes back to :meth:`connection` in a transaction as before; a
    failed statement is the caller's error as for any connection. Elsewhere it is :meth:`connection`."""
    now = dt.datetime.now(dt.UTC)
    with kit_db.connection(write=True) as conn:
        conn.execute(things.insert().values(thing_id="a", owner_id="o", counter=1, seen_at=now))
    postgresql = kit_db.engine.dialect.name == "postgresql"
    with kit_db.reading() as conn:
        assert conn.execute(sa.select(things.c.thing_id)).scalars().all() == ["a"]
        if postgresql:
            assert conn.connection.driver_connection.autocommit is True
            assert conn.exec_driver_sql("SELECT now() = statement_timestamp()").scalar() is True  # no transaction
        else:
            assert conn.in_transaction()
    with kit_db.connection() as conn:
        if postgresql:
            assert conn.connection.driver_connection.autocommit is False
            assert conn.exec_driver_sql("SELECT now() = statement_timestamp()").scalar() is False  # in one
    with pytest.raises(sa.exc.DBAPIError), kit_db.reading() as conn:  # SQLite: OperationalError
        conn.exec_driver_sql("SELECT * FROM no_such_table")
    with kit_db.reading() as conn:  # the pool is still good after the failure
        assert conn.execute(sa.select(sa.func.count()).select_from(things)).scalar_one() == 1
