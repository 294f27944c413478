"""Recompute jobs kept in profile_job: GetJob answers after a restart; a job whose process died (a stale heartbeat,
or a real SIGKILL mid-run) is claimed by exactly one process and run again, ending SUCCEEDED with every value
under the current rule, or FAILED/INTERRUPTED when its target is gone; progress reaches the table through the
keeper, not per tick; old ended jobs are pruned. On SQLite and PostgreSQL; the statements on all four dialects."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from profile_helpers import profile_app, profile_process, profile_settings, ref, wait_for
from test_ddl_snapshots import make_dialect

from svc_common.conditions import to_proto
from svc_common.errors import NotFound, Unavailable
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import job_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pb_grpc
from svc_profile.jobs import Jobs
from svc_profile.model import now_us
from svc_profile.store import tables
from svc_profile.store._jobs import JobStore

RATINGS = {"R1": "C1", "R2": "C2", "R3": "C3", "R4": "C4", "R5": "C5"}
NOW = dt.datetime.now(dt.UTC)
STALE = NOW - dt.timedelta(hours=1)
RUNNING = job_pb2.JOB_STATE_RUNNING


def at_least(rating: str) -> pb.TagDefinition:
    field = C.FieldRef(source=C.FieldRef.SOURCE_ATTRIBUTE, name="risk_rating")
    condition = C.Condition(comparison=C.Comparison(field=field, operator=C.OPERATOR_GTE, value=to_proto(rating)))
    return pb.TagDefinition(name="risky", condition=condition)


def holders(app: Any) -> dict[str, str]:
    """Profile (by customer id) → the definition version its stored ``risky`` value came from."""
    with app.core.database.connection() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT i.id_value, t.writer_version FROM profile_tag t JOIN profile_identity i "
                "ON i.profile_id = t.profile_id WHERE t.name = 'risky' AND i.id_type = 2"
            )
        )
        return dict(rows.all())


def seed(app: Any) -> None:
    for user, rating in RATINGS.items():
        app.profiles.upsert_attributes(ref(user), {"risk_rating": to_proto(rating)}, [], "crm", frozenset())


def orphan(job_id: str, kind: str, name: str, *, owner: str = "dead-process", heartbeat: Any = STALE) -> dict:
    """The row a process left when it died while running the job."""
    created = heartbeat or STALE
    return {
        "job_id": job_id,
        "kind": kind,
        "result_name": name,
        "state": "RUNNING",
        "progress_percent": 40.0,
        "progress_message": "40000 of 100000 profiles",
        "error_reason": "",
        "error_message": "",
        "created_by": "ops",
        "created_at": created - dt.timedelta(seconds=1),
        "started_at": created - dt.timedelta(seconds=1),
        "finished_at": None,
        "owner_id": owner,
        "heartbeat_at": heartbeat,
    }


def ended(jobs: Jobs, job_id: str) -> job_pb2.Job:
    return wait_for(lambda: (j := jobs.get(job_id)).state != RUNNING and j)


def test_job_statements_compile_for_every_dialect() -> None:
    store = JobStore(None, tables["job"])  # type: ignore[arg-type]
    for dialect_name in ("sqlite", "postgresql", "dm", "opengauss"):
        dialect = make_dialect(dialect_name)
        for name, statement in store.statements().items():
            sql = " ".join(str(statement.compile(dialect=dialect)).split())
            assert "profile_job" in sql, (dialect_name, name, sql)
        claim = " ".join(str(store.statements()["claim"].compile(dialect=dialect)).split())
        # The compare-and-set: state, the owner seen and a stale (or released) heartbeat, all in the WHERE.
        where = claim.partition(" WHERE ")[2]
        for column in ("job_id", "state", "owner_id", "heartbeat_at IS NULL", "heartbeat_at <"):
            assert column in where, (dialect_name, claim)


def test_a_job_survives_a_restart_and_an_unknown_id_is_not_found(tmp_path: Path, database_url: str) -> None:
    settings = profile_settings(tmp_path, database_url, finance_pack=False, recompute_background_profiles=0)
    with profile_app(settings) as app:
        seed(app)
        app.definitions.create_tag(at_least("C4"))
        job = app.segments.start_refresh_everyone(app.jobs, "risky", "tester")
        assert job.state == RUNNING
        done = ended(app.jobs, job.job_id)
        assert done.state == job_pb2.JOB_STATE_SUCCEEDED
    with profile_app(settings) as restarted:  # a new process: nothing in memory
        assert restarted.jobs.get(job.job_id) == done
        again = restarted.jobs.get(job.job_id)
        assert again.progress_message == "tag 'risky' version 1: re-evaluated for 5 profiles"
        assert again.created_by == "tester" and again.HasField("finished_at")
        with pytest.raises(NotFound, match=r"no job 'recompute_tag-nope' \(ended jobs are kept 30 days\)"):
            restarted.jobs.get("recompute_tag-nope")


def test_an_interrupted_tag_job_is_resumed_at_start_and_ends_under_the_current_rule(
    tmp_path: Path, database_url: str
) -> None:
    settings = profile_settings(tmp_path, database_url, finance_pack=False, recompute_background_profiles=100)
    with profile_app(settings) as app:
        seed(app)
        app.definitions.create_tag(at_least("C3"))
        app.segments.start_refresh_everyone(app.jobs, "risky")  # within the call
        assert holders(app) == {"R3": "1", "R4": "1", "R5": "1"}
        # The crash: version 2 stored, its job cut short after re-evaluating R2 only.
        app.definitions.update_tag(at_least("C2"), 1)
        with app.core.writing() as conn:
            r2 = app.core.find(conn, (2, "R2"))
            app.core.engine.refresh(conn, [r2], now_us(), cause="recompute")
        assert holders(app) == {"R2": "2", "R3": "1", "R4": "1", "R5": "1"}
        app.jobs.store.insert(orphan("recompute_tag-crashed", "recompute_tag", "risky"))
    with profile_app(settings) as restarted:
        jobs = restarted.jobs
        assert jobs.get("recompute_tag-crashed").state == RUNNING  # as the dead process left it
        try:
            assert jobs.start() == ["recompute_tag-crashed"]
            done = ended(jobs, "recompute_tag-crashed")
        finally:
            jobs.stop(30)
        assert done.state == job_pb2.JOB_STATE_SUCCEEDED, done
        assert done.progress_message == "tag 'risky' version 2: re-evaluated for 5 profiles"
        assert done.created_by == "ops"
        assert holders(restarted) == {"R2": "2", "R3": "2", "R4": "2", "R5": "2"}
        row = jobs.store.get("recompute_tag-crashed")
        assert row.state == "SUCCEEDED" and row.owner_id == jobs.owner and row.heartbeat_at is None


def test_orphans_whose_target_is_gone_fail_and_one_process_claims_each(tmp_path: Path, database_url: str) -> None:
    settings = profile_settings(tmp_path, database_url, finance_pack=False)
    with profile_app(settings) as app:
        seed(app)
        app.definitions.create_tag(at_least("C3"))
        app.definitions.archive_tag("risky")
        store = app.jobs.store
        store.insert(orphan("recompute_tag-archived", "recompute_tag", "risky"))
        store.insert(orphan("recompute_segment-gone", "recompute_segment", "no_such_segment"))
        fresh = dt.datetime.now(dt.UTC)
        store.insert(orphan("recompute_tag-alive", "recompute_tag", "other", owner="live-process", heartbeat=fresh))
        store.insert(orphan("recompute_tag-released", "recompute_tag", "released", heartbeat=None))

        # Two processes look at once: each orphan is claimed by one of them only.
        calls: list[tuple[str, str]] = []
        lock = threading.Lock()

        def resolver(kind: str, name: str) -> Any:
            with lock:
                calls.append((kind, name))
            return app.segments.resume(kind, name)

        first, second = Jobs(store, resolver), Jobs(store, resolver)
        barrier = threading.Barrier(2)
        resumed: dict[str, list[str]] = {}

        def look(jobs: Jobs, key: str) -> None:
            barrier.wait()
            resumed[key] = jobs.resume_orphans()

        threads = [threading.Thread(target=look, args=(j, k)) for j, k in ((first, "a"), (second, "b"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(calls) == [
            ("recompute_segment", "no_such_segment"),
            ("recompute_tag", "released"),
            ("recompute_tag", "risky"),
        ]
        assert resumed["a"] == resumed["b"] == []  # nothing could run: every target is gone
        archived = first.get("recompute_tag-archived")
        assert archived.state == job_pb2.JOB_STATE_FAILED and archived.error_reason == "INTERRUPTED"
        assert "not resumed: tag 'risky' was archived" in archived.error_message
        gone = second.get("recompute_segment-gone")
        assert gone.state == job_pb2.JOB_STATE_FAILED and gone.error_reason == "INTERRUPTED"
        assert "no segment 'no_such_segment'" in gone.error_message
        released = second.get("recompute_tag-released")
        assert released.error_reason == "INTERRUPTED" and "no tag definition 'released'" in released.error_message
        # The live process's job (a fresh heartbeat) is left alone; so is a process's own job.
        assert app.jobs.get("recompute_tag-alive").state == RUNNING
        assert store.get("recompute_tag-alive").owner_id == "live-process"
        assert Jobs(store, resolver).resume_orphans() == [] and len(calls) == 3
        own = Jobs(store, resolver, orphan_seconds=0.0)
        own.owner = "live-process"
        own._written["recompute_tag-alive"] = 0.0  # a thread of its own runs it, whatever its heartbeat
        assert own.resume_orphans() == [] and len(calls) == 3
        # Once that heartbeat is stale too, the claim is a compare-and-set: only the first succeeds.
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        assert store.claim("recompute_tag-alive", "live-process", "p1", later, later, "resumed")
        much_later = later + dt.timedelta(hours=2)  # p1's heartbeat stale by then as well: the owner seen decides
        assert not store.claim("recompute_tag-alive", "live-process", "p2", much_later, much_later, "resumed")
        assert store.get("recompute_tag-alive").owner_id == "p1"


def test_of_two_orphans_of_one_tag_the_newer_runs(tmp_path: Path, database_url: str) -> None:
    settings = profile_settings(tmp_path, database_url, finance_pack=False, recompute_background_profiles=100)
    with profile_app(settings) as app:
        seed(app)
        app.definitions.create_tag(at_least("C4"))
        older = orphan("recompute_tag-older", "recompute_tag", "risky", heartbeat=STALE - dt.timedelta(minutes=5))
        app.jobs.store.insert(older)
        app.jobs.store.insert(orphan("recompute_tag-newer", "recompute_tag", "risky"))
        try:
            assert app.jobs.start() == ["recompute_tag-newer"]
            assert ended(app.jobs, "recompute_tag-newer").state == job_pb2.JOB_STATE_SUCCEEDED
        finally:
            app.jobs.stop(30)
        cancelled = app.jobs.get("recompute_tag-older")
        assert cancelled.state == job_pb2.JOB_STATE_CANCELLED and cancelled.error_reason == "SUPERSEDED"
        assert holders(app) == {"R4": "1", "R5": "1"}


class CountingStore(JobStore):
    def __init__(self, store: JobStore) -> None:
        super().__init__(store.database, store.t)
        self.progress_writes = 0

    def progress(self, *args: Any) -> bool:
        self.progress_writes += 1
        return super().progress(*args)


def test_progress_reaches_the_table_through_the_keeper_not_per_tick(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        store = CountingStore(app.jobs.store)
        jobs = Jobs(store, app.segments.resume, heartbeat_seconds=3600)
        gate, ticked = threading.Event(), threading.Event()

        def work(progress: Any) -> str:
            for i in range(500):
                progress(i / 5, f"{i} of 500")
            ticked.set()
            gate.wait(30)
            return "done"

        job = jobs.submit("recompute_segment", "s", work, background=True)
        assert ticked.wait(30)
        assert store.progress_writes == 0  # 500 ticks, no write: the job never writes its own row
        assert store.get(job.job_id).progress_message == "started"
        assert jobs.flush() == 1 and store.progress_writes == 1
        assert store.get(job.job_id).progress_message == "499 of 500"
        assert jobs.flush() == 0  # nothing changed, no heartbeat due
        # Another process took the job over (this one's heartbeat had gone stale): this one lets go of it.
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        assert store.claim(job.job_id, jobs.owner, "other", later, later, "resumed")
        jobs._progress(job.job_id, 99.0, "still going")
        assert jobs.flush() == 1
        assert jobs.get(job.job_id).progress_message == "resumed"  # from the table now
        gate.set()
        jobs.wait(30)
        assert store.get(job.job_id).state == "RUNNING"  # its end is not this process's to write


def test_ended_jobs_are_pruned_after_the_retention(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        store = app.jobs.store
        for job_id, age in (("recompute_tag-old", 31), ("recompute_tag-recent", 29)):
            row = orphan(job_id, "recompute_tag", "x", heartbeat=None)
            row.update(state="SUCCEEDED", finished_at=NOW - dt.timedelta(days=age))
            store.insert(row)
        store.insert(orphan("recompute_tag-running", "recompute_tag", "x", heartbeat=NOW - dt.timedelta(days=40)))
        assert app.jobs.prune() == 1
        with pytest.raises(NotFound):
            app.jobs.get("recompute_tag-old")
        assert app.jobs.get("recompute_tag-recent").state == job_pb2.JOB_STATE_SUCCEEDED
        assert app.jobs.get("recompute_tag-running").state == RUNNING


@contextlib.contextmanager
def persons_locked(url: str) -> Any:
    """A PostgreSQL transaction holding profile_person exclusively: a re-evaluation job waits at its first read."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            transaction = conn.begin()
            conn.execute(sa.text("LOCK TABLE profile_person IN ACCESS EXCLUSIVE MODE"))
            yield conn
            if transaction.is_active:
                transaction.rollback()
    finally:
        engine.dispose()


def test_a_process_killed_mid_job_has_its_job_resumed_by_the_next(tmp_path: Path, database_url_postgresql: str) -> None:
    """A real crash: SIGKILL while RecomputeTag runs; the next process claims the job once its heartbeat is stale
    and ends it SUCCEEDED with every value under the current version; GetJob answers for both jobs."""
    env = {
        "QIMING_PROFILE_RECOMPUTE_BACKGROUND_PROFILES": "0",
        "QIMING_PROFILE_FINANCE_PACK": "false",
        "QIMING_PROFILE_JOB_HEARTBEAT_SECONDS": "0.5",
        "QIMING_PROFILE_JOB_ORPHAN_SECONDS": "2",
    }
    url = database_url_postgresql

    def get(stub: Any, job_id: str) -> job_pb2.Job:
        return stub.GetJob(pb.GetJobRequest(job_id=job_id), timeout=10).job

    with profile_process(tmp_path, database_url=url, **env) as first:
        channel = grpc.insecure_channel(first.address)
        profiles, tags = pb_grpc.ProfileServiceStub(channel), pb_grpc.TagServiceStub(channel)
        jobs = pb_grpc.JobServiceStub(channel)
        for user, rating in RATINGS.items():
            request = pb.UpsertAttributesRequest(user=ref(user), attributes={"risk_rating": to_proto(rating)})
            profiles.UpsertAttributes(request, timeout=30)
        created = tags.CreateTagDefinition(pb.CreateTagDefinitionRequest(definition=at_least("C4")), timeout=30)
        assert wait_for(lambda: (j := get(jobs, created.job.job_id)).state != RUNNING and j).state == 3
        with persons_locked(url):
            request = pb.UpdateTagDefinitionRequest(definition=at_least("C2"), expected_version=1)
            updated = tags.UpdateTagDefinition(request, timeout=30)
            assert updated.job.state == RUNNING
            wait_for(lambda: get(jobs, updated.job.job_id).progress_message == "started")
            first.kill()  # SIGKILL: no stop, no release
            channel.close()
    with profile_app(profile_settings(tmp_path, url, finance_pack=False)) as app:
        assert app.jobs.store.get(updated.job.job_id).state == "RUNNING"
        assert holders(app) == {"R4": "1", "R5": "1"}  # the job had re-evaluated no one
    with profile_process(tmp_path, database_url=url, **env) as second:
        channel = grpc.insecure_channel(second.address)
        jobs = pb_grpc.JobServiceStub(channel)
        tags = pb_grpc.TagServiceStub(channel)
        assert get(jobs, created.job.job_id).state == job_pb2.JOB_STATE_SUCCEEDED  # from before the crash
        done = wait_for(lambda: (j := get(jobs, updated.job.job_id)).state != RUNNING and j, timeout=60)
        assert done.state == job_pb2.JOB_STATE_SUCCEEDED, done
        assert done.progress_message == "tag 'risky' version 2: re-evaluated for 5 profiles"
        found = set()
        for user in RATINGS:
            listed = tags.ListUserTags(pb.ListUserTagsRequest(user=ref(user)), timeout=10).tags
            found |= {f"{user}:{t.provenance.writer_version}" for t in listed if t.name == "risky"}
        assert found == {"R2:2", "R3:2", "R4:2", "R5:2"}
        with pytest.raises(grpc.RpcError) as raised:
            get(jobs, "recompute_tag-unknown")
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        channel.close()


def test_a_clean_stop_releases_running_jobs_for_the_next_process_at_once(tmp_path: Path, database_url: str) -> None:
    settings = profile_settings(tmp_path, database_url, finance_pack=False, recompute_background_profiles=100)
    with profile_app(settings) as app:
        seed(app)
        app.definitions.create_segment(pb.Segment(segment_id="calm", condition=at_least("C4").condition))
        store, gate = app.jobs.store, threading.Event()
        stopping = Jobs(store, app.segments.resume, heartbeat_seconds=0.0)
        job = stopping.submit("recompute_segment", "calm", lambda progress: gate.wait(30) and "late", background=True)
        before = store.get(job.job_id).heartbeat_at
        assert stopping.flush() == 1  # a heartbeat is due at every flush here, changed or not
        assert store.get(job.job_id).heartbeat_at > before
        stopping.stop(0.1)  # the job is still running: released
        row = store.get(job.job_id)
        assert row.state == "RUNNING" and row.heartbeat_at is None
        # The next process resumes it at once, without waiting job_orphan_seconds (an hour here).
        following = Jobs(store, app.segments.resume, orphan_seconds=3600)
        assert following.resume_orphans() == [job.job_id]
        following.wait(30)
        gate.set()
        done = following.get(job.job_id)
        assert (
            done.state == job_pb2.JOB_STATE_SUCCEEDED and done.progress_message == "entered 2, exited 0 of 5 profiles"
        )
        assert app.definitions.get_segment("calm").size == 2
        stopping.wait(30)
        assert store.get(job.job_id).owner_id == following.owner  # the released process wrote no end of its own


def test_an_orphan_that_cannot_start_now_is_given_back_not_failed(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        seed(app)
        app.definitions.create_tag(at_least("C5"))
        store = app.jobs.store
        store.insert(orphan("recompute_tag-flaky", "recompute_tag", "risky"))

        def unavailable(kind: str, name: str) -> Any:
            raise Unavailable("database unavailable: connection refused")

        assert Jobs(store, unavailable).resume_orphans() == []
        row = store.get("recompute_tag-flaky")
        assert (row.state, row.owner_id, row.heartbeat_at) == ("RUNNING", "", None)
        jobs = Jobs(store, app.segments.resume, orphan_seconds=3600)  # given back: no wait for a stale heartbeat
        assert jobs.resume_orphans() == ["recompute_tag-flaky"]
        assert ended(jobs, "recompute_tag-flaky").state == job_pb2.JOB_STATE_SUCCEEDED
        assert holders(app) == {"R5": "1"}


def test_a_job_whose_end_could_not_be_written_is_run_again_by_its_own_process(
    tmp_path: Path, database_url: str
) -> None:
    """One process, the database away at the moment a job ends: the row stays RUNNING under this process, and once
    its heartbeat is stale this same process runs it again (a one-process deployment has nobody else to)."""
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        seed(app)
        app.definitions.create_tag(at_least("C5"))
        store = app.jobs.store
        jobs = Jobs(store, app.segments.resume, orphan_seconds=2.0)
        real_finish = store.finish

        def down(*args: Any, **kwargs: Any) -> None:
            raise Unavailable("database unavailable: connection refused")

        store.finish = down  # type: ignore[method-assign]
        try:
            job = jobs.submit("recompute_tag", "risky", lambda progress: "done", background=False)
        finally:
            store.finish = real_finish  # type: ignore[method-assign]
        assert job.state == job_pb2.JOB_STATE_SUCCEEDED and store.get(job.job_id).state == "RUNNING"
        assert jobs.resume_orphans() == []  # its heartbeat is fresh: not yet
        with app.core.database.connection(write=True) as conn:
            conn.execute(sa.update(tables["job"]).values(heartbeat_at=STALE))
        assert jobs.resume_orphans() == [job.job_id]
        assert wait_for(lambda: store.get(job.job_id).state == "SUCCEEDED")
        assert holders(app) == {"R5": "1"}


def test_a_job_another_process_took_over_stops_here(tmp_path: Path, database_url: str) -> None:
    """Process a's heartbeat went stale (a stalled database, a clock ahead elsewhere) and b took the job over: a's
    thread stops at its next progress report instead of running the same recompute beside b's."""
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        store = app.jobs.store
        reports = {"a": 0, "b": 0}
        release = threading.Event()

        def work(name: str) -> Any:
            def run(progress: Any) -> str:
                while not release.wait(0.02):
                    reports[name] += 1
                    progress(50.0, "halfway")
                return "done"

            return run

        a = Jobs(store, lambda kind, result: work("a"), heartbeat_seconds=0.5, orphan_seconds=2.0)
        b = Jobs(store, lambda kind, result: work("b"), heartbeat_seconds=0.5, orphan_seconds=2.0)
        job = a.submit("recompute_tag", "risky", work("a"), background=True)
        with app.core.database.connection(write=True) as conn:
            conn.execute(sa.update(tables["job"]).values(heartbeat_at=STALE))
        assert b.resume_orphans() == [job.job_id]
        wait_for(lambda: reports["a"] > 1)  # a has progress to write
        a.flush()  # and finds the row is no longer its own
        stopped_at = wait_for(lambda: not a._threads and reports["a"])
        assert wait_for(lambda: reports["b"] > 0)
        assert reports["a"] == stopped_at  # a reports no more
        release.set()
        assert ended(b, job.job_id).state == job_pb2.JOB_STATE_SUCCEEDED
        a.wait(5)
        b.wait(5)
