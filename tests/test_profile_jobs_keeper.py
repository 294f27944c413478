"""The recompute-job keeper: it claims no orphan once a stop has begun, and a job whose thread died without an end
gets no more heartbeats (it ends FAILED instead of looking alive until a restart). SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest
from profile_helpers import profile_app, profile_settings, wait_for
from test_profile_durable_jobs import orphan

from svc_common.pb.qiming.common.v1 import job_pb2
from svc_profile.jobs import Jobs


def _done(kind: str, name: str) -> Any:
    return lambda progress: "done"


def test_no_orphan_is_claimed_while_a_stop_waits(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        store, gate = app.jobs.store, threading.Event()
        jobs = Jobs(store, _done, heartbeat_seconds=0.1, orphan_seconds=1.0)
        assert jobs.start() == []
        try:
            running = jobs.submit("recompute_tag", "busy", lambda progress: gate.wait(30) and "late", background=True)
            # Another process's job, fresh now: its heartbeat goes stale during the stop's wait below.
            store.insert(orphan("recompute_tag-other", "recompute_tag", "other", heartbeat=dt.datetime.now(dt.UTC)))
            jobs.stop(3.0)  # the keeper scans every 0.1 s meanwhile
            row = store.get("recompute_tag-other")
            assert (row.state, row.owner_id) == ("RUNNING", "dead-process"), "claimed by a process that was stopping"
            assert store.get(running.job_id).heartbeat_at is None  # released, as before
        finally:
            gate.set()
            jobs.wait(10)
        assert store.get(running.job_id).state == "SUCCEEDED"  # its thread, done after the stop, wrote its end
        following = Jobs(store, _done, orphan_seconds=1.0)
        assert following.resume_orphans() == ["recompute_tag-other"]
        following.wait(10)
        assert store.get("recompute_tag-other").state == "SUCCEEDED"


class _ThreadKilled(BaseException):
    """Not an Exception: gets past the job runner's handlers and ends the thread (as SystemExit would)."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_job_whose_thread_died_gets_no_heartbeat_and_ends(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        store = app.jobs.store
        jobs = Jobs(store, _done, heartbeat_seconds=0.0)  # a heartbeat is due at every flush

        def dies(progress: Any) -> str:
            progress(10.0, "started")
            raise _ThreadKilled()

        job = jobs.submit("recompute_tag", "doomed", dies, background=True)
        wait_for(lambda: not any(t.name == job.job_id for t in threading.enumerate()))  # its thread is gone
        before = store.get(job.job_id).heartbeat_at
        jobs.flush()
        row = store.get(job.job_id)
        assert row.state == "FAILED" and row.error_reason == "INTERNAL", (row.state, row.heartbeat_at, before)
        assert "thread" in row.error_message
        ended = jobs.get(job.job_id)
        assert ended.state == job_pb2.JOB_STATE_FAILED and ended.error_reason == "INTERNAL"
        assert jobs.flush() == 0  # nothing left to heartbeat

        # A live job beside it keeps its heartbeats.
        gate = threading.Event()
        alive = jobs.submit("recompute_tag", "alive", lambda progress: gate.wait(30) and "ok", background=True)
        try:
            assert jobs.flush() == 1 and store.get(alive.job_id).state == "RUNNING"
        finally:
            gate.set()
        assert wait_for(lambda: store.get(alive.job_id).state == "SUCCEEDED")
