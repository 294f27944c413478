"""The additive variant of the upsert seam (``svc_common.db.upsert(..., add=...)``), used for day buckets."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, registry, sqlite
from sqlalchemy.engine import Dialect

from svc_common.db import Database, upsert, upsert_statement
from svc_profile.config import ProfileSettings

metadata = sa.MetaData()
counters = sa.Table(
    "kit_add_counter",
    metadata,
    sa.Column("owner", sa.String(36), primary_key=True),
    sa.Column("day", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("amount_fen", sa.BigInteger, nullable=False),
    sa.Column("note", sa.String(16), nullable=False),
)
COLUMNS = ["owner", "day", "n", "amount_fen", "note"]


def make_dialect(name: str) -> Dialect:
    """Compile-only dialects, as tests/test_ddl_snapshots.py makes them."""
    if name == "dm":
        return registry.load("dm")()
    if name == "opengauss":
        dialect = registry.load("opengauss.psycopg")()
        dialect.server_version_info = (9, 2, 4)
        return dialect
    return postgresql.psycopg.dialect() if name == "postgresql" else sqlite.dialect()


@pytest.fixture
def db(database_url: str):
    database = Database.from_settings(ProfileSettings(database_url=database_url))
    metadata.create_all(database.engine)
    yield database
    metadata.drop_all(database.engine)
    database.dispose()


def test_additive_upsert_adds_to_stored_counts(db: Database) -> None:
    rows = [
        {"owner": "a", "day": 1, "n": 1, "amount_fen": 100, "note": "x"},
        {"owner": "b", "day": 1, "n": 2, "amount_fen": 0, "note": "x"},
    ]
    with db.connection(write=True) as conn:
        upsert(conn, counters, rows, keys=["owner", "day"], add=["n", "amount_fen"])
    with db.connection(write=True) as conn:
        upsert(
            conn,
            counters,
            [
                {"owner": "a", "day": 1, "n": 5, "amount_fen": 7, "note": "y"},
                {"owner": "a", "day": 2, "n": 3, "amount_fen": 0, "note": "y"},
            ],
            keys=["owner", "day"],
            updates=["note"],
            add=["n", "amount_fen"],
        )
    with db.connection() as conn:
        got = {(r.owner, r.day): (r.n, r.amount_fen, r.note) for r in conn.execute(sa.select(counters))}
    assert got == {("a", 1): (6, 107, "y"), ("b", 1): (2, 0, "x"), ("a", 2): (3, 0, "y")}


@pytest.mark.parametrize(
    ("dialect_name", "expected"),
    [
        ("sqlite", ["ON CONFLICT (owner, day) DO UPDATE SET", "n = (kit_add_counter.n + excluded.n)"]),
        ("postgresql", ["ON CONFLICT (owner, day) DO UPDATE SET", "n = (kit_add_counter.n + excluded.n)"]),
        ("opengauss", ["INSERT INTO kit_add_counter", "ON DUPLICATE KEY UPDATE", "kit_add_counter.n +"]),
        ("dm", ["MERGE INTO kit_add_counter", "WHEN MATCHED THEN UPDATE SET t.note = s.note, t.n = t.n + s.n"]),
    ],
)
def test_additive_upsert_compiles_per_dialect(dialect_name: str, expected: list[str]) -> None:
    stmt = upsert_statement(dialect_name, counters, COLUMNS, ["owner", "day"], ["note"], add=["n", "amount_fen"])
    compiled = stmt.compile(dialect=make_dialect(dialect_name))
    sql = " ".join(str(compiled).split())
    for keyword in expected:
        assert keyword in sql, f"{dialect_name}: {keyword!r} missing from {sql}"
    assert set(compiled.params) == set(COLUMNS)


def test_additive_columns_must_be_inserted_and_not_set() -> None:
    with pytest.raises(ValueError, match="additive"):
        upsert_statement("sqlite", counters, ["owner", "day"], ["owner", "day"], add=["n"])
    with pytest.raises(ValueError, match="additive"):
        upsert_statement("sqlite", counters, COLUMNS, ["owner", "day"], ["n"], add=["n"])
