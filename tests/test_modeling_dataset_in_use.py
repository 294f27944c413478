"""A dataset in use is not deleted: DeleteDataset refuses with FAILED_PRECONDITION naming the model versions, driver
analyses and pending or running jobs that use it (a few of each and how many), and deleting those (DeleteModel,
DeleteDriverAnalysis, the job's end or cancel) then allows it. Over real gRPC in a real process, and race-safe on
SQLite and PostgreSQL: a job stored while the dataset is being deleted either holds the dataset (the delete is
refused) or finds it gone (NOT_FOUND); it never points to a deleted dataset."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from modeling_helpers import finished, modeling_settings, running_service, upload_frame
from test_ddl_snapshots import offline_migration_sql
from test_modeling_grpc import upload, watch_to_end

from svc_common.db import Database
from svc_common.errors import FailedPrecondition, NotFound
from svc_common.pb.qiming.common.v1 import job_pb2, types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_common.pb.qiming.modeling.v1 import modeling_pb2_grpc as pb_grpc
from svc_common.process import ServerProcess
from svc_modeling.store import SCHEMA

MIGRATION = Path(__file__).parent.parent / "svc_modeling/store/migrations/versions/modeling_0005_dataset_users.py"


def csv_data(n: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(4)})
    data["y"] = (rng.random(n) < 1 / (1 + np.exp(-data["x0"] - data["x1"]))).astype(int)
    return data.to_csv(index=False).encode()


@pytest.fixture(scope="module")
def channel(tmp_path_factory):
    env = {"QIMING_MODELING_JOB_WORKERS": "1"}
    with (
        ServerProcess("modeling", work_dir=tmp_path_factory.mktemp("in_use"), env=env) as process,
        grpc.insecure_channel(process.address) as ch,
    ):
        yield ch


def refused(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=30)
    return caught.value


def train(channel, dataset_id: str, name: str, **hyperparameters: str) -> job_pb2.Job:
    request = pb.TrainModelRequest(
        dataset_id=dataset_id, model_name=name, label_column="y", hyperparameters=hyperparameters
    )
    return pb_grpc.ModelServiceStub(channel).TrainModel(request, timeout=30).job


def test_models_and_analyses_keep_their_dataset_until_they_are_deleted(channel) -> None:
    datasets, models = pb_grpc.DatasetServiceStub(channel), pb_grpc.ModelServiceStub(channel)
    causal, jobs = pb_grpc.CausalServiceStub(channel), pb_grpc.JobServiceStub(channel)
    dataset = upload(datasets, "in_use", csv_data(600)).dataset
    delete = pb.DeleteDatasetRequest(dataset_id=dataset.dataset_id)
    for _ in range(2):
        assert watch_to_end(jobs, train(channel, dataset.dataset_id, "churn", n_estimators="20")).state == (
            job_pb2.JOB_STATE_SUCCEEDED
        )
    error = refused(datasets.DeleteDataset, delete)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"dataset '{dataset.dataset_id}' is in use by 2 model versions (churn v1, churn v2)" in error.details()
    drivers = causal.EstimateDrivers(
        pb.EstimateDriversRequest(dataset_id=dataset.dataset_id, outcome_column="y", factors=["x0"]), timeout=30
    ).job
    analysis_id = watch_to_end(jobs, drivers).result_name
    error = refused(datasets.DeleteDataset, delete)
    assert f"2 model versions (churn v1, churn v2); 1 driver analysis ({analysis_id})" in error.details()
    # the way out, one user at a time
    deleted = models.DeleteModel(pb.DeleteModelRequest(model_name="churn", version=1), timeout=10)
    assert list(deleted.versions) == [1]
    assert "1 model version (churn v2)" in refused(datasets.DeleteDataset, delete).details()
    assert list(models.DeleteModel(pb.DeleteModelRequest(model_name="churn"), timeout=10).versions) == [2]
    assert refused(models.GetModel, pb.GetModelRequest(model_name="churn")).code() == grpc.StatusCode.NOT_FOUND
    assert refused(models.DeleteModel, pb.DeleteModelRequest(model_name="churn")).code() == grpc.StatusCode.NOT_FOUND
    details = refused(datasets.DeleteDataset, delete).details()
    assert "model" not in details.split(":")[0] and f"1 driver analysis ({analysis_id})" in details
    causal.DeleteDriverAnalysis(pb.DeleteDriverAnalysisRequest(analysis_id=analysis_id), timeout=10)
    gone = refused(causal.DeleteDriverAnalysis, pb.DeleteDriverAnalysisRequest(analysis_id=analysis_id))
    assert gone.code() == grpc.StatusCode.NOT_FOUND
    datasets.DeleteDataset(delete, timeout=10)
    assert refused(datasets.GetDataset, pb.GetDatasetRequest(dataset_id=dataset.dataset_id)).code() == (
        grpc.StatusCode.NOT_FOUND
    )
    assert refused(datasets.DeleteDataset, delete).code() == grpc.StatusCode.NOT_FOUND


def test_a_running_or_queued_job_keeps_its_dataset(channel) -> None:
    datasets, jobs = pb_grpc.DatasetServiceStub(channel), pb_grpc.JobServiceStub(channel)
    busy = upload(datasets, "busy", csv_data(20_000, seed=1)).dataset
    queued = upload(datasets, "queued", csv_data(600, seed=2)).dataset
    # one worker: a long training occupies it, the second job waits behind it
    slow = {"n_estimators": "5000", "num_leaves": "2048", "min_child_samples": "1", "learning_rate": "0.0001"}
    running = train(channel, busy.dataset_id, "slow", **slow)
    waiting = train(channel, queued.dataset_id, "waiting")
    for dataset, job in ((busy, running), (queued, waiting)):
        error = refused(datasets.DeleteDataset, pb.DeleteDatasetRequest(dataset_id=dataset.dataset_id))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert f"1 pending or running job ({job.job_id} train_model " in error.details(), error.details()
    assert (
        "train_model pending)"
        in refused(datasets.DeleteDataset, pb.DeleteDatasetRequest(dataset_id=queued.dataset_id)).details()
    )
    for job in (waiting, running):
        jobs.CancelJob(pb.CancelJobRequest(job_id=job.job_id), timeout=10)
    assert watch_to_end(jobs, running).state == job_pb2.JOB_STATE_CANCELLED
    assert watch_to_end(jobs, waiting).state == job_pb2.JOB_STATE_CANCELLED
    for dataset in (busy, queued):  # an ended job no longer holds its dataset
        datasets.DeleteDataset(pb.DeleteDatasetRequest(dataset_id=dataset.dataset_id), timeout=10)
    # a job on a deleted dataset is refused at its start
    error = refused(
        pb_grpc.ModelServiceStub(channel).TrainModel,
        pb.TrainModelRequest(dataset_id=busy.dataset_id, model_name="late", label_column="y"),
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_the_message_lists_a_few_and_counts_the_rest(channel) -> None:
    datasets, jobs = pb_grpc.DatasetServiceStub(channel), pb_grpc.JobServiceStub(channel)
    dataset = upload(datasets, "popular", csv_data(600, seed=3)).dataset
    for _ in range(7):
        assert watch_to_end(jobs, train(channel, dataset.dataset_id, "many", n_estimators="5")).state == (
            job_pb2.JOB_STATE_SUCCEEDED
        )
    details = refused(datasets.DeleteDataset, pb.DeleteDatasetRequest(dataset_id=dataset.dataset_id)).details()
    assert "7 model versions (many v1, many v2, many v3, many v4, many v5, and 2 more)" in details
    assert "ModelService.DeleteModel" in details


# -- races, on SQLite and PostgreSQL ----------------------------------------------------------------------------


def _paused(store, method: str, held: threading.Event, go: threading.Event) -> None:
    """Make ``store.<method>`` (called inside its transaction) wait for ``go`` once it has run."""
    original = getattr(store, method)

    def pausing(*args, **kwargs):
        result = original(*args, **kwargs)
        held.set()
        assert go.wait(30)
        return result

    setattr(store, method, pausing)


def _in_thread(function) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = function()
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def _dataset(service) -> pb.Dataset:
    rng = np.random.default_rng(0)
    return upload_frame(service, "raced", pd.DataFrame({"x": rng.normal(size=50), "y": rng.integers(0, 2, 50)}))


def test_a_job_stored_during_the_delete_keeps_the_dataset(database_url: str, tmp_path: Path) -> None:
    with running_service(modeling_settings(tmp_path, database_url)) as service:
        dataset = _dataset(service)
        held, go, release = threading.Event(), threading.Event(), threading.Event()
        _paused(service.store, "_hold_datasets", held, go)  # the job's transaction: dataset held, job not yet stored
        submit, submitted = _in_thread(
            lambda: service.jobs.submit(
                "train_model", lambda ctx: "x" if release.wait(30) else "", "", [dataset.dataset_id]
            )
        )
        assert held.wait(30)
        delete, deleted = _in_thread(lambda: service.catalog.delete(dataset.dataset_id))
        time.sleep(0.5)  # the delete now waits for the job's transaction (PostgreSQL: the row lock; SQLite: the writer)
        go.set()
        submit.join(30)
        delete.join(30)
        release.set()
        job = submitted["value"]
        assert isinstance(deleted.get("error"), FailedPrecondition), deleted
        assert job.job_id in deleted["error"].message
        assert service.catalog.get(dataset.dataset_id).dataset_id == dataset.dataset_id
        assert service.jobs.wait(job.job_id, 30).state == job_pb2.JOB_STATE_SUCCEEDED


def test_a_job_stored_after_the_delete_began_finds_the_dataset_gone(database_url: str, tmp_path: Path) -> None:
    with running_service(modeling_settings(tmp_path, database_url)) as service:
        dataset = _dataset(service)
        held, go = threading.Event(), threading.Event()
        _paused(service.store, "_dataset_users", held, go)  # the delete's transaction: checked, not yet deleted
        delete, deleted = _in_thread(lambda: service.catalog.delete(dataset.dataset_id))
        assert held.wait(30)
        submit, submitted = _in_thread(
            lambda: service.jobs.submit("train_model", lambda ctx: "x", "", [dataset.dataset_id])
        )
        time.sleep(0.5)  # the job's transaction now waits for the delete's
        go.set()
        delete.join(30)
        submit.join(30)
        assert deleted == {"value": None}
        assert isinstance(submitted.get("error"), NotFound), submitted
        assert dataset.dataset_id in submitted["error"].message
        assert service.jobs.list([], "train_model", None, 10) == []
        with pytest.raises(NotFound):
            service.catalog.get(dataset.dataset_id)


def test_a_model_or_analysis_is_not_stored_for_a_deleted_dataset(tmp_path: Path) -> None:
    with running_service(modeling_settings(tmp_path)) as service:
        dataset = _dataset(service)
        service.catalog.delete(dataset.dataset_id)
        version = pb.ModelVersion(model_name="orphan", dataset_id=dataset.dataset_id, task=pb.MODEL_TASK_PROPENSITY)
        with pytest.raises(NotFound, match=dataset.dataset_id):
            service.models.register(version, {"artifact": 1})
        with pytest.raises(NotFound, match=dataset.dataset_id):
            service.store.add_analysis("a1", dataset.dataset_id, {}, b"")


# -- the migration -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect_name", ["opengauss", "dm", "postgresql", "sqlite"])
def test_the_dataset_users_migration_compiles_for_every_database(dialect_name: str) -> None:
    sql = offline_migration_sql(MIGRATION, dialect_name)
    assert "ALTER TABLE modeling_model ADD" in sql and "dataset_id" in sql
    assert "CREATE TABLE modeling_job_dataset" in sql
    assert "CREATE INDEX ix_modeling_job_dataset_dataset ON modeling_job_dataset (dataset_id, job_id)" in sql
    assert "DROP TABLE modeling_job_dataset" in offline_migration_sql(MIGRATION, dialect_name, "downgrade")


def test_the_migration_fills_in_the_dataset_of_models_of_before(database_url: str, tmp_path: Path) -> None:
    settings = modeling_settings(tmp_path, database_url)
    db = Database.from_settings(settings)
    migrations = SCHEMA.migrations
    try:
        assert migrations.upgrade(db.engine, "modeling_0004") == "modeling_0004"
        insert = sa.text(
            "INSERT INTO modeling_model (model_name, version, task, stage, body, artifact_blob_id, created_at)"
            " VALUES (:n, :v, 'PROPENSITY', 'CANDIDATE', :b, 'blob', '2026-12-01 00:00:00+00:00')"
        )
        with db.connection(write=True) as conn:
            conn.execute(insert, {"n": "old", "v": 1, "b": '{"dataset_id":"d-old","model_name":"old"}'})
            conn.execute(insert, {"n": "old", "v": 2, "b": '{"model_name":"old"}'})
        assert migrations.upgrade(db.engine) == migrations.head()
        with db.connection() as conn:
            rows = conn.execute(sa.text("SELECT version, dataset_id FROM modeling_model ORDER BY version")).all()
        assert [tuple(r) for r in rows] == [(1, "d-old"), (2, "")]
    finally:
        db.dispose()


def test_a_deleted_version_number_is_not_given_again_nor_served_from_a_cache(tmp_path: Path) -> None:
    """Deleting the latest version does not free its number: the next training gets the next one, and a replica that
    still holds the deleted model in its cache does not answer with it."""
    settings = modeling_settings(tmp_path)
    rng = np.random.default_rng(4)
    x = rng.normal(size=800)

    def train_on(service, sign: float) -> None:
        data = pd.DataFrame({"x": x, "y": (rng.random(800) < 1 / (1 + np.exp(-3 * sign * x))).astype(int)})
        dataset = upload_frame(service, f"sign{sign}", data)
        request = pb.TrainModelRequest(dataset_id=dataset.dataset_id, model_name="flip", label_column="y")
        finished(service, service.models.train(request))

    def leans_up(service, version: int) -> bool:
        rows = [pb.Row(values=[types_pb2.Value(double_value=v)]) for v in (-2.0, 2.0)]
        request = pb.PredictRequest(model_name="flip", version=version, columns=["x"], rows=rows)
        scores = service.models.predict(request)
        return scores.scores[1] > scores.scores[0]

    with running_service(settings) as a, running_service(settings) as b:
        train_on(a, 1.0)
        assert leans_up(a, 1)  # replica A now holds version 1 in its cache
        assert b.models.delete("flip", 1) == [1]
        train_on(b, -1.0)
        assert b.models.get("flip").version == 2  # the number is not given again
        for replica in (a, b):
            with pytest.raises(NotFound, match="version 1 of model 'flip'"):
                leans_up(replica, 1)
            assert not leans_up(replica, 2) and not leans_up(replica, 0)
