"""Fixes of the svc_modeling review (jobs across replicas, the score write-back, fresh snapshots).

Replicas are two real services on one database (SQLite file or PostgreSQL), as deployed behind a load balancer.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pandas as pd
import pytest

from svc_common.errors import ConfigError, InvalidArgument, PermissionDenied, Unavailable
from svc_common.pb.qiming.common.v1 import job_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_common.runtime import ServiceRuntime
from svc_modeling import writeback
from svc_modeling.config import ModelingSettings
from svc_modeling.server import build_service
from svc_modeling.snapshot import SnapshotBuilder, snapshot_frame
from svc_modeling.store import SCHEMA
from svc_modeling.writeback import GrpcProfileTagWriter, ScoreBatch
from tests.modeling_helpers import finished, modeling_settings, running_service, upload_frame
from tests.test_ddl_snapshots import offline_migration_sql
from tests.test_modeling_profiles import modeling, suite  # noqa: F401 (fixtures: real svc_collect and svc_profile)

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
    settings = modeling_settings(tmp_path, database_url, job_heartbeat_seconds=0.1, job_orphan_seconds=1.5)
    with running_service(settings) as a:
        stale = _dead_replicas_job(a, heartbeat_age_seconds=120)
        # Its last beat a little ahead: B's start may take seconds on a loaded machine, and the job must still be
        # within orphan_seconds of its beat when B's start sweeps (it was flaky with a beat of "now").
        fresh = _dead_replicas_job(a, heartbeat_age_seconds=-3)
        long_job = a.jobs.submit("train_model", lambda ctx: time.sleep(4.0) or "made/2")
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
    sql = offline_migration_sql(MIGRATION, dialect_name)
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


# -- F17 / F15: the score write-back when svc_profile is down, silent or refusing --------------------------------


def _model(service) -> str:
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"customer_id": [f"C{i}" for i in range(300)], "x": rng.normal(size=300)})
    data["y"] = (rng.random(300) < 1 / (1 + np.exp(-data["x"]))).astype(int)
    dataset = upload_frame(service, "scored", data, customer_id_column="customer_id")
    request = pb.TrainModelRequest(
        dataset_id=dataset.dataset_id,
        model_name="m",
        label_column="y",
        feature_columns=["x"],
        hyperparameters={"n_estimators": "10", "min_child_samples": "5", "calibration": "none"},
    )
    finished(service, service.models.train(request))
    return dataset.dataset_id


@contextlib.contextmanager
def _silent_peer() -> Iterator[str]:
    """A TCP port that takes connections and never answers (a hung svc_profile)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"  # closed again: nothing listens there


def test_scoring_with_svc_profile_down_is_unavailable_at_once(tmp_path) -> None:
    address = _closed_port()
    settings = modeling_settings(tmp_path, profile_address=address, remote_timeout_seconds=2)
    with running_service(settings) as service:
        dataset_id = _model(service)
        request = pb.ScoreCustomersRequest(model_name="m", dataset_id=dataset_id)
        with pytest.raises(Unavailable, match=address) as refused:
            service.score_customers(request)
        assert refused.value.reason == "PEER_UNAVAILABLE"
        # svc_profile going down after the start RPC: the job fails fast, saying so (no 600 s wait for it).
        done = service.jobs.wait(service.models.score_customers(request).job_id, 60)
        assert (done.state, done.error_reason) == (job_pb2.JOB_STATE_FAILED, "PEER_UNAVAILABLE"), done.error_message
        assert address in done.error_message


def test_a_write_back_to_a_silent_svc_profile_is_cancelled_and_does_not_hold_the_stop(tmp_path) -> None:
    with _silent_peer() as address:
        settings = modeling_settings(tmp_path, profile_address=address, remote_timeout_seconds=300)
        runtime = ServiceRuntime.open(SCHEMA, settings)
        service = build_service(runtime)
        asyncio.run(service.start())
        try:
            dataset_id = _model(service)
            request = pb.ScoreCustomersRequest(model_name="m", dataset_id=dataset_id)
            with pytest.raises(Unavailable, match="health"):
                service.score_customers(request)  # the start RPC's probe gives up after 5 s
            first = service.models.score_customers(request)
            _until(lambda: "writing the scores" in service.jobs.get(first.job_id).progress_message)
            service.jobs.cancel(first.job_id)
            assert service.jobs.wait(first.job_id, 30).state == job_pb2.JOB_STATE_CANCELLED
            second = service.models.score_customers(request)
            _until(lambda: "writing the scores" in service.jobs.get(second.job_id).progress_message)
        finally:
            stopping = threading.Thread(target=asyncio.run, args=(service.stop(),), daemon=True)
            stopping.start()
            stopping.join(60)
        assert not stopping.is_alive(), "the stop waited for the write-back"
        assert service.jobs.get(second.job_id).state == job_pb2.JOB_STATE_CANCELLED
        runtime.database.dispose()


@pytest.fixture
def profile_tags(tmp_path: Path) -> Iterator[str]:
    """A real svc_profile TagService in this process, with customers C0..C9."""
    from campaign_helpers import InProcessServer
    from profile_helpers import profile_app, profile_settings, ref

    from svc_common.conditions import to_proto
    from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc
    from svc_profile.server import TagServicer

    with profile_app(profile_settings(tmp_path / "profile", finance_pack=False)) as app:
        for i in range(10):
            app.profiles.upsert_attributes(ref(f"C{i}"), {"branch": to_proto("SH")}, [], "crm", frozenset())
        server = InProcessServer(lambda s: profile_pb2_grpc.add_TagServiceServicer_to_server(TagServicer(app), s))
        try:
            yield server.address
        finally:
            server.close()


def test_a_tag_name_svc_profile_would_refuse_is_invalid_argument_from_the_start_rpc(tmp_path, profile_tags) -> None:
    with running_service(modeling_settings(tmp_path, profile_address=profile_tags)) as service:
        dataset_id = _model(service)
        request = pb.ScoreCustomersRequest(model_name="m", dataset_id=dataset_id, tag_name="Score For Q4!")
        with pytest.raises(InvalidArgument, match="lower_snake_case") as refused:
            service.score_customers(request)
        assert [v.field for v in refused.value.violations] == ["tag_name"]
        # A caller of the model registry itself is refused before any job too (not a job failing after scoring).
        with pytest.raises(InvalidArgument, match="lower_snake_case"):
            service.models.score_customers(request)
        good = finished(
            service, service.score_customers(pb.ScoreCustomersRequest(model_name="m", dataset_id=dataset_id))
        )
        assert good.result_name
        # Over gRPC: the ScoreCustomers RPC answers INVALID_ARGUMENT itself.
        from campaign_helpers import InProcessServer

        from svc_common.pb.qiming.modeling.v1 import modeling_pb2_grpc as pb_grpc
        from svc_modeling.server import ModelServicer

        server = InProcessServer(lambda s: pb_grpc.add_ModelServiceServicer_to_server(ModelServicer(service), s))
        try:
            with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as answered:
                pb_grpc.ModelServiceStub(channel).ScoreCustomers(request, timeout=30)
            assert answered.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "lower_snake_case" in answered.value.details()
        finally:
            server.close()


def test_svc_profiles_refusal_of_the_write_back_is_not_reported_as_unavailable(profile_tags, monkeypatch) -> None:
    from svc_profile.tags import MAX_WRITES

    monkeypatch.setattr(writeback, "WRITES_PER_MESSAGE", MAX_WRITES + 1)  # svc_profile refuses such a message
    writer = GrpcProfileTagWriter(profile_tags)
    ids = np.array([f"C{i % 10}" for i in range(MAX_WRITES + 1)], dtype=object)
    try:
        with pytest.raises(InvalidArgument, match="INVALID_ARGUMENT: at most") as refused:
            writer.write_scores("churn_score", "churn", 1, iter([ScoreBatch(ids, np.zeros(len(ids)))]))
        assert refused.value.reason == "PEER_REFUSED"
    finally:
        writer.close()


class _DenyingPeer(grpc.GenericRpcHandler):
    """A gRPC peer that refuses every call with PERMISSION_DENIED, as svc_profile behind an authorising proxy."""

    def service(self, handler_call_details):
        async def deny(request, context):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "svc_modeling may not write tags")

        return grpc.unary_unary_rpc_method_handler(deny)


def test_svc_profile_denying_permission_is_permission_denied() -> None:
    from campaign_helpers import InProcessServer

    server = InProcessServer(lambda s: s.add_generic_rpc_handlers((_DenyingPeer(),)))
    writer = GrpcProfileTagWriter(server.address)
    try:
        with pytest.raises(PermissionDenied, match="may not write tags") as refused:
            writer.write_scores("churn_score", "churn", 1, iter([ScoreBatch(np.array(["C1"]), np.ones(1))]))
        assert refused.value.reason == "PEER_REFUSED"
    finally:
        writer.close()
        server.close()


# -- F16: a fresh snapshot of a population that lacks a model's event feature -------------------------------------

NOW_US = 1_780_000_000_000_000
DAY_US = 86_400_000_000


def _builder() -> SnapshotBuilder:
    from collect_helpers import make_event

    builder = SnapshotBuilder(ModelingSettings(), NOW_US)
    builder.add(
        [
            make_event("fund_view", "viewer", occurred_at_us=NOW_US - DAY_US, product_category="fund"),
            make_event("login", "viewer", occurred_at_us=NOW_US - 2 * DAY_US),
            make_event("login", "late", occurred_at_us=NOW_US - DAY_US),
        ]
    )
    return builder


def test_a_population_without_a_models_event_feature_gets_what_training_saw() -> None:
    wanted = ["views.fund", "count.login.90d", "trade_count", "first_trade_at"]
    frame = snapshot_frame(_builder(), ["late"], {}, wanted)
    row = frame.data.iloc[0]
    assert (row["views.fund"], row["count.login.90d"], row["trade_count"]) == (0, 1, 0)
    assert pd.isna(row["first_trade_at"])  # a time nobody has: missing, as in a training snapshot
    # The same customers as part of a larger population: the same values.
    both = snapshot_frame(_builder(), ["late", "viewer"], {}, wanted).data.set_index("customer_id")
    assert list(both.loc["late", ["views.fund", "count.login.90d", "trade_count"]]) == [0, 1, 0]
    assert both.loc["viewer", "views.fund"] == 1


def test_a_feature_nobody_in_the_log_has_is_still_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"views\.fnud") as refused:
        snapshot_frame(_builder(), ["late"], {}, ["views.fund", "views.fnud"], field_name="features")
    assert [v.field for v in refused.value.violations] == ["features"]


def test_scoring_a_segment_whose_customers_lack_a_feature_through_real_services(modeling, suite) -> None:  # noqa: F811
    """svc_collect and svc_profile processes (the fixtures of test_modeling_profiles): segment only_late holds the
    one customer who never viewed a fund; the model uses views.fund."""
    from svc_common.pb.qiming.common.v1 import types_pb2
    from svc_common.pb.qiming.profile.v1 import profile_pb2 as ppb
    from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pgrpc

    _, profile = suite
    with grpc.insecure_channel(profile.address) as channel:
        segments = pgrpc.SegmentServiceStub(channel)
        segment = ppb.Segment(segment_id="only_late", static_list=ppb.StaticSegment(source="test"))
        segments.CreateSegment(ppb.CreateSegmentRequest(segment=segment), timeout=10)
        late = types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value="late")
        members = ppb.SetStaticMembersRequest(segment_id="only_late", replace=True, users=[late])
        segments.SetStaticMembers(iter([members]), timeout=30)
    rng = np.random.default_rng(0)
    data = pd.DataFrame(
        {
            "customer_id": [f"u{i}" for i in range(400)],
            "views.fund": rng.integers(0, 4, 400),
            "count.login.90d": rng.integers(0, 9, 400),
        }
    )
    data["y"] = (rng.random(400) < 0.2 + 0.1 * data["views.fund"]).astype(int)
    dataset = upload_frame(modeling, "viewers", data, customer_id_column="customer_id")
    request = pb.TrainModelRequest(
        model_name="viewer",
        dataset_id=dataset.dataset_id,
        label_column="y",
        feature_columns=["views.fund", "count.login.90d"],
        hyperparameters={"n_estimators": "20", "min_child_samples": "5", "calibration": "none"},
    )
    finished(modeling, modeling.models.train(request))
    job = modeling.score_customers(pb.ScoreCustomersRequest(model_name="viewer", segment_id="only_late"))
    done = finished(modeling, job, 120)
    _, scores = modeling.catalog.load(done.result_name)
    assert list(scores.data["customer_id"]) == ["late"]


def test_a_read_of_a_silent_event_log_is_cancelled_with_its_job(tmp_path) -> None:
    from svc_modeling.remote import LogClient

    with _silent_peer() as address, running_service(modeling_settings(tmp_path)) as service:
        log = LogClient(address, timeout_seconds=300)
        started = threading.Event()

        def read(ctx) -> str:
            started.set()
            return str(sum(len(batch) for batch in log.events()))

        job = service.jobs.submit("build_from_profiles", read)
        assert started.wait(10)
        time.sleep(0.5)  # inside the call
        service.jobs.cancel(job.job_id)
        # At once, not when gRPC gives up connecting (about 20 s) or at remote_timeout_seconds.
        assert service.jobs.wait(job.job_id, 10).state == job_pb2.JOB_STATE_CANCELLED
        log.close()


def test_orphan_time_shorter_than_three_heartbeats_is_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match="job_orphan_seconds"):
        modeling_settings(tmp_path, job_heartbeat_seconds=30, job_orphan_seconds=60)


@contextlib.contextmanager
def _another_writer(settings) -> Iterator[None]:
    """Another connection holding the SQLite file's write lock (a long transaction elsewhere) while the block runs."""
    path = settings.resolved_database_url().split("sqlite:///", 1)[1]
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("COMMIT")
        other.close()


def test_a_process_never_fails_its_own_running_job_as_orphaned(tmp_path) -> None:
    """A heartbeat write that waited on a busy database longer than job_orphan_seconds made the process's own orphan
    scan fail its live job (ABORTED), whose real end was then dropped."""
    settings = modeling_settings(tmp_path, job_heartbeat_seconds=0.2, job_orphan_seconds=0.7)
    with running_service(settings) as service:
        started = threading.Event()

        def work(ctx):
            started.set()
            end = time.monotonic() + 3.0
            while time.monotonic() < end:
                ctx.progress(10, "working")
                time.sleep(0.02)
            return "made/1"

        job = service.jobs.submit("train_model", work)
        assert started.wait(10)
        time.sleep(0.3)
        # Another writer (a long transaction: a big dataset stored, another process on the file) holds the lock.
        with _another_writer(settings):
            time.sleep(1.2)
        done = service.jobs.wait(job.job_id, 30)
        assert job_pb2.JobState.Name(done.state) == "JOB_STATE_SUCCEEDED", (done.error_reason, done.error_message)


def test_a_job_whose_end_could_not_be_written_is_failed_while_others_run(tmp_path) -> None:
    """Heartbeats renewed every unfinished row of the process, so a job whose end could not be written stayed RUNNING
    as long as another job of the process ran; the keeper now fails such a row (its run has no flag left)."""
    settings = modeling_settings(
        tmp_path, job_heartbeat_seconds=0.1, job_orphan_seconds=0.4, job_workers=2, sqlite_busy_timeout_millis=50
    )
    with running_service(settings) as service:
        go, b_running = threading.Event(), threading.Event()
        a = service.jobs.submit("train_model", lambda ctx: "made/a" if go.wait(30) else "")

        def long_b(ctx):
            b_running.set()
            time.sleep(6)
            return "made/b"

        b = service.jobs.submit("train_model", long_b)
        assert b_running.wait(10)
        time.sleep(0.3)
        with _another_writer(settings):
            go.set()  # A ends now: its end cannot be written (database is locked)
            time.sleep(0.3)
        time.sleep(2.0)  # 5 x job_orphan_seconds; B still runs
        assert service.jobs.get(b.job_id).state == job_pb2.JOB_STATE_RUNNING
        state = job_pb2.JobState.Name(service.jobs.get(a.job_id).state)
        assert state != "JOB_STATE_RUNNING", "job A's thread is gone, yet its row is kept RUNNING by B's heartbeats"
