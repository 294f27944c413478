"""Recompute jobs: within the call on a small population, in a background thread on a large one, pollable
through ``JobService.GetJob`` (docs/profile.md, "Recompute jobs").

Each job is a row of ``profile_job`` as well as an entry in this process's memory: ``get`` answers from memory,
then from the table (after a restart, or for a job another process runs). A running job's progress reaches
the table at most once per ``flush_seconds`` and its owner's heartbeat every ``heartbeat_seconds``, by one
thread of this object, never by the job (whose own transaction may hold SQLite's write lock). A job whose
owner's heartbeat is older than ``orphan_seconds`` (its process died) is claimed by one other process (a
compare-and-set UPDATE) and run again: a recompute evaluates the current definition for everyone, so running
it again is the way to finish it. When its segment or tag is gone it ends FAILED, reason INTERRUPTED."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from svc_common.errors import InvalidArgument, NotFound, QimingError
from svc_common.pb.qiming.common.v1 import job_pb2
from svc_profile.store._jobs import RUNNING, JobStore

log = logging.getLogger("qiming.profile")
Progress = Callable[[float, str], None]
"""``progress(percent 0-100, message)``: what a running job reports."""
JobFunction = Callable[[Progress], str]
"""Runs the work, reporting progress; returns the final message ("entered 12, exited 3")."""
Resolver = Callable[[str, str], JobFunction]
"""(kind, result_name) → the function that runs that job again; raises a QimingError when its target is gone."""
KEEP_JOBS = 1_000
RESUMED = "resumed: the process running it stopped"
_PRUNE_EVERY = 3600.0


class Superseded(Exception):
    """Raised by a job function that stops because a newer job does its work: the job ends CANCELLED."""


def _state_name(state: Any) -> str:
    return job_pb2.JobState.Name(state).removeprefix("JOB_STATE_")


def _utc(stamp: Any) -> dt.datetime:
    return stamp.ToDatetime(dt.UTC)


def job_of_row(row: Any) -> job_pb2.Job:
    job = job_pb2.Job(
        job_id=row.job_id,
        kind=row.kind,
        state=job_pb2.JobState.Value(f"JOB_STATE_{row.state}"),
        progress_percent=row.progress_percent,
        progress_message=row.progress_message,
        error_reason=row.error_reason,
        error_message=row.error_message,
        result_name=row.result_name,
        created_by=row.created_by,
    )
    job.created_at.FromDatetime(row.created_at)
    job.started_at.FromDatetime(row.started_at)
    if row.finished_at is not None:
        job.finished_at.FromDatetime(row.finished_at)
    return job


class Jobs:
    def __init__(
        self,
        store: JobStore | None = None,
        resolver: Resolver | None = None,
        *,
        keep: int = KEEP_JOBS,
        flush_seconds: float = 1.0,
        heartbeat_seconds: float = 5.0,
        orphan_seconds: float = 60.0,
        retention_days: int = 30,
    ) -> None:
        self.store = store
        self.resolver = resolver
        self.owner = str(uuid.uuid4())
        """This process's id as a job owner (``profile_job.owner_id``)."""
        self.flush_seconds = flush_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.orphan_seconds = orphan_seconds
        self.retention_days = retention_days
        self._jobs: OrderedDict[str, job_pb2.Job] = OrderedDict()
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._keep = keep
        self._written: dict[str, float] = {}
        """Running jobs of this owner → monotonic time their row was last written (heartbeat due after that)."""
        self._dirty: set[str] = set()
        """Running jobs whose progress changed since their row was last written."""
        self._lost: set[str] = set()
        """Jobs another process took over while a thread here still runs them: stopped at their next report."""
        self._workers: dict[str, threading.Thread] = {}
        """Background jobs → their thread, until their end is recorded: only a live thread's job gets heartbeats."""
        self._closing = threading.Event()
        """Set when a stop begins: no more orphans are claimed (the stop would neither wait for nor release them)."""
        self._stopping = threading.Event()
        self._loop_thread: threading.Thread | None = None

    # -- submitting and reading -----------------------------------------------------------------------
    def submit(
        self, kind: str, result_name: str, function: JobFunction, *, background: bool, created_by: str = ""
    ) -> job_pb2.Job:
        """Run ``function`` as a job. Inline (``background`` false): errors reach the caller as they are and
        the job comes back SUCCEEDED. In the background: the job comes back RUNNING; a failure is recorded
        on the job (FAILED, with the error's reason and message). Either way the job is recorded first."""
        job = job_pb2.Job(
            job_id=f"{kind}-{uuid.uuid4().hex[:16]}",
            kind=kind,
            state=job_pb2.JOB_STATE_RUNNING,
            progress_message="started",
            result_name=result_name,
            created_by=created_by[:128],
        )
        job.created_at.FromMicroseconds(time.time_ns() // 1000)  # what the table keeps: microseconds
        job.started_at.CopyFrom(job.created_at)
        if self.store is not None:
            self.store.insert(self._row(job))
        with self._lock:
            self._remember(job)
            self._written[job.job_id] = time.monotonic()
        if not background:
            try:
                message = function(lambda percent, text: self._progress(job.job_id, percent, text))
            except Superseded as exc:
                return self._finish(job.job_id, job_pb2.JOB_STATE_CANCELLED, reason="SUPERSEDED", error=str(exc))
            except BaseException as exc:
                reason = exc.reason if isinstance(exc, QimingError) else "INTERNAL"
                self._finish(job.job_id, job_pb2.JOB_STATE_FAILED, reason=reason, error=str(exc))
                raise
            return self._finish(job.job_id, job_pb2.JOB_STATE_SUCCEEDED, message=message)
        running = self.get(job.job_id)  # as started: the caller sees it RUNNING however fast it ends
        self._start_thread(job.job_id, function)
        return running

    def get(self, job_id: str) -> job_pb2.Job:
        """From memory (this process's jobs), else from the table (a restart, another process)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                out = job_pb2.Job()
                out.CopyFrom(job)
                return out
        row = self.store.get(job_id) if self.store is not None and job_id else None
        if row is None:
            kept = (
                f"ended jobs are kept {self.retention_days} days"
                if self.store is not None
                else f"jobs are kept in memory, the last {self._keep}"
            )
            raise NotFound(f"no job {job_id!r} ({kept})", reason="JOB_NOT_FOUND")
        return job_of_row(row)

    def wait(self, timeout_seconds: float) -> None:
        """Let running jobs finish, at most ``timeout_seconds``."""
        deadline = time.monotonic() + timeout_seconds
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- the keeper: progress, heartbeat, orphans, pruning ------------------------------------------------
    def start(self) -> list[str]:
        """At service start: resume the orphans found now, prune, then keep rows current in a thread. Returns
        the ids of the jobs resumed."""
        resumed: list[str] = []
        self._safely(lambda: resumed.extend(self.resume_orphans()))
        self._safely(self.prune)
        self._stopping.clear()
        self._closing.clear()
        self._loop_thread = threading.Thread(target=self._loop, name="profile-jobs", daemon=True)
        self._loop_thread.start()
        return resumed

    def stop(self, timeout_seconds: float) -> None:
        """At stop: wait for running jobs (at most ``timeout_seconds``); those still running are released, so
        the next process to look resumes them without waiting for their heartbeat to go stale."""
        self._closing.set()  # the keeper keeps writing progress and heartbeats while we wait, but claims nothing
        self.wait(timeout_seconds)
        self._stopping.set()
        if self._loop_thread is not None:
            self._loop_thread.join(10.0)
            self._loop_thread = None
        self._safely(self.flush)
        if self.store is not None:
            with self._lock:
                running = bool(self._written)
            if running:
                self._safely(lambda: self.store.release(self.owner))  # type: ignore[union-attr]

    def _loop(self) -> None:
        next_scan = time.monotonic() + self.heartbeat_seconds
        next_prune = time.monotonic() + _PRUNE_EVERY
        tick = max(0.05, min(self.flush_seconds, self.heartbeat_seconds))
        while not self._stopping.wait(tick):
            self._safely(self.flush)
            now = time.monotonic()
            if now >= next_scan:
                next_scan = now + self.heartbeat_seconds
                self._safely(self.resume_orphans)
            if now >= next_prune:
                next_prune = now + _PRUNE_EVERY
                self._safely(self.prune)

    @staticmethod
    def _safely(step: Callable[[], Any]) -> None:
        try:
            step()
        except Exception:  # the database may be down for a while: the next tick tries again
            log.warning("recompute jobs: %s failed", getattr(step, "__name__", "a step"), exc_info=True)

    def flush(self) -> int:
        """Write the progress of running jobs that changed, and the heartbeat of those due; returns rows written.
        A job whose row another process has taken over is dropped from memory (GetJob then reads the table)."""
        if self.store is None:
            return 0
        self._end_dead_workers()
        now = time.monotonic()
        with self._lock:
            due = [
                (job_id, self._jobs[job_id].progress_percent, self._jobs[job_id].progress_message)
                for job_id, written in self._written.items()
                if job_id in self._jobs and (job_id in self._dirty or now - written >= self.heartbeat_seconds)
            ]
            self._dirty.difference_update(job_id for job_id, _, _ in due)
        for job_id, percent, message in due:
            kept = self.store.progress(job_id, self.owner, percent, message[:512], dt.datetime.now(dt.UTC))
            with self._lock:
                if job_id not in self._written:
                    continue  # it ended meanwhile: the end was written
                if kept:
                    self._written[job_id] = now
                else:
                    log.warning("job %s is no longer this process's (another took it over); stopping it", job_id)
                    self._written.pop(job_id, None)
                    self._jobs.pop(job_id, None)
                    self._workers.pop(job_id, None)
                    self._lost.add(job_id)  # its thread stops at its next progress report
        return len(due)

    def _end_dead_workers(self) -> None:
        """A job whose thread is gone without its end recorded (it died of a BaseException) would otherwise get
        heartbeats until a restart and never look orphaned: it ends FAILED (INTERNAL) instead."""
        with self._lock:
            dead = [
                job_id
                for job_id, thread in self._workers.items()
                if job_id in self._written and thread.ident is not None and not thread.is_alive()
            ]
        for job_id in dead:
            log.error("job %s: its thread ended without recording an end; the job ends FAILED", job_id)
            error = "the thread running the job ended without recording an end (see the service log); run it again"
            self._finish(job_id, job_pb2.JOB_STATE_FAILED, reason="INTERNAL", error=error)

    def resume_orphans(self) -> list[str]:
        """Claim and run again the RUNNING jobs whose heartbeat is older than ``orphan_seconds`` and that no thread
        of this process runs: another process's, or this one's own whose end or give-back could not be written
        (a one-process deployment would otherwise leave them RUNNING until a restart). Of several orphans of one
        target (kind and name) the newest runs and the others end CANCELLED (SUPERSEDED); one whose target is
        gone ends FAILED (INTERRUPTED)."""
        if self.store is None or self.resolver is None:
            return []
        now = dt.datetime.now(dt.UTC)
        cutoff = now - dt.timedelta(seconds=self.orphan_seconds)
        if self._closing.is_set():
            return []
        with self._lock:
            running = set(self._written)
        rows = [r for r in self.store.orphans(cutoff) if not (r.owner_id == self.owner and r.job_id in running)]
        newest = {(r.kind, r.result_name): r.job_id for r in rows}  # oldest first: the last of each wins
        resumed = []
        for row in rows:
            if self._closing.is_set():
                break  # a stop began meanwhile
            if not self.store.claim(row.job_id, row.owner_id, self.owner, cutoff, now, RESUMED):
                continue  # another process claimed it first
            job = job_of_row(row)
            job.progress_percent, job.progress_message = 0.0, RESUMED
            job.started_at.FromDatetime(now)
            with self._lock:
                self._remember(job)
                self._written[job.job_id] = time.monotonic()
            if newest[(row.kind, row.result_name)] != row.job_id:
                error = f"a newer {row.kind} job of {row.result_name!r} was resumed in its place"
                self._finish(row.job_id, job_pb2.JOB_STATE_CANCELLED, reason="SUPERSEDED", error=error)
                continue
            try:
                function = self.resolver(row.kind, row.result_name)
            except (NotFound, InvalidArgument) as exc:  # the segment or tag is gone (unknown, archived)
                error = f"interrupted when the process running it stopped, and not resumed: {exc.message}"
                log.warning("job %s: %s", row.job_id, error)
                self._finish(row.job_id, job_pb2.JOB_STATE_FAILED, reason="INTERRUPTED", error=error)
                continue
            except Exception:  # e.g. the database is unavailable: give the job back for the next look
                log.warning("job %s could not be resumed now; given back", row.job_id, exc_info=True)
                with self._lock:
                    self._written.pop(row.job_id, None)
                    self._jobs.pop(row.job_id, None)
                self._safely(lambda job_id=row.job_id: self.store.unclaim(job_id, self.owner))  # type: ignore[union-attr]
                continue
            log.warning("job %s (%s of %r) resumed: its process stopped", row.job_id, row.kind, row.result_name)
            self._start_thread(row.job_id, function)
            resumed.append(row.job_id)
        return resumed

    def prune(self) -> int:
        """Delete jobs that ended more than ``retention_days`` ago."""
        if self.store is None:
            return 0
        return self.store.prune(dt.datetime.now(dt.UTC) - dt.timedelta(days=self.retention_days))

    # -- running ----------------------------------------------------------------------------------------
    def _start_thread(self, job_id: str, function: JobFunction) -> None:
        thread = threading.Thread(target=self._run, args=(job_id, function), name=job_id, daemon=True)
        with self._lock:
            self._threads.add(thread)
            self._workers[job_id] = thread  # not yet started (ident None): counts as alive
        thread.start()

    def _run(self, job_id: str, function: JobFunction) -> None:
        try:
            message = function(lambda percent, text: self._progress(job_id, percent, text))
        except Superseded as exc:
            self._finish(job_id, job_pb2.JOB_STATE_CANCELLED, reason="SUPERSEDED", error=str(exc))
        except QimingError as exc:
            self._finish(job_id, job_pb2.JOB_STATE_FAILED, reason=exc.reason, error=exc.message)
        except Exception as exc:  # a job must end in a state the caller can read
            log.exception("job %s failed", job_id)
            self._finish(job_id, job_pb2.JOB_STATE_FAILED, reason="INTERNAL", error=f"{type(exc).__name__}: {exc}")
        else:
            self._finish(job_id, job_pb2.JOB_STATE_SUCCEEDED, message=message)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _remember(self, job: job_pb2.Job) -> None:
        """Under the lock."""
        self._jobs[job.job_id] = job
        if len(self._jobs) > self._keep:  # forget the oldest ended jobs (the table keeps them); never a running one
            for job_id in [j for j in self._jobs if j not in self._written][: len(self._jobs) - self._keep]:
                del self._jobs[job_id]

    def _progress(self, job_id: str, percent: float, message: str) -> None:
        with self._lock:
            if job_id in self._lost:
                self._lost.discard(job_id)
                raise Superseded("another process took this job over (its heartbeat here had gone stale)")
            job = self._jobs.get(job_id)
            if job is not None:
                job.progress_percent = max(0.0, min(100.0, percent))
                job.progress_message = message
                self._dirty.add(job_id)

    def _finish(self, job_id: str, state: Any, message: str = "", reason: str = "", error: str = "") -> job_pb2.Job:
        with self._lock:
            job = self._jobs.get(job_id)
            mine = self._written.pop(job_id, None) is not None
            self._dirty.discard(job_id)
            self._workers.pop(job_id, None)
            if job is not None:
                job.state = state
                job.finished_at.FromMicroseconds(time.time_ns() // 1000)
                if state == job_pb2.JOB_STATE_SUCCEEDED:
                    job.progress_percent, job.progress_message = 100.0, message
                else:
                    job.error_reason, job.error_message = reason, error
                ended = job_pb2.Job()
                ended.CopyFrom(job)
        if job is None:
            return self.get(job_id)
        if self.store is not None and mine:
            try:
                self.store.finish(
                    job_id,
                    self.owner,
                    _state_name(state),
                    ended.progress_percent,
                    ended.progress_message[:512],
                    ended.error_reason[:64],
                    ended.error_message,
                    _utc(ended.finished_at),
                )
            except Exception:  # the row stays RUNNING; its heartbeat stops, so a process runs it again later
                log.warning("job %s ended %s but could not be recorded", job_id, _state_name(state), exc_info=True)
        return ended

    def _row(self, job: job_pb2.Job) -> dict[str, Any]:
        return {
            "job_id": job.job_id,
            "kind": job.kind,
            "result_name": job.result_name,
            "state": RUNNING,
            "progress_percent": job.progress_percent,
            "progress_message": job.progress_message[:512],
            "error_reason": "",
            "error_message": "",
            "created_by": job.created_by,
            "created_at": _utc(job.created_at),
            "started_at": _utc(job.started_at),
            "finished_at": None,
            "owner_id": self.owner,
            "heartbeat_at": _utc(job.created_at),
        }


__all__ = ["JobFunction", "Jobs", "Progress", "Resolver", "Superseded", "job_of_row"]
