"""Race-safety of the in-use refusals on SQLite and PostgreSQL (each transaction paused while it holds its lock): a
job or a review schedule stored while a model version, a dataset or an analysis is being deleted either holds it (the
delete is refused) or finds it gone (NOT_FOUND); it never names a deleted row. Also the lock statements' forms on
every server database, and migration modeling_0007 (compiled for every database, filling what the schedules of before
hold, run again after a run that stopped between its steps)."""

from __future__ import annotations

import datetime as dt
import threading
import time
import types
from pathlib import Path

import pytest
import sqlalchemy as sa
from modeling_helpers import modeling_settings, running_service, upload_frame
from test_ddl_snapshots import offline_migration_sql
from test_modeling_dataset_in_use import _in_thread, _paused
from test_modeling_model_in_use import _analysis, _customers, _register
from test_modeling_version_numbers import _compiled, _Recording, _run_until, _schema

from svc_common.db import Database
from svc_common.errors import FailedPrecondition, NotFound
from svc_common.pb.qiming.common.v1 import job_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_modeling.store import SCHEMA, SqlModelingStore, tables

MIGRATION = Path(__file__).parent.parent / "svc_modeling/store/migrations/versions/modeling_0007_model_users.py"
SCHEDULE = pb.ReviewSchedule(model_names=["churn"], cron="0 3 * * *")


def _race(first, second, service, method: str) -> tuple[dict, dict]:
    """Run ``first`` until it has run ``service.store.<method>`` (its lock taken, its transaction open), start
    ``second`` (which then waits for that transaction), let ``first`` commit; both outcomes."""
    held, go = threading.Event(), threading.Event()
    _paused(service.store, method, held, go)
    a, got_a = _in_thread(first)
    assert held.wait(30)
    b, got_b = _in_thread(second)
    time.sleep(0.5)  # the second now waits (PostgreSQL: the row lock; SQLite: the writer lock)
    go.set()
    a.join(30)
    b.join(30)
    return got_a, got_b


def _job(service, models=(), analyses=()):
    return lambda: service.jobs.submit("score_customers", lambda ctx: "x", "", models=models, analysis_ids=analyses)


def test_a_job_stored_during_a_model_delete_keeps_the_version(database_url: str, tmp_path: Path) -> None:
    with running_service(modeling_settings(tmp_path, database_url)) as service:
        dataset = upload_frame(service, "d", _customers())
        release = threading.Event()
        assert _register(service, "churn", dataset.dataset_id) == 1
        submit = lambda: service.jobs.submit(  # noqa: E731
            "score_customers", lambda ctx: "x" if release.wait(30) else "", "", models=[("churn", 1)]
        )
        submitted, deleted = _race(submit, lambda: service.models.delete("churn", 1), service, "_hold_models")
        release.set()
        job = submitted["value"]
        assert isinstance(deleted.get("error"), FailedPrecondition), deleted
        assert f"({job.job_id} score_customers" in deleted["error"].message
        assert service.jobs.wait(job.job_id, 30).state == job_pb2.JOB_STATE_SUCCEEDED
        assert service.models.get("churn", 1).version == 1


def test_a_job_stored_after_a_model_delete_began_finds_the_version_gone(database_url: str, tmp_path: Path) -> None:
    with running_service(modeling_settings(tmp_path, database_url)) as service:
        dataset = upload_frame(service, "d", _customers())
        assert _register(service, "churn", dataset.dataset_id) == 1
        delete = lambda: service.models.delete("churn", 1)  # noqa: E731
        deleted, submitted = _race(delete, _job(service, models=[("churn", 1)]), service, "_model_users")
        assert deleted == {"value": [1]}
        assert isinstance(submitted.get("error"), NotFound), submitted
        assert "no version 1 of model 'churn': it was deleted before the job could start" in submitted["error"].message
        assert service.jobs.list([], "score_customers", None, 10) == []


def test_a_schedule_and_a_model_delete_at_once(database_url: str, tmp_path: Path) -> None:
    with running_service(modeling_settings(tmp_path, database_url)) as service:
        dataset = upload_frame(service, "d", _customers())
        _register(service, "churn", dataset.dataset_id)
        create = lambda: service.review.create_schedule(SCHEDULE)  # noqa: E731
        delete = lambda: service.models.delete("churn", 0)  # noqa: E731
        # the schedule holds the model's rows first: the delete waits, then sees it
        created, deleted = _race(create, delete, service, "_hold_model_names")
        schedule = created["value"]
        assert isinstance(deleted.get("error"), FailedPrecondition), deleted
        assert f"1 review schedule ({schedule.schedule_id})" in deleted["error"].message
        service.review.delete_schedule(schedule.schedule_id)
        # the delete locks the rows first: the schedule waits, then finds the model gone
        deleted, created = _race(delete, create, service, "_model_users")
        assert deleted == {"value": [1]}
        assert isinstance(created.get("error"), NotFound), created
        assert "no model 'churn': it was deleted before the review schedule could be stored" in (
            created["error"].message
        )
        assert service.review.list_schedules("", 10) == []


def test_a_schedule_and_a_dataset_delete_at_once(database_url: str, tmp_path: Path) -> None:
    with running_service(modeling_settings(tmp_path, database_url)) as service:
        home = upload_frame(service, "home", _customers())
        _register(service, "churn", home.dataset_id)
        fresh = upload_frame(service, "fresh", _customers(seed=1))
        schedule = pb.ReviewSchedule(model_names=["churn"], cron="0 3 * * *", refresh_dataset_ids=[fresh.dataset_id])
        create = lambda: service.review.create_schedule(schedule)  # noqa: E731
        delete = lambda: service.catalog.delete(fresh.dataset_id)  # noqa: E731
        created, deleted = _race(create, delete, service, "_hold_datasets")
        assert isinstance(deleted.get("error"), FailedPrecondition), deleted
        assert f"1 review schedule ({created['value'].schedule_id})" in deleted["error"].message
        service.review.delete_schedule(created["value"].schedule_id)
        deleted, created = _race(delete, create, service, "_dataset_users")
        assert deleted == {"value": None}
        assert isinstance(created.get("error"), NotFound), created
        assert f"no dataset '{fresh.dataset_id}'" in created["error"].message


def test_a_schedule_and_an_analysis_delete_at_once(database_url: str, tmp_path: Path) -> None:
    with running_service(modeling_settings(tmp_path, database_url)) as service:
        analysis_id = _analysis(service)
        schedule = pb.ReviewSchedule(analysis_ids=[analysis_id], cron="0 3 * * *")
        create = lambda: service.review.create_schedule(schedule)  # noqa: E731
        delete = lambda: service.drivers.delete(analysis_id)  # noqa: E731
        created, deleted = _race(create, delete, service, "_hold_analyses")
        assert isinstance(deleted.get("error"), FailedPrecondition), deleted
        assert deleted["error"].reason == "ANALYSIS_IN_USE"
        service.review.delete_schedule(created["value"].schedule_id)
        deleted, created = _race(delete, create, service, "_schedules_naming")
        assert deleted == {"value": None}
        assert isinstance(created.get("error"), NotFound), created
        assert f"no driver analysis '{analysis_id}'" in created["error"].message


# -- the lock statements on openGauss and Dameng ------------------------------------------------------------------


class _Rows(_Recording):
    """As :class:`_Recording`, and every model and analysis asked for exists (model churn v1 as a candidate)."""

    def __iter__(self):
        return iter([types.SimpleNamespace(model_name="churn", version=1)])

    def scalars(self):
        return ["d1", "d2", "a1"]

    def all(self):
        return [types.SimpleNamespace(version=1, stage="CANDIDATE", artifact_blob_id="b1")]

    def scalar_one_or_none(self):
        return "b1"


SHARED = {"postgresql": "FOR SHARE", "opengauss": "FOR SHARE", "dm": "FOR UPDATE"}  # Dameng: no shared row lock


@pytest.mark.parametrize("dialect_name", list(SHARED))
def test_the_new_lock_statements_compile_on_every_server_database(dialect_name: str) -> None:
    db = _Rows(dialect_name)
    store = SqlModelingStore(db, tables)  # type: ignore[arg-type]
    store.add_job({"job_id": "j1"}, ["d1"], [("churn", 1)], ["a1"])
    store.add_schedule(
        "s1", {}, dt.datetime.now(dt.UTC), dataset_ids=["d1"], model_names=["churn"], analysis_ids=["a1"]
    )
    store.delete_model("churn", 1)
    store.set_model_stage("churn", 1, "PRODUCTION")
    store.delete_analysis("a1")
    store.delete_schedule("s1")
    locks = [_compiled(s, dialect_name) for s in db.statements if getattr(s, "_for_update_arg", None) is not None]
    forms = [(sql.split(" FROM ")[1].split()[0], sql.rsplit(" FOR ", 1)[1]) for sql in locks]
    shared = SHARED[dialect_name].removeprefix("FOR ")
    assert forms == [
        ("modeling_dataset", shared),  # a job holds its datasets, model versions and analyses
        ("modeling_model", shared),
        ("modeling_analysis", shared),
        ("modeling_dataset", shared),  # a schedule holds what it names: datasets, every version of its models, analyses
        ("modeling_model", shared),
        ("modeling_analysis", shared),
        ("modeling_model", "UPDATE"),  # a model's delete and a stage change lock every version of the name
        ("modeling_model", "UPDATE"),
        ("modeling_analysis", "UPDATE"),  # the delete of an analysis
        ("modeling_review_schedule", "UPDATE"),  # the delete of a schedule
    ], locks
    assert "modeling_model.model_name = " in locks[1] and "modeling_model.version = " in locks[1], locks[1]
    inserted = {s.table.name for s in db.statements if isinstance(s, sa.sql.Insert)}
    assert {"modeling_job_model", "modeling_job_analysis", "modeling_schedule_model"} <= inserted


# -- modeling_0007 -------------------------------------------------------------------------------------------------


NEW_TABLES = {
    "modeling_job_model": "ix_modeling_job_model_model ON modeling_job_model (model_name, version, job_id)",
    "modeling_job_analysis": "ix_modeling_job_analysis_analysis ON modeling_job_analysis (analysis_id, job_id)",
    "modeling_schedule_dataset": (
        "ix_modeling_schedule_dataset_dataset ON modeling_schedule_dataset (dataset_id, schedule_id)"
    ),
    "modeling_schedule_model": "ix_modeling_schedule_model_model ON modeling_schedule_model (model_name, schedule_id)",
    "modeling_schedule_analysis": (
        "ix_modeling_schedule_analysis_analysis ON modeling_schedule_analysis (analysis_id, schedule_id)"
    ),
}


@pytest.mark.parametrize("dialect_name", ["opengauss", "dm", "postgresql", "sqlite"])
def test_the_model_users_migration_compiles_for_every_database(dialect_name: str) -> None:
    sql = offline_migration_sql(MIGRATION, dialect_name)
    for table, index in NEW_TABLES.items():
        assert f"CREATE TABLE {table} (" in sql and f"CREATE INDEX {index}" in sql
    assert "PRIMARY KEY (job_id, model_name, version)" in sql
    down = offline_migration_sql(MIGRATION, dialect_name, "downgrade")
    assert all(f"DROP TABLE {table}" in down for table in NEW_TABLES)


def _rows_of_before(db: Database) -> None:
    """Stored at modeling_0006: datasets d1, d2, model churn v1, analysis a1, and two schedules naming them, one also
    naming a dataset, a model and an analysis that are gone."""
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    with db.connection(write=True) as conn:
        for dataset_id in ("d1", "d2"):
            conn.execute(
                sa.insert(tables["dataset"]).values(
                    dataset_id=dataset_id, name=dataset_id, description="", column_specs=[], row_count=0,
                    origin="import", lineage={}, customer_id_column="", content_digest="", blob_id="b",
                    created_at=now, created_by="",
                )
            )  # fmt: skip
        conn.execute(
            sa.insert(tables["model"]).values(
                model_name="churn", version=1, task="PROPENSITY", stage="CANDIDATE", body={}, artifact_blob_id="b",
                created_at=now, dataset_id="d1",
            )
        )  # fmt: skip
        conn.execute(
            sa.insert(tables["analysis"]).values(
                analysis_id="a1", dataset_id="d1", body={}, artifact_blob_id="b", created_at=now
            )
        )
        for schedule_id, body in (
            ("s1", {"model_names": ["churn"], "refresh_dataset_ids": ["d2"], "analysis_ids": ["a1"]}),
            ("s2", {"model_names": ["churn", "gone"], "refresh_dataset_ids": ["d2", "dx"], "analysis_ids": ["ax"]}),
        ):
            conn.execute(
                sa.insert(tables["schedule"]).values(
                    schedule_id=schedule_id, body=body, next_run_at=now, created_at=now
                )
            )


def _held(db: Database) -> dict[str, set]:
    with db.connection() as conn:
        return {
            name: {tuple(r) for r in conn.execute(sa.select(tables[name]))}
            for name in ("schedule_dataset", "schedule_model", "schedule_analysis")
        }


HELD = {
    "schedule_dataset": {("s1", "d2"), ("s2", "d2")},
    "schedule_model": {("s1", "churn"), ("s2", "churn")},
    "schedule_analysis": {("s1", "a1")},
}


def test_the_migration_holds_what_the_schedules_of_before_name(database_url: str, tmp_path: Path) -> None:
    settings = modeling_settings(tmp_path, database_url)
    db = Database.from_settings(settings)
    try:
        assert SCHEMA.migrations.upgrade(db.engine, "modeling_0006") == "modeling_0006"
        _rows_of_before(db)
        assert SCHEMA.migrations.upgrade(db.engine) == SCHEMA.migrations.head()
        assert _held(db) == HELD
        store = SqlModelingStore(db, tables)
        assert store.delete_dataset("d2")["counts"]["schedules"] == 2
        assert store.delete_model("churn", 1)["counts"]["schedules"] == 2
        assert store.delete_analysis("a1")["counts"]["schedules"] == 1
        assert store.delete_schedule("s1") and store.delete_schedule("s2")
        assert store.delete_analysis("a1")["counts"]["schedules"] == 0
    finally:
        db.dispose()


STOPPED = (2, 5, 8, 11)  # 11: every step done, the version never recorded


@pytest.mark.parametrize("stop_at", STOPPED, ids=[f"before-step-{k}" for k in STOPPED])
def test_the_migration_runs_again_after_it_stopped_between_steps(stop_at: int, tmp_path: Path) -> None:
    fresh = sa.create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    SCHEMA.migrations.upgrade(fresh)
    db = Database.from_settings(modeling_settings(tmp_path))
    try:
        SCHEMA.migrations.upgrade(db.engine, "modeling_0006")
        _rows_of_before(db)
        _run_until(db.engine, MIGRATION, stop_at)
        with db.engine.connect() as conn:
            assert SCHEMA.migrations.current(conn) == "modeling_0006"
        assert SCHEMA.migrations.upgrade(db.engine) == SCHEMA.migrations.head()
        assert _schema(db.engine) == _schema(fresh)
        assert _held(db) == HELD  # filled once, whether or not the stopped run had filled
    finally:
        db.dispose()
        fresh.dispose()
