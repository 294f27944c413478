"""A model's version numbers are never given again: DeleteModel keeps the name's mark (``modeling_model_name``), so a
tag's ``writer_version`` or a score table's lineage names one model for good. Race-safe on SQLite and PostgreSQL: two
replicas registering one name at once get different numbers. modeling_0006 fills the marks of the models of before.

Also here: the lock statements' forms on openGauss and Dameng (compiled: no server here; Dameng has no shared row
lock), and modeling_0005/0006 run again after a run that stopped between its steps (Dameng commits each DDL
statement, so a failed run leaves its first steps behind)."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from modeling_helpers import modeling_settings, running_service
from test_ddl_snapshots import make_dialect, offline_migration_sql

from svc_common.db import Database
from svc_modeling.store import SCHEMA, SqlModelingStore, tables

VERSIONS = Path(__file__).parent.parent / "svc_modeling/store/migrations/versions"
MIGRATION_0005 = VERSIONS / "modeling_0005_dataset_users.py"
MIGRATION_0006 = VERSIONS / "modeling_0006_model_name.py"


def _add(store: SqlModelingStore, name: str = "churn") -> int:
    return store.add_model(name, "PROPENSITY", {"model_name": name}, b"artifact")


def _mark(store: SqlModelingStore, name: str) -> int | None:
    n = tables["model_name"].c
    with store._db.connection() as conn:
        return conn.execute(sa.select(n.last_version).where(n.model_name == name)).scalar()


def test_a_deleted_versions_number_is_never_given_again(database_url: str, tmp_path: Path) -> None:
    with running_service(modeling_settings(tmp_path, database_url)) as service:
        store = service.store
        assert [_add(store) for _ in range(3)] == [1, 2, 3]
        assert store.delete_model("churn", 3)["deleted"] == [3]
        assert _add(store) == 4  # not 3 again
        assert store.delete_model("churn")["deleted"] == [1, 2, 4]
        assert store.list_models("churn", None, 10) == []
        assert _add(store) == 5  # a name deleted whole and trained again goes on from its last number
        assert _add(store, "other") == 1 and _mark(store, "churn") == 5


def test_two_replicas_registering_one_name_at_once_get_different_numbers(database_url: str, tmp_path: Path) -> None:
    settings = modeling_settings(tmp_path, database_url)
    with running_service(settings) as a, running_service(settings) as b:
        assert _add(a.store) == 1
        a.store.delete_model("churn", 1)
        # Replica A has taken the next number and not yet stored its version; B registers meanwhile.
        held, go = threading.Event(), threading.Event()
        original = a.store._next_version

        def pausing(conn, name):
            number = original(conn, name)
            held.set()
            assert go.wait(30)
            return number

        a.store._next_version = pausing
        got: dict[str, int] = {}
        first = threading.Thread(target=lambda: got.setdefault("a", _add(a.store)))
        first.start()
        assert held.wait(30)
        second = threading.Thread(target=lambda: got.setdefault("b", _add(b.store)))
        second.start()
        time.sleep(0.5)  # B now waits for A's transaction (PostgreSQL: the mark's row lock; SQLite: the writer)
        go.set()
        first.join(30)
        second.join(30)
        assert got == {"a": 2, "b": 3}
        # and many at once, from both replicas
        workers = [threading.Thread(target=_add, args=(s.store,)) for s in (a, b) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        versions = [int(r["version"]) for r in a.store.list_models("churn", None, 100)]
        assert sorted(versions) == list(range(2, 12)) and _mark(a.store, "churn") == 11


def test_the_migration_keeps_the_highest_number_of_each_model(database_url: str, tmp_path: Path) -> None:
    settings = modeling_settings(tmp_path, database_url)
    db = Database.from_settings(settings)
    migrations = SCHEMA.migrations
    try:
        assert migrations.upgrade(db.engine, "modeling_0005") == "modeling_0005"
        _old_models(db, [("churn", 1), ("churn", 3), ("renewal", 2)])
        assert migrations.upgrade(db.engine) == migrations.head()
        store = SqlModelingStore(db, tables)
        assert (_mark(store, "churn"), _mark(store, "renewal")) == (3, 2)
        assert _add(store) == 4 and _add(store, "renewal") == 3 and _add(store, "new") == 1
    finally:
        db.dispose()


def _old_models(db: Database, rows: list[tuple[str, int]]) -> None:
    insert = sa.text(
        "INSERT INTO modeling_model (model_name, version, task, stage, body, artifact_blob_id, created_at)"
        " VALUES (:n, :v, 'PROPENSITY', 'CANDIDATE', :b, 'blob', '2026-12-01 00:00:00+00:00')"
    )
    with db.connection(write=True) as conn:
        for name, version in rows:
            conn.execute(insert, {"n": name, "v": version, "b": '{"dataset_id":"d-old"}'})


@pytest.mark.parametrize("dialect_name", ["opengauss", "dm", "postgresql", "sqlite"])
def test_the_model_name_migration_compiles_for_every_database(dialect_name: str) -> None:
    sql = offline_migration_sql(MIGRATION_0006, dialect_name)
    assert "CREATE TABLE modeling_model_name" in sql and "PRIMARY KEY (model_name)" in sql
    assert "INSERT INTO modeling_model_name (model_name, last_version) SELECT modeling_model.model_name, max(" in sql
    assert "GROUP BY modeling_model.model_name" in sql and ":param" not in sql and "%(" not in sql
    assert offline_migration_sql(MIGRATION_0006, dialect_name, "downgrade") == "DROP TABLE modeling_model_name;"


# -- the lock statements on openGauss and Dameng ------------------------------------------------------------------


class _Recording:
    """A database whose one connection records the statements a store method sends; every dataset asked for
    exists, no model or dataset is to be deleted, a model name's mark is 0."""

    def __init__(self, dialect_name: str) -> None:
        self.dialect = make_dialect(dialect_name)
        self.statements: list = []

    @contextlib.contextmanager
    def connection(self, write: bool = False):
        yield self

    def execute(self, statement, *args):
        self.statements.append(statement)
        return self

    def scalars(self):
        return ["d1", "d2"]

    def scalar_one(self):
        return 0

    def scalar(self):
        return None

    def scalar_one_or_none(self):
        return None

    def all(self):
        return []


def _compiled(statement, dialect_name: str) -> str:
    compiled = statement.compile(dialect=make_dialect(dialect_name), compile_kwargs={"render_postcompile": True})
    return " ".join(str(compiled).split())


SHARED = {"postgresql": "FOR SHARE", "opengauss": "FOR SHARE", "dm": "FOR UPDATE"}  # Dameng: no shared row lock


@pytest.mark.parametrize("dialect_name", list(SHARED))
def test_the_lock_statements_compile_on_every_server_database(dialect_name: str) -> None:
    db = _Recording(dialect_name)
    store = SqlModelingStore(db, tables)  # type: ignore[arg-type]
    store.add_job({"job_id": "j1"}, ["d2", "d1"])
    store.delete_dataset("d1")
    store.delete_model("churn", 1)
    assert store.add_model("churn", "PROPENSITY", {}, b"artifact", dataset_id="d1") == 1
    locks = [
        (i, _compiled(s, dialect_name))
        for i, s in enumerate(db.statements)
        if getattr(s, "_for_update_arg", None) is not None
    ]
    forms = [(sql.split(" FROM ")[1].split()[0], sql.rsplit(" FOR ", 1)[1]) for _, sql in locks]
    shared = SHARED[dialect_name].removeprefix("FOR ")
    assert forms == [
        ("modeling_dataset", shared),  # a job holds its datasets against a delete
        ("modeling_dataset", "UPDATE"),  # the delete of a dataset
        ("modeling_model", "UPDATE"),  # the delete of a model version (every version of the name)
        ("modeling_dataset", shared),  # a model being stored holds its dataset ...
        ("modeling_model_name", "UPDATE"),  # ... and takes the name's next number
    ], locks
    assert "WHERE modeling_dataset.dataset_id IN (" in locks[0][1], locks[0][1]
    # the artifact is written before the dataset's row is locked (exclusively, on Dameng)
    blob_writes = [i for i, s in enumerate(db.statements) if getattr(s, "table", None) is tables["blob"]]
    assert blob_writes and max(blob_writes) < locks[3][0]


# -- modeling_0005 and 0006 run again after a run that stopped between its steps ----------------------------------


class _Stop(Exception):
    pass


STEPS = ("add_column", "create_index", "create_table", "execute")


def _run_until(engine: sa.Engine, path: Path, stop_at: int) -> None:
    """Run the migration's upgrade on its own, committing each step as Dameng does, and stop before step
    ``stop_at`` (1: before the first; past the last: the whole upgrade, with the version never recorded)."""
    namespace: dict = {}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
    real = namespace["op"]
    done = 0

    class Stopping:
        def __getattr__(self, name: str):
            attr = getattr(real, name)
            if name not in STEPS:
                return attr

            def step(*args, **kwargs):
                nonlocal done
                done += 1
                if done == stop_at:
                    raise _Stop
                return attr(*args, **kwargs)

            return step

    namespace["op"] = Stopping()
    with engine.connect() as conn:
        with Operations.context(MigrationContext.configure(conn)), contextlib.suppress(_Stop):
            namespace["upgrade"]()
        conn.commit()


def _schema(engine: sa.Engine) -> dict:
    inspector = sa.inspect(engine)
    return {
        t: (
            sorted(c["name"] for c in inspector.get_columns(t)),
            sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(t)),
        )
        for t in sorted(inspector.get_table_names())
        if t.startswith("modeling_") and t != "modeling_alembic_version"
    }


STOPPED = [(MIGRATION_0005, k) for k in (2, 3, 4, 5, 6)] + [(MIGRATION_0006, k) for k in (2, 3)]


@pytest.mark.parametrize(("path", "stop_at"), STOPPED, ids=[f"{p.stem[:13]}-before-step-{k}" for p, k in STOPPED])
def test_a_migration_that_stopped_between_steps_runs_again(path: Path, stop_at: int, tmp_path: Path) -> None:
    fresh = sa.create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    SCHEMA.migrations.upgrade(fresh)
    db = Database.from_settings(modeling_settings(tmp_path))
    try:
        before = "modeling_0004" if path == MIGRATION_0005 else "modeling_0005"
        SCHEMA.migrations.upgrade(db.engine, before)
        if path == MIGRATION_0005:
            _old_models(db, [("churn", 1)])
        else:
            _old_models(db, [("churn", 1), ("churn", 3)])
        _run_until(db.engine, path, stop_at)
        with db.engine.connect() as conn:
            assert SCHEMA.migrations.current(conn) == before  # the run stopped: its version was never recorded
        assert SCHEMA.migrations.upgrade(db.engine) == SCHEMA.migrations.head()
        assert _schema(db.engine) == _schema(fresh)
        with db.connection() as conn:
            rows = conn.execute(sa.text("SELECT model_name, version, dataset_id FROM modeling_model")).all()
            filled = "d-old" if path == MIGRATION_0005 else ""  # 0005's fill (rows stored at 0005 name none)
            assert {(r.model_name, r.dataset_id) for r in rows} == {("churn", filled)}
        assert _mark(SqlModelingStore(db, tables), "churn") == (1 if path == MIGRATION_0005 else 3)
    finally:
        db.dispose()
        fresh.dispose()
