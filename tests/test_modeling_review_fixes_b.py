"""Fixes of the svc_modeling review (jobs across replicas, the score write-back, fresh snapshots).

Replicas are two real services on one database (SQLite file or PostgreSQL), as deployed behind a load balancer.
"""

from __future__ import annotations

import datetime as dt
import io
import threading
import time
import uuid
from pathlib import Path

import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from svc_common.pb.qiming.common.v1 import job_pb2
from tests.modeling_helpers import modeling_settings, running_service
from tests.test_ddl_snapshots import make_dialect

SUCCEEDED, RUNNING = job_pb2.JOB_STATE_SUCCEEDED, job_pb2.JOB_STATE_RUNNING
MIGRATION = (
    Path(__file__).parent.parent / "svc_modeling" / "store" / "migrations" / "versions" / "modeling_0004_job_owner.py"
)


def _until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _state(service, job_id: str) -> str:
    return job_pb2.JobState.Name(service.jobs.get(job_id).state)


# -- F1: a replica's start and stop leave the other replicas' jobs alone -------------------------------------------


def test_a_replica_starting_and_stopping_leaves_another_replicas_running_job_alone(database_url: str, tmp_path) -> None:
    settings = modeling_settings(tmp_path, database_url)
    release = threading.Event()
    with running_service(settings) as a:
        job = a.jobs.submit("train_model", lambda ctx: "made/1" if release.wait(30) else "timed out")
        _until(lambda: a.jobs.get(job.job_id).state == RUNNING)
        with running_service(settings) as b:  # a rolling deploy: replica B starts...
            assert _state(b, job.job_id) == "JOB_STATE_RUNNING"
        assert _state(a, job.job_id) == "JOB_STATE_RUNNING"  # ...and stops
        release.set()
        done = a.jobs.wait(job.job_id, 30)
        assert (done.state, done.result_name, done.error_reason) == (SUCCEEDED, "made/1", "")


def test_only_jobs_whose_owner_stopped_beating_are_failed(database_url: str, tmp_path) -> None:
    """A dead replica's jobs are failed by a live one (at its start and while it runs); a live replica's job that
    runs far longer than ``job_orphan_seconds`` is not, its heartbeat being renewed."""
    settings = modeling_settings(tmp_path, database_url, job_heartbeat_seconds=0.1, job_orphan_seconds=0.5)
    with running_service(settings) as a:
        stale = _dead_replicas_job(a, heartbeat_age_seconds=120)
        fresh = _dead_replicas_job(a, heartbeat_age_seconds=0)
        long_job = a.jobs.submit("train_model", lambda ctx: time.sleep(2.0) or "made/2")
        with running_service(settings) as b:
            gone = b.jobs.get(stale)
            assert (gone.state, gone.error_reason) == (job_pb2.JOB_STATE_FAILED, "ABORTED")
            assert "start it again" in gone.error_message
            assert _state(b, fresh) == "JOB_STATE_RUNNING"  # its owner beat just now: still alive at B's start
            # Nobody renews it: the keepers fail it once orphan_seconds passed.
            _until(lambda: b.jobs.get(fresh).state == job_pb2.JOB_STATE_FAILED)
            done = a.jobs.wait(long_job.job_id, 30)
            assert (done.state, done.result_name) == (SUCCEEDED, "made/2")


def _dead_replicas_job(service, heartbeat_age_seconds: float) -> str:
    job_id = str(uuid.uuid4())
    now = dt.datetime.now(dt.UTC)
    service.store.add_job(
        {
            "job_id": job_id,
            "kind": "train_model",
            "job_state": "RUNNING",
            "created_at": now,
            "started_at": now,
            "owner_id": str(uuid.uuid4()),
            "heartbeat_at": now - dt.timedelta(seconds=heartbeat_age_seconds),
        }
    )
    return job_id


def test_a_job_whose_end_cannot_be_recorded_is_logged(tmp_path, caplog) -> None:
    """Another replica failed it (its heartbeat went stale): the end is not written over that, and it is logged."""
    with running_service(modeling_settings(tmp_path)) as a:
        release = threading.Event()
        job = a.jobs.submit("train_model", lambda ctx: "made/3" if release.wait(30) else "")
        _until(lambda: a.jobs.get(job.job_id).state == RUNNING)
        a.store.update_job(job.job_id, job_state="FAILED", error_reason="ABORTED")
        with caplog.at_level("WARNING", logger="qiming.modeling.jobs"):
            release.set()
            _until(lambda: any("could not be recorded" in r.getMessage() for r in caplog.records))
        assert a.jobs.get(job.job_id).state == job_pb2.JOB_STATE_FAILED


@pytest.mark.parametrize("dialect_name", ["opengauss", "dm", "postgresql", "sqlite"])
def test_the_job_owner_migration_compiles_for_every_database(dialect_name: str) -> None:
    namespace: dict = {}
    exec(compile(MIGRATION.read_text(encoding="utf-8"), str(MIGRATION), "exec"), namespace)
    buffer = io.StringIO()
    context = MigrationContext.configure(
        dialect=make_dialect(dialect_name), opts={"as_sql": True, "output_buffer": buffer}
    )
    with Operations.context(context):
        namespace["upgrade"]()
    sql = " ".join(buffer.getvalue().split())
    assert "ALTER TABLE modeling_job ADD" in sql and "owner_id" in sql and "heartbeat_at" in sql
    assert "CREATE INDEX ix_modeling_job_state ON modeling_job (job_state, owner_id)" in sql


# -- F2: CancelJob through any replica ---------------------------------------------------------------------------


def test_cancel_through_another_replica_stops_the_running_job(database_url: str, tmp_path) -> None:
    settings = modeling_settings(tmp_path, database_url)
    steps: list[int] = []

    def work(ctx) -> str:
        for i in range(500):
            ctx.progress(i / 5, "step")
            steps.append(i)
            time.sleep(0.02)
        return "made/4"

    with running_service(settings) as a, running_service(settings) as b:
        job = a.jobs.submit("train_model", work)
        _until(lambda: bool(steps))
        b.jobs.cancel(job.job_id)  # the load balancer sent CancelJob to replica B
        done = b.jobs.wait(job.job_id, 30)
        assert done.state == job_pb2.JOB_STATE_CANCELLED, (job_pb2.JobState.Name(done.state), len(steps))
        assert len(steps) < 500 and done.result_name == ""
