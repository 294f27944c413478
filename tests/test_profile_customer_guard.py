"""One customer number per profile, kept by the database (profile_customer, profile_0007), and the expiry sweep's
index on profile_tag (name, expires_us). On SQLite and PostgreSQL; the migration compiled for every database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from profile_helpers import ANONYMOUS, CUSTOMER, KEYRING, profile_app, profile_settings, ref
from test_cli import _one_error_line, qiming
from test_ddl_snapshots import offline_migration_sql

from svc_common.conditions import to_proto
from svc_common.db import Database
from svc_common.errors import ConfigError, FailedPrecondition
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_profile.identity import link_row
from svc_profile.model import now_us
from svc_profile.store import SCHEMA

VERSIONS = Path(__file__).resolve().parent.parent / "svc_profile" / "store" / "migrations" / "versions"


def _customers(app_or_db: Any) -> set[tuple[str, str]]:
    database = getattr(getattr(app_or_db, "core", None), "database", app_or_db)
    with database.connection() as conn:
        return {tuple(r) for r in conn.execute(sa.text("SELECT profile_id, customer_id FROM profile_customer"))}


def _pid(app: Any, value: str, id_type: int = CUSTOMER) -> str:
    with app.core.database.connection() as conn:
        return app.core.find(conn, app.core.policy.ref(id_type, value, "user"))


def test_a_second_customer_number_on_one_profile_fails_in_the_database(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        for user in ("C1", "C2"):
            app.profiles.upsert_attributes(ref(user), {"branch": to_proto("SH")}, [], "crm", frozenset())
        p1, p2 = _pid(app, "C1"), _pid(app, "C2")
        assert _customers(app) == {(p1, "C1"), (p2, "C2")}
        core = app.core
        # A direct second insert.
        with pytest.raises(sa.exc.IntegrityError), core.database.connection(write=True) as conn:
            conn.execute(sa.text("INSERT INTO profile_customer (profile_id, customer_id) VALUES (:p, 'C3')"), {"p": p1})
        # An identity link of a second customer number, past the resolver.
        with pytest.raises(sa.exc.IntegrityError), core.writing() as conn:
            core.store.insert_links(conn, [link_row(p1, (CUSTOMER, "C3"), "test", "test", now_us())])
        # A merge of two customers' profiles, past the resolver's refusal.
        with pytest.raises(sa.exc.IntegrityError), core.writing() as conn:
            core.merge(conn, p2, p1, now_us())
        assert _customers(app) == {(p1, "C1"), (p2, "C2")}  # rolled back
        with core.database.connection() as conn:
            held = conn.execute(sa.text("SELECT id_value FROM profile_identity WHERE id_type = :t"), {"t": CUSTOMER})
            assert sorted(held.scalars()) == ["C1", "C2"]

        # The table follows the links: a merge moves the number to the survivor, an erasure removes it; a profile's
        # only number is not unlinked (walk 2026-12-06, finding 8).
        app.profiles.upsert_attributes(ref("dev-1", ANONYMOUS), {"branch": to_proto("BJ")}, [], "crm", frozenset())
        app.profiles.link(ref("C1"), types_pb2.Identity(type=ANONYMOUS, value="dev-1"), "", frozenset())
        assert _customers(app) == {(p1, "C1"), (p2, "C2")}
        assert _pid(app, "dev-1", ANONYMOUS) == p1
        with pytest.raises(FailedPrecondition):
            app.profiles.unlink(types_pb2.Identity(type=CUSTOMER, value="C1"))
        assert _customers(app) == {(p1, "C1"), (p2, "C2")}
        app.profiles.delete(ref("C2"), "PIPL request 42")
        assert _customers(app) == {(p1, "C1")}


def test_the_migration_fills_the_guard_from_the_identities_and_back(tmp_path: Path, database_url: str) -> None:
    db = Database.from_settings(profile_settings(tmp_path, database_url))
    migrations = SCHEMA.migrations
    insert = sa.text(
        "INSERT INTO profile_identity (id_value, id_type, profile_id, linked_by, linked_us, source_ref)"
        " VALUES (:v, :t, :p, 'event', 1, '')"
    )
    try:
        assert migrations.upgrade(db.engine, "profile_0006") == "profile_0006"
        with db.connection(write=True) as conn:
            rows = [
                ("C1", CUSTOMER, "p1"),
                ("dev-1", ANONYMOUS, "p1"),
                ("C2", CUSTOMER, "p2"),
                ("dev-2", ANONYMOUS, "p3"),
            ]
            conn.execute(insert, [{"v": v, "t": t, "p": p} for v, t, p in rows])
        assert migrations.upgrade(db.engine, "profile_0007") == "profile_0007"
        assert _customers(db) == {("p1", "C1"), ("p2", "C2")}
        indexes = {i["name"] for i in sa.inspect(db.engine).get_indexes("profile_tag")}
        assert "ix_profile_tag_name_expiry" in indexes and "ix_profile_tag_name" not in indexes
        with db.engine.connect() as conn:
            command.downgrade(migrations._config(conn), "profile_0006")
            conn.commit()
        inspector = sa.inspect(db.engine)
        assert "profile_customer" not in inspector.get_table_names()
        assert "ix_profile_tag_name" in {i["name"] for i in inspector.get_indexes("profile_tag")}
        assert migrations.upgrade(db.engine) == migrations.head()
    finally:
        db.dispose()


def _profile_with_two_customers_at_0006(db: Database) -> None:
    SCHEMA.migrations.upgrade(db.engine, "profile_0006")
    with db.connection(write=True) as conn:
        conn.execute(
            sa.text(
                "INSERT INTO profile_identity (id_value, id_type, profile_id, linked_by, linked_us, source_ref)"
                " VALUES (:v, 2, 'p1', 'event', 1, '')"
            ),
            [{"v": "C1"}, {"v": "C2"}],
        )


def test_the_upgrade_refuses_a_profile_with_two_customer_numbers_before_any_change(
    tmp_path: Path, database_url: str
) -> None:
    db = Database.from_settings(profile_settings(tmp_path, database_url))
    migrations = SCHEMA.migrations
    try:
        _profile_with_two_customers_at_0006(db)
        with pytest.raises(ConfigError, match=r"1 profile\(s\) hold more than one customer number \(e.g. p1\)"):
            migrations.upgrade(db.engine)
        with db.connection() as conn:
            assert migrations.current(conn) == "profile_0006"
            tables = sa.inspect(conn).get_table_names()
            indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("profile_tag")}
        # Checked before the DDL (Dameng does not roll DDL back): nothing of profile_0007 is there.
        assert "profile_customer" not in tables
        assert "ix_profile_tag_name" in indexes and "ix_profile_tag_name_expiry" not in indexes
        with db.connection(write=True) as conn:
            conn.execute(sa.text("DELETE FROM profile_identity WHERE id_value = 'C2'"))
        assert migrations.upgrade(db.engine) == migrations.head()
        assert _customers(db) == {("p1", "C1")}
    finally:
        db.dispose()


def test_qiming_migrate_stops_with_one_line_and_exit_2_on_such_a_profile(tmp_path: Path) -> None:
    db = Database.from_settings(profile_settings(tmp_path))
    try:
        _profile_with_two_customers_at_0006(db)
    finally:
        db.dispose()
    env = {"QIMING_PROFILE_DATA_DIR": str(tmp_path), "QIMING_PROFILE_KEYRING_JSON": KEYRING}
    result = qiming("migrate", "profile", env=env)
    assert result.returncode == 2, result.stderr
    line = _one_error_line(result)
    assert "UnlinkIdentity" in line and "HAVING COUNT(*) > 1" in line


def test_the_expiry_sweep_reads_the_name_and_expiry_index(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        store = app.core.store
        rows = [
            {
                "profile_id": f"p{i:05d}",
                "name": f"score_{n}",
                "tag_value": '["d",0.5]',
                "source": "MODEL",
                "writer": "m",
                "writer_version": "",
                "written_us": 1,
                "expires_us": 1_000_000 + i * 1_000 + n,
                "trace_id": "",
            }
            for i in range(2_000)
            for n in range(10)
        ]
        columns = ", ".join(rows[0])
        with app.core.database.connection(write=True) as conn:
            conn.execute(
                sa.text(f"INSERT INTO profile_tag ({columns}) VALUES ({', '.join(':' + c for c in rows[0])})"), rows
            )
            conn.execute(sa.text("ANALYZE"))
        statement = store.expired_tags_statement(["score_3", "score_7"], 1_500_000, 1_600_000)
        with app.core.database.connection() as conn:
            sql = str(statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            if conn.dialect.name == "postgresql":
                plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN {sql}").scalars())
            else:
                plan = "\n".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
            found = sorted(conn.execute(statement).all())
        assert "ix_profile_tag_name_expiry" in plan, plan
        assert found == sorted(
            (f"p{i:05d}", f"score_{n}")
            for i in range(2_000)
            for n in (3, 7)
            if 1_500_000 < 1_000_000 + i * 1_000 + n <= 1_600_000
        )


def _offline_sql(dialect_name: str, step: str) -> str:
    return offline_migration_sql(VERSIONS / "profile_0007_customer_guard.py", dialect_name, step)


@pytest.mark.parametrize("dialect_name", ["opengauss", "dm", "postgresql", "sqlite"])
def test_the_migration_compiles_for_every_database(dialect_name: str) -> None:
    upgrade = _offline_sql(dialect_name, "upgrade")
    assert "CREATE INDEX ix_profile_tag_name_expiry ON profile_tag (name, expires_us)" in upgrade
    assert "CREATE TABLE profile_customer" in upgrade and "PRIMARY KEY (profile_id)" in upgrade
    assert "CONSTRAINT uq_profile_customer_id UNIQUE (customer_id)" in upgrade
    assert (
        "INSERT INTO profile_customer (profile_id, customer_id) SELECT profile_id, id_value FROM profile_identity "
        "WHERE id_type = 2"
    ) in upgrade
    downgrade = _offline_sql(dialect_name, "downgrade")
    assert (
        "DROP TABLE profile_customer" in downgrade
        and "CREATE INDEX ix_profile_tag_name ON profile_tag (name)" in downgrade
    )
