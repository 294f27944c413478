"""Recompute jobs: within the call on a small population, in a background thread on a large one, pollable
through ``JobService.GetJob`` (docs/profile.md, "Recompute"). Jobs live in this process's memory."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from svc_common.errors import NotFound, QimingError
from svc_common.pb.qiming.common.v1 import job_pb2

log = logging.getLogger("qiming.profile")
Progress = Callable[[float, str], None]
"""``progress(percent 0-100, message)``: what a running job reports."""
JobFunction = Callable[[Progress], str]
"""Runs the work, reporting progress; returns the final message ("entered 12, exited 3")."""
KEEP_JOBS = 1_000


class Superseded(Exception):
    """Raised by a job function that stops because a newer job does its work: the job ends CANCELLED."""


class Jobs:
    def __init__(self, keep: int = KEEP_JOBS) -> None:
        self._jobs: OrderedDict[str, job_pb2.Job] = OrderedDict()
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._keep = keep

    def submit(
        self, kind: str, result_name: str, function: JobFunction, *, background: bool, created_by: str = ""
    ) -> job_pb2.Job:
        """Run ``function`` as a job. Inline (``background`` false): errors reach the caller as they are and
        the job comes back SUCCEEDED. In the background: the job comes back RUNNING; a failure is recorded
        on the job (FAILED, with the error's reason and message)."""
        job = job_pb2.Job(
            job_id=f"{kind}-{uuid.uuid4().hex[:16]}",
            kind=kind,
            state=job_pb2.JOB_STATE_RUNNING,
            progress_message="started",
            result_name=result_name,
            created_by=created_by,
        )
        job.created_at.GetCurrentTime()
        job.started_at.CopyFrom(job.created_at)
        self._store(job)
        if not background:
            try:
                message = function(lambda percent, text: self._progress(job.job_id, percent, text))
            except Superseded as exc:
                return self._finish(job.job_id, job_pb2.JOB_STATE_CANCELLED, reason="SUPERSEDED", error=str(exc))
            return self._finish(job.job_id, job_pb2.JOB_STATE_SUCCEEDED, message=message)
        running = self.get(job.job_id)  # as started: the caller sees it RUNNING however fast it ends
        thread = threading.Thread(target=self._run, args=(job.job_id, function), name=job.job_id, daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()
        return running

    def get(self, job_id: str) -> job_pb2.Job:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise NotFound(
                    f"no job {job_id!r} in this process (jobs are kept in memory, the last {self._keep})",
                    reason="JOB_NOT_FOUND",
                )
            out = job_pb2.Job()
            out.CopyFrom(job)
            return out

    def wait(self, timeout_seconds: float) -> None:
        """Let running jobs finish (at stop), at most ``timeout_seconds``."""
        deadline = time.monotonic() + timeout_seconds
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

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

    def _store(self, job: job_pb2.Job) -> None:
        with self._lock:
            self._jobs[job.job_id] = job
            while len(self._jobs) > self._keep:
                self._jobs.popitem(last=False)

    def _progress(self, job_id: str, percent: float, message: str) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                job.progress_percent = max(0.0, min(100.0, percent))
                job.progress_message = message

    def _finish(self, job_id: str, state: Any, message: str = "", reason: str = "", error: str = "") -> job_pb2.Job:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                job.state = state
                job.finished_at.GetCurrentTime()
                if state == job_pb2.JOB_STATE_SUCCEEDED:
                    job.progress_percent, job.progress_message = 100.0, message
                else:
                    job.error_reason, job.error_message = reason, error
        return self.get(job_id)


__all__ = ["Jobs", "Progress", "Superseded"]
