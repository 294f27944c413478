"""Long jobs: started at once, run on a small thread pool, persisted with their progress, cancellable.

A job's function gets a :class:`JobContext`; it calls ``ctx.progress(percent, message)`` between steps,
which also raises :class:`JobCancelled` once someone asked to cancel. Blocking calls (a gRPC call to
svc_profile) register ``ctx.on_cancel`` to be interrupted by a cancel or a stop.

Several processes (replicas) may share one database. Each :class:`JobRunner` owns the jobs it started
(``modeling_job.owner_id``) and renews their ``heartbeat_at`` every ``heartbeat_seconds`` from a keeper thread,
which also picks up cancels asked through another replica (``cancel_requested``). A pending or running job whose
heartbeat is older than ``orphan_seconds`` belongs to a process that died: any replica marks it FAILED (reason
ABORTED, "start it again") with one conditional UPDATE. A stopping process fails only its own unfinished jobs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from svc_common.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound, QimingError
from svc_common.pb.qiming.common.v1 import job_pb2
from svc_modeling.store import TERMINAL_STATES, SqlModelingStore, utcnow
from svc_modeling.tracing import capture, job_span

log = logging.getLogger("qiming.modeling.jobs")
ORPHANED = "the service process running this job stopped or lost its database: start it again"
LOST_END = "the job's run ended but its end could not be recorded (see the service log): start it again"
_current = threading.local()
EMPTY: Mapping[str, str] = {}


class JobCancelled(Exception):
    """Raised inside a job's function when a cancel was requested."""


class _Flag:
    """A job's cancel flag; setting it runs the callbacks registered by the job (e.g. cancelling a gRPC call)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._callbacks: list[Callable[[], Any]] = []
        self._lock = threading.Lock()

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            _quietly(callback)

    def add(self, callback: Callable[[], Any]) -> Callable[[], None]:
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return lambda: self._remove(callback)
        _quietly(callback)
        return lambda: None

    def _remove(self, callback: Callable[[], Any]) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)


def _quietly(step: Callable[[], Any]) -> None:
    try:
        step()
    except Exception:  # a callback's failure must not stop a cancel or the keeper
        log.warning("job step %s failed", getattr(step, "__name__", "a step"), exc_info=True)


def current_job() -> JobContext | None:
    """The job this thread runs now, if any."""
    return getattr(_current, "ctx", None)


class JobContext:
    def __init__(self, runner: JobRunner, job_id: str) -> None:
        self._runner = runner
        self.job_id = job_id
        self._last_write = 0.0

    @property
    def cancelled(self) -> bool:
        return self._runner._cancel_flag(self.job_id).is_set()

    def on_cancel(self, callback: Callable[[], Any]) -> Callable[[], None]:
        """Run ``callback`` when the job is cancelled (at once if it already is); returns the unregistering."""
        return self._runner._cancel_flag(self.job_id).add(callback)

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
                only_if_owner=self._runner.owner,
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
    def __init__(
        self,
        store: SqlModelingStore,
        workers: int,
        progress_interval_millis: int,
        poll_millis: int,
        *,
        heartbeat_seconds: float = 5.0,
        orphan_seconds: float = 60.0,
    ) -> None:
        self.store = store
        self.owner = str(uuid.uuid4())
        """This process's id as a job owner (``modeling_job.owner_id``)."""
        self.progress_interval_seconds = progress_interval_millis / 1000
        self._poll_seconds = poll_millis / 1000
        self.heartbeat_seconds = heartbeat_seconds
        self.orphan_seconds = orphan_seconds
        self._workers = workers
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._flags: dict[str, _Flag] = {}
        self._lock = threading.Lock()
        # Bumped whenever this process changes a job, so that WatchJob answers at once instead of at its next poll.
        self._changes: dict[str, int] = {}
        self._stopping = threading.Event()
        self._keeper: threading.Thread | None = None

    def _changed(self, job_id: str) -> None:
        with self._lock:
            self._changes[job_id] = self._changes.get(job_id, 0) + 1

    def _change_count(self, job_id: str) -> int:
        with self._lock:
            return self._changes.get(job_id, 0)

    async def start(self) -> None:
        await asyncio.to_thread(self.fail_orphans)
        self._executor = concurrent.futures.ThreadPoolExecutor(self._workers, thread_name_prefix="modeling-job")
        self._stopping.clear()
        self._keeper = threading.Thread(target=self._keep, name="modeling-job-keeper", daemon=True)
        self._keeper.start()

    async def stop(self) -> None:
        if self._executor is None:
            return
        with self._lock:
            flags = list(self._flags.values())
        for flag in flags:
            flag.set()  # running jobs stop at their next step; blocking calls they registered are cancelled
        executor, self._executor = self._executor, None
        await asyncio.to_thread(executor.shutdown, True, cancel_futures=True)
        self._stopping.set()
        if self._keeper is not None:
            await asyncio.to_thread(self._keeper.join, 10.0)
            self._keeper = None
        self._changes.clear()
        # Jobs that never started were cancelled with their futures: do not leave them PENDING. Only this
        # process's: other replicas' jobs are theirs.
        await asyncio.to_thread(self.store.fail_owned_jobs, self.owner, "the service stopped before this job finished")

    # -- the keeper: heartbeats, cancels asked through other replicas, orphans -----------------------------

    def fail_orphans(self) -> int:
        """Fail the unfinished jobs whose owner's heartbeat is older than ``orphan_seconds``."""
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.orphan_seconds)
        # Never this process's own: a heartbeat write that waited long (a busy database) is no sign of death.
        failed = self.store.fail_orphaned_jobs(cutoff, ORPHANED, not_owner=self.owner)
        failed += self.fail_lost()
        if failed:
            log.warning("marked jobs of a stopped process as failed", extra={"jobs": failed})
        return failed

    def fail_lost(self) -> int:
        """Fail this process's unfinished rows whose run has ended (no flag: the end could not be written). The rows
        are read before the flags: a job's flag is set before its row is added and dropped after its end is written,
        so a row read here without a flag afterwards has no run left."""
        unfinished = self.store.unfinished_jobs(self.owner)
        with self._lock:
            held = set(self._flags)
        lost = 0
        for job_id in unfinished:
            if job_id not in held and self.store.update_job(
                job_id,
                only_if_state=("PENDING", "RUNNING"),
                only_if_owner=self.owner,
                job_state="FAILED",
                error_reason="ABORTED",
                error_message=LOST_END,
                finished_at=utcnow(),
            ):
                lost += 1
                self._changed(job_id)
        return lost

    def beat(self) -> None:
        """Renew the heartbeat of the jobs this process still holds (a flag from submit to the end of its run):
        not of a row whose run ended without recording its end, which then looks orphaned to other replicas."""
        with self._lock:
            job_ids = sorted(self._flags)
        if job_ids:
            self.store.heartbeat(self.owner, dt.datetime.now(dt.UTC), job_ids)

    def poll_cancels(self) -> None:
        """Set the flags of this process's jobs that were cancelled through another replica."""
        with self._lock:
            active = bool(self._flags)
        if not active:
            return
        for job_id in self.store.cancel_requested(self.owner):
            with self._lock:
                flag = self._flags.get(job_id)
            if flag is not None and not flag.is_set():
                log.info("job cancelled through another replica", extra={"job_id": job_id})
                flag.set()

    def _keep(self) -> None:
        tick = max(0.05, min(self.heartbeat_seconds, self._poll_seconds))
        next_beat = next_scan = time.monotonic() + self.heartbeat_seconds
        while not self._stopping.wait(tick):
            _quietly(self.poll_cancels)
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + self.heartbeat_seconds
                _quietly(self.beat)
            if now >= next_scan:
                next_scan = now + self.heartbeat_seconds
                _quietly(self.fail_orphans)

    def _cancel_flag(self, job_id: str) -> _Flag:
        with self._lock:
            return self._flags.setdefault(job_id, _Flag())

    def submit(
        self,
        kind: str,
        function: JobFunction,
        created_by: str = "",
        dataset_ids: Sequence[str] = (),
        *,
        models: Sequence[tuple[str, int]] = (),
        analysis_ids: Sequence[str] = (),
    ) -> job_pb2.Job:
        """Start a job that reads ``dataset_ids``, ``models`` (name, version) and ``analysis_ids``: stored with it, in
        the transaction that checks they still exist (NOT_FOUND naming one that was deleted meanwhile), so that none
        of them is deleted while the job is pending or running."""
        if self._executor is None:
            raise FailedPrecondition("the job runner is not started", reason="WRONG_STATE")
        job_id = str(uuid.uuid4())
        now = utcnow()
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
            "created_at": now,
            "started_at": None,
            "finished_at": None,
            "owner_id": self.owner,
            "heartbeat_at": now,
        }
        self._cancel_flag(job_id)  # before the row: the keeper beats for every job with a flag
        try:
            missing = self.store.add_job(record, [d for d in dataset_ids if d], models, analysis_ids)
            if missing:
                what, metadata = missing[0]
                raise NotFound(f"no {what}: it was deleted before the job could start", metadata=metadata)
        except BaseException:
            with self._lock:
                self._flags.pop(job_id, None)
            raise
        # The caller's trace context goes with the job: its span is a child of the RPC that started it, and its
        # calls to svc_profile / svc_collect carry that trace (jobs are never resumed by another process: a job
        # whose process died is failed, so the context needs no column).
        self._executor.submit(self._run, job_id, function, kind, capture())
        return job_message(record)

    def _run(self, job_id: str, function: JobFunction, kind: str = "", carrier: Mapping[str, str] = EMPTY) -> None:
        with job_span(kind, job_id, carrier):
            self._run_traced(job_id, function)

    def _run_traced(self, job_id: str, function: JobFunction) -> None:
        flag = self._cancel_flag(job_id)
        try:
            if flag.is_set() or not self.store.update_job(
                job_id,
                only_if_state=("PENDING",),
                only_if_owner=self.owner,
                job_state="RUNNING",
                started_at=utcnow(),
                progress_message="started",
            ):
                return  # cancelled while pending
            ctx = JobContext(self, job_id)
            _current.ctx = ctx
            try:
                result = function(ctx)
            except JobCancelled:
                self._finish(job_id, "CANCELLED", progress_message="cancelled")
            except QimingError as exc:
                if flag.is_set():  # the error is the cancel's doing (an interrupted call): say cancelled
                    self._finish(job_id, "CANCELLED", progress_message="cancelled")
                else:
                    self._finish(job_id, "FAILED", error_reason=exc.reason, error_message=exc.message)
            except Exception as exc:  # a bug or a library failure: the client gets a message, the log the trace
                log.exception("job failed", extra={"job_id": job_id})
                self._finish(job_id, "FAILED", error_reason="INTERNAL", error_message=f"internal error: {exc!r}"[:2000])
            else:
                self._finish(job_id, "SUCCEEDED", result_name=result, progress_percent=100.0, progress_message="done")
        finally:
            _current.ctx = None
            with self._lock:
                self._flags.pop(job_id, None)
            self._changed(job_id)

    def _finish(self, job_id: str, state: str, **values: Any) -> None:
        recorded = self.store.update_job(
            job_id,
            only_if_state=("RUNNING",),
            only_if_owner=self.owner,
            job_state=state,
            finished_at=utcnow(),
            **values,
        )
        if not recorded:
            # Its heartbeat went stale (the database was unreachable for orphan_seconds) and another replica
            # failed it, or it was cancelled meanwhile: what it made is not linked to the job.
            log.warning(
                "the end of a job could not be recorded: it is no longer running under this process",
                extra={"job_id": job_id, "state": state, "result_name": values.get("result_name", "")},
            )

    # -- reading and cancelling -----------------------------------------------------------------------

    def get(self, job_id: str) -> job_pb2.Job:
        if not job_id:
            raise InvalidArgument("job_id is required", violations=[FieldViolation("job_id", "", "MISSING_FIELD")])
        row = self.store.get_job(job_id)
        if row is None:
            raise NotFound(f"no job {job_id!r}", metadata={"job_id": job_id})
        return job_message(row)

    def cancel(self, job_id: str) -> job_pb2.Job:
        """PENDING: cancelled at once. RUNNING: cancelled at its next progress step (a call it registered is
        cancelled), here at once, on another replica when its keeper reads ``cancel_requested``. Finished: unchanged."""
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
