"""Long jobs: started at once, run on a small thread pool, persisted with their progress, cancellable.

A job's function gets a :class:`JobContext`; it calls ``ctx.progress(percent, message)`` between steps,
which also raises :class:`JobCancelled` once someone asked to cancel. A process that stops with jobs still
PENDING or RUNNING marks them FAILED (reason ABORTED) at its next start: they are never left hanging.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from svc_common.errors import FailedPrecondition, NotFound, QimingError
from svc_common.pb.qiming.common.v1 import job_pb2
from svc_modeling.store import TERMINAL_STATES, SqlModelingStore, utcnow

log = logging.getLogger("qiming.modeling.jobs")


class JobCancelled(Exception):
    """Raised inside a job's function when a cancel was requested."""


class JobContext:
    def __init__(self, runner: JobRunner, job_id: str) -> None:
        self._runner = runner
        self.job_id = job_id
        self._last_write = 0.0

    @property
    def cancelled(self) -> bool:
        return self._runner._cancel_flag(self.job_id).is_set()

    def progress(self, percent: float, message: str = "") -> None:
        """Record progress (0-100); raises JobCancelled when a cancel was requested."""
        if self.cancelled:
            raise JobCancelled(self.job_id)
        now = time.monotonic()
        if now - self._last_write >= self._runner.progress_interval_seconds or percent >= 100:
            self._last_write = now
            self._runner.store.update_job(
                self.job_id,
                only_if_state=("RUNNING",),
                progress_percent=max(0.0, min(100.0, float(percent))),
                progress_message=message,
            )
            self._runner._changed(self.job_id)

    def check(self) -> None:
        if self.cancelled:
            raise JobCancelled(self.job_id)


JobFunction = Callable[[JobContext], str]
"""Does the work; returns the job's ``result_name`` (the resource it produced)."""


def job_message(row: dict[str, Any]) -> job_pb2.Job:
    job = job_pb2.Job(
        job_id=row["job_id"],
        kind=row["kind"],
        state=job_pb2.JobState.Value(f"JOB_STATE_{row['job_state']}"),
        progress_percent=row["progress_percent"],
        progress_message=row["progress_message"],
        error_reason=row["error_reason"],
        error_message=row["error_message"],
        result_name=row["result_name"],
        created_by=row["created_by"],
    )
    for field in ("created_at", "started_at", "finished_at"):
        if row[field] is not None:
            getattr(job, field).FromDatetime(row[field])
    return job


class JobRunner:
    def __init__(self, store: SqlModelingStore, workers: int, progress_interval_millis: int, poll_millis: int) -> None:
        self.store = store
        self.progress_interval_seconds = progress_interval_millis / 1000
        self._poll_seconds = poll_millis / 1000
        self._workers = workers
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        # Bumped whenever this process changes a job, so that WatchJob answers at once instead of at its next poll.
        self._changes: dict[str, int] = {}

    def _changed(self, job_id: str) -> None:
        with self._lock:
            self._changes[job_id] = self._changes.get(job_id, 0) + 1

    def _change_count(self, job_id: str) -> int:
        with self._lock:
            return self._changes.get(job_id, 0)

    async def start(self) -> None:
        failed = await asyncio.to_thread(
            self.store.fail_unfinished_jobs, "the service stopped while this job was pending or running: start it again"
        )
        if failed:
            log.warning("marked unfinished jobs of a previous run as failed", extra={"jobs": failed})
        self._executor = concurrent.futures.ThreadPoolExecutor(self._workers, thread_name_prefix="modeling-job")

    async def stop(self) -> None:
        if self._executor is None:
            return
        with self._lock:
            for flag in self._flags.values():
                flag.set()
        executor, self._executor = self._executor, None
        await asyncio.to_thread(executor.shutdown, True, cancel_futures=True)
        self._changes.clear()
        # Jobs that never started were cancelled with their futures: do not leave them PENDING.
        await asyncio.to_thread(self.store.fail_unfinished_jobs, "the service stopped before this job finished")

    def _cancel_flag(self, job_id: str) -> threading.Event:
        with self._lock:
            return self._flags.setdefault(job_id, threading.Event())

    def submit(self, kind: str, function: JobFunction, created_by: str = "") -> job_pb2.Job:
        if self._executor is None:
            raise FailedPrecondition("the job runner is not started", reason="WRONG_STATE")
        job_id = str(uuid.uuid4())
        record = {
            "job_id": job_id,
            "kind": kind,
            "job_state": "PENDING",
            "progress_percent": 0.0,
            "progress_message": "waiting for a worker",
            "cancel_requested": False,
            "error_reason": "",
            "error_message": "",
            "result_name": "",
            "created_by": created_by,
            "created_at": utcnow(),
            "started_at": None,
            "finished_at": None,
        }
        self.store.add_job(record)
        self._cancel_flag(job_id)
        self._executor.submit(self._run, job_id, function)
        return job_message(record)

    def _run(self, job_id: str, function: JobFunction) -> None:
        flag = self._cancel_flag(job_id)
        try:
            if flag.is_set() or not self.store.update_job(
                job_id, only_if_state=("PENDING",), job_state="RUNNING", started_at=utcnow(), progress_message="started"
            ):
                return  # cancelled while pending
            try:
                result = function(JobContext(self, job_id))
            except JobCancelled:
                self._finish(job_id, "CANCELLED", progress_message="cancelled")
            except QimingError as exc:
                self._finish(job_id, "FAILED", error_reason=exc.reason, error_message=exc.message)
            except Exception as exc:  # a bug or a library failure: the client gets a message, the log the trace
                log.exception("job failed", extra={"job_id": job_id})
                self._finish(job_id, "FAILED", error_reason="INTERNAL", error_message=f"internal error: {exc!r}"[:2000])
            else:
                self._finish(job_id, "SUCCEEDED", result_name=result, progress_percent=100.0, progress_message="done")
        finally:
            with self._lock:
                self._flags.pop(job_id, None)
            self._changed(job_id)

    def _finish(self, job_id: str, state: str, **values: Any) -> None:
        self.store.update_job(job_id, only_if_state=("RUNNING",), job_state=state, finished_at=utcnow(), **values)

    # -- reading and cancelling -----------------------------------------------------------------------

    def get(self, job_id: str) -> job_pb2.Job:
        row = self.store.get_job(job_id) if job_id else None
        if row is None:
            raise NotFound(f"no job {job_id!r}", metadata={"job_id": job_id})
        return job_message(row)

    def cancel(self, job_id: str) -> job_pb2.Job:
        """PENDING: cancelled at once. RUNNING: cancelled at its next progress step. Finished: unchanged."""
        self.get(job_id)
        self.store.update_job(job_id, only_if_state=("PENDING", "RUNNING"), cancel_requested=True)
        self.store.update_job(
            job_id,
            only_if_state=("PENDING",),
            job_state="CANCELLED",
            finished_at=utcnow(),
            progress_message="cancelled",
        )
        with self._lock:
            flag = self._flags.get(job_id)
        if flag is not None:
            flag.set()
        self._changed(job_id)
        return self.get(job_id)

    def list(self, states: Sequence[str], kind: str, after: Any, limit: int) -> list[job_pb2.Job]:
        return [job_message(r) for r in self.store.list_jobs(states, kind, after, limit)]

    async def watch(self, job_id: str) -> AsyncIterator[job_pb2.Job]:
        """The job now, then each change, until it ends."""
        last = None
        while True:
            job = await asyncio.to_thread(self.get, job_id)
            key = (job.state, job.progress_percent, job.progress_message)
            if key != last:
                last = key
                yield job
            if job_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_") in TERMINAL_STATES:
                return
            seen = self._change_count(job_id)
            deadline = time.monotonic() + self._poll_seconds  # other processes' jobs: re-read at this pace
            while self._change_count(job_id) == seen and time.monotonic() < deadline:
                await asyncio.sleep(0.01)

    def wait(self, job_id: str, timeout_seconds: float = 600.0) -> job_pb2.Job:
        """Block until the job ends (tests and benchmarks)."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            job = self.get(job_id)
            if job_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_") in TERMINAL_STATES:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(job_id)
            time.sleep(0.02)
