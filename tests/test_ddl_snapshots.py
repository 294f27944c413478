"""The DDL every service's tables compile to on the domestic databases, checked offline (no server).

One snapshot per service per dialect under ``tests/snapshots/ddl/<service>.<dialect>.sql``; a change in a
table shows up as a readable diff. After an intended change, rewrite them with::

    UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_ddl_snapshots.py

Tables are discovered from each service's ``MetaData`` (``metadata.sorted_tables``), so tables that later
issues add are covered without touching this file. The same tables are checked for portability: every
datetime column keeps its zone on Dameng, and no identifier needs quoting (mixed case or a reserved word).
"""

from __future__ import annotations

import difflib
import io
import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, registry, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex, CreateTable

from svc_common.db import StoreSchema, UtcDateTime, upsert_statement
from svc_common.suite import SERVICE_NAMES, entry

SNAPSHOT_DIR = Path(__file__).parent / "snapshots" / "ddl"
UPDATE = os.environ.get("UPDATE_SNAPSHOTS", "").lower() in ("1", "true", "yes")
DIALECTS = ("dm", "opengauss")
# openGauss's DDL must not exceed PostgreSQL's NAMEDATALEN - 1 (longer names are silently truncated).
MAX_IDENTIFIER_LENGTH = 63


def make_dialect(name: str) -> Dialect:
    """A dialect instance for compiling only: no DBAPI connection, no server round trip."""
    if name == "dm":
        return registry.load("dm")()  # dmSQLAlchemy (registered by its package)
    if name == "opengauss":
        dialect = registry.load("opengauss.psycopg")()  # ours, registered by svc_common.db
        # What a connection would find out; without it the PG base assumes the newest server.
        dialect.server_version_info = (9, 2, 4)
        return dialect
    if name == "postgresql":
        return postgresql.psycopg.dialect()
    if name == "sqlite":
        return sqlite.dialect()
    raise AssertionError(name)


def offline_migration_sql(path: Path, dialect_name: str, step: str = "upgrade") -> str:
    """What a migration file's ``upgrade`` or ``downgrade`` sends to ``dialect_name``, rendered by Alembic
    without a server (``as_sql``), whitespace collapsed."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    namespace: dict = {}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
    buffer = io.StringIO()
    context = MigrationContext.configure(
        dialect=make_dialect(dialect_name), opts={"as_sql": True, "output_buffer": buffer}
    )
    with Operations.context(context):
        namespace[step]()
    return " ".join(buffer.getvalue().split())


def schema_of(service: str) -> StoreSchema:
    return entry(service).schema


def tables_of(service: str) -> list[sa.Table]:
    return list(schema_of(service).metadata.sorted_tables)


def render_ddl(service: str, dialect_name: str) -> str:
    """CREATE TABLE and CREATE INDEX for every table of ``service``, in dependency order, deterministic."""
    dialect = make_dialect(dialect_name)
    parts = [
        f"-- DDL of {service}'s tables on {dialect_name}, compiled offline by tests/test_ddl_snapshots.py.\n"
        "-- Do not edit: rerun the test with UPDATE_SNAPSHOTS=1 after an intended schema change.\n"
    ]
    for table in tables_of(service):
        statements = [CreateTable(table)] + [
            CreateIndex(index) for index in sorted(table.indexes, key=lambda i: str(i.name))
        ]
        for statement in statements:
            sql = str(statement.compile(dialect=dialect)).strip()
            # SQLAlchemy leaves a space after each column's comma; keep the files free of trailing blanks.
            parts.append("\n".join(line.rstrip() for line in sql.splitlines()) + ";\n")
    return "\n".join(parts)


CASES = [(service, dialect) for service in SERVICE_NAMES for dialect in DIALECTS]


@pytest.mark.parametrize(("service", "dialect_name"), CASES, ids=[f"{s}.{d}" for s, d in CASES])
def test_ddl_matches_snapshot(service: str, dialect_name: str) -> None:
    path = SNAPSHOT_DIR / f"{service}.{dialect_name}.sql"
    actual = render_ddl(service, dialect_name)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != actual:
            path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"no snapshot {path}; create it with UPDATE_SNAPSHOTS=1", pytrace=False)
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=f"snapshot {path.name}",
                tofile=f"compiled now ({service} on {dialect_name})",
            )
        )
        pytest.fail(
            f"the {dialect_name} DDL of {service} changed (if intended: UPDATE_SNAPSHOTS=1):\n{diff}",
            pytrace=False,
        )


def test_no_stale_snapshots() -> None:
    """A snapshot for a service or dialect that no longer exists would never be checked again."""
    expected = {f"{s}.{d}.sql" for s, d in CASES}
    found = {p.name for p in SNAPSHOT_DIR.glob("*.sql")}
    stale = sorted(found - expected)
    if stale and UPDATE:
        for name in stale:
            (SNAPSHOT_DIR / name).unlink()
        return
    assert not stale, f"snapshots for no current service/dialect (delete them or run with UPDATE_SNAPSHOTS=1): {stale}"


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_every_service_declares_its_instance_table(service: str) -> None:
    """svc_common's instance table is part of every service's metadata (and so snapshotted)."""
    schema = schema_of(service)
    assert schema.service == service
    assert schema.instance_table.name == f"{service}_instance"
    assert schema.instance_table in tables_of(service)
    # Each service owns its tables by prefix, so several services can share one database or schema.
    strangers = [t.name for t in tables_of(service) if not t.name.startswith(f"{service}_")]
    assert strangers == [], f"{service}: tables without the '{service}_' prefix: {strangers}"


def _identifiers(table: sa.Table) -> list[tuple[str, str]]:
    """(kind, name) of every name the DDL of ``table`` spells out."""
    names = [("table", table.name)]
    names += [("column", f"{table.name}.{c.name}") for c in table.columns]
    names += [("index", str(i.name)) for i in table.indexes]
    names += [
        ("constraint", str(c.name))
        for c in table.constraints
        if isinstance(c.name, str)  # unnamed ones (e.g. the primary key) get the database's own name
    ]
    return names


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_identifiers_are_lower_case_and_not_reserved(service: str) -> None:
    reserved: dict[str, frozenset[str]] = {
        name: frozenset(make_dialect(name).identifier_preparer.reserved_words) for name in (*DIALECTS, "postgresql")
    }
    problems = []
    for table in tables_of(service):
        for kind, qualified in _identifiers(table):
            name = qualified.rsplit(".", 1)[-1]
            if name != name.lower():
                problems.append(f"{kind} {qualified}: mixed case (would need quoting everywhere)")
            if not name.replace("_", "").isalnum() or not name[0].isalpha() or not name.isascii():
                problems.append(f"{kind} {qualified}: use ASCII letters, digits and '_' only, starting with a letter")
            for dialect_name, words in reserved.items():
                if name.lower() in words:
                    problems.append(f"{kind} {qualified}: reserved word on {dialect_name}")
            if len(name) > MAX_IDENTIFIER_LENGTH:
                problems.append(f"{kind} {qualified}: longer than {MAX_IDENTIFIER_LENGTH} characters")
    assert problems == [], f"{service}:\n" + "\n".join(problems)
    # The compiled DDL agrees: nothing needed quoting.
    for dialect_name in DIALECTS:
        ddl = render_ddl(service, dialect_name)
        assert '"' not in ddl, f"{service} on {dialect_name}: quoted identifier in\n{ddl}"


def _is_time_type(type_: sa.types.TypeEngine) -> bool:
    """DateTime/TIMESTAMP/Time, also behind a TypeDecorator like UtcDateTime (a Date has no zone to lose)."""
    impl = type_.impl if isinstance(type_, sa.types.TypeDecorator) else type_
    return isinstance(impl, (sa.DateTime, sa.Time))


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_datetime_columns_keep_their_zone_on_dameng(service: str) -> None:
    """Dameng's plain DATETIME/TIMESTAMP drops the zone: every time column must be ``timezone=True``."""
    dm = make_dialect("dm")
    problems = []
    for table in tables_of(service):
        ddl = str(CreateTable(table).compile(dialect=dm))
        for column in table.columns:
            if not _is_time_type(column.type):
                continue
            impl = column.type.dialect_impl(dm)
            impl = impl.impl if isinstance(impl, sa.types.TypeDecorator) else impl
            if not getattr(impl, "timezone", False):
                problems.append(f"{table.name}.{column.name}: {column.type!r} without timezone=True")
                continue
            line = next((ln for ln in ddl.splitlines() if ln.strip().startswith(f"{column.name} ")), "")
            if "WITH TIME ZONE" not in line.upper():
                problems.append(f"{table.name}.{column.name}: compiles to {line.strip()!r} on Dameng")
    assert problems == [], f"{service}:\n" + "\n".join(problems)
    # Every service has at least the instance table's start/stop times, so the check above is not vacuous.
    assert any(_is_time_type(c.type) for t in tables_of(service) for c in t.columns)


# --- the upsert seam -------------------------------------------------------------------------------

_upsert_metadata = sa.MetaData()
_upsert_table = sa.Table(
    "kit_counter",
    _upsert_metadata,
    sa.Column("counter_id", sa.String(36), primary_key=True),
    sa.Column("total", sa.BigInteger, nullable=False),
    sa.Column("seen_at", UtcDateTime(), nullable=False),
)
_COLUMNS = ["counter_id", "total", "seen_at"]

# dialect → (keywords with updates, keywords without updates, keywords that must not appear)
UPSERT_EXPECTATIONS = {
    "dm": (
        [
            "MERGE INTO kit_counter",
            "USING (SELECT",
            "FROM DUAL",
            "ON (t.counter_id = s.counter_id)",
            "WHEN MATCHED THEN UPDATE SET t.total = s.total, t.seen_at = s.seen_at",
            "WHEN NOT MATCHED THEN INSERT (counter_id, total, seen_at)",
            "VALUES (s.counter_id, s.total, s.seen_at)",
        ],
        ["MERGE INTO kit_counter", "WHEN NOT MATCHED THEN INSERT"],
        ["ON CONFLICT", "ON DUPLICATE KEY"],
    ),
    "opengauss": (
        ["INSERT INTO kit_counter", "ON DUPLICATE KEY UPDATE", "total =", "seen_at ="],
        ["INSERT INTO kit_counter", "ON DUPLICATE KEY UPDATE NOTHING"],
        ["ON CONFLICT", "MERGE"],
    ),
    "postgresql": (
        [
            "INSERT INTO kit_counter",
            "ON CONFLICT (counter_id) DO UPDATE SET",
            "total = excluded.total",
            "seen_at = excluded.seen_at",
        ],
        ["INSERT INTO kit_counter", "ON CONFLICT (counter_id) DO NOTHING"],
        ["ON DUPLICATE KEY", "MERGE"],
    ),
    "sqlite": (
        [
            "INSERT INTO kit_counter",
            "ON CONFLICT (counter_id) DO UPDATE SET",
            "total = excluded.total",
            "seen_at = excluded.seen_at",
        ],
        ["INSERT INTO kit_counter", "ON CONFLICT (counter_id) DO NOTHING"],
        ["ON DUPLICATE KEY", "MERGE"],
    ),
}


@pytest.mark.parametrize("dialect_name", list(UPSERT_EXPECTATIONS))
def test_upsert_statement_compiles_per_dialect(dialect_name: str) -> None:
    with_updates, without_updates, absent = UPSERT_EXPECTATIONS[dialect_name]
    dialect = make_dialect(dialect_name)
    for updates, expected in ((["total", "seen_at"], with_updates), ((), without_updates)):
        stmt = upsert_statement(dialect_name, _upsert_table, _COLUMNS, ["counter_id"], updates)
        compiled = stmt.compile(dialect=dialect)
        sql = " ".join(str(compiled).split())
        for keyword in expected:
            assert keyword in sql, f"{dialect_name}: {keyword!r} missing from {sql}"
        for keyword in absent:
            assert keyword not in sql, f"{dialect_name}: {keyword!r} unexpected in {sql}"
        if not updates:
            assert "UPDATE SET" not in sql
        # One bind parameter per column, named after it, so one statement serves executemany().
        assert set(compiled.params) == set(_COLUMNS), f"{dialect_name}: binds {sorted(compiled.params)}"


def test_upsert_statement_refuses_unknown_columns() -> None:
    with pytest.raises(ValueError, match="no column"):
        upsert_statement("dm", _upsert_table, ["counter_id", "nope"], ["counter_id"])


PAGE_EXPECTATIONS = {
    "dm": ("WHERE collect_event.seq > :after", "FETCH FIRST :limit ROWS ONLY"),
    "opengauss": ("WHERE collect_event.seq > %(after)s", "LIMIT %(limit)s"),
    "postgresql": ("WHERE collect_event.seq > %(after)s", "LIMIT %(limit)s"),
    "sqlite": ("WHERE collect_event.seq > ?", "LIMIT ? OFFSET ?"),
}


@pytest.mark.parametrize("dialect_name", list(PAGE_EXPECTATIONS))
def test_log_page_read_compiles_per_dialect(dialect_name: str) -> None:
    """The follower's page read runs on the driver (DriverQuery): its SQL and parameters per database."""
    from svc_collect.store import SCHEMA
    from svc_collect.store._log import page_query

    conn = type("Conn", (), {"dialect": make_dialect(dialect_name)})()  # all that compiling needs of one
    sql, positional, defaults = page_query(SCHEMA.metadata.tables["collect_event"]).sql(conn)
    flat = " ".join(sql.split())
    for fragment in PAGE_EXPECTATIONS[dialect_name]:
        assert fragment in flat, f"{dialect_name}: {fragment!r} missing from {flat}"
    if positional is not None:  # every positional parameter has a value: given (after, limit) or its own
        assert set(positional) <= {"after", "limit", *defaults}
