"""The log consumer's commits on a thread of their own: batch N commits while the consumer computes batch N+1.

A batch's statements go to a ``BatchConnection``. Its writes are buffered (``defer``) and run, in order, when the batch
first needs the database for a read or when it ends; either waits first until the previous batch's commit is done.
The commit itself (SQLite: writing the pages to the WAL and its fsync; PostgreSQL: the server's commit) runs on the
``Pipeline``'s thread, which releases the GIL for it, while the consumer resolves, folds and evaluates the next
batch from its cache of hot persons. Exactly once holds as before: the cursor is written in the batch's
transaction, and a batch whose predecessor's commit failed never writes — it raises (its first read or its end
waits for that commit and raises its error), the cache is emptied, and the log follower resumes from the stored
cursor. Every other writer (``Core.writing``) and a reload of the cursor wait for the commit in flight.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import context as otel_context
from sqlalchemy.engine import Connection

from svc_common.db import Database
from svc_profile.store import _stage

Job = Callable[[], None]
IDLE_SECONDS = 5.0
"""How long the pipeline's thread waits for a job before it ends (a process holds no idle thread per ``Core``)."""
log = logging.getLogger("qiming.profile")


def shorten_switch_interval(micros: int) -> None:
    """Python's GIL switch interval down to ``micros`` (never up; 0: unchanged). The commit thread takes the GIL back
    after each statement's step and its commit while the consumer's thread computes the next batch and holds it,
    handing it over only when an interval has passed: each statement of the commit job waited up to one interval."""
    seconds = micros / 1_000_000
    if micros and seconds < sys.getswitchinterval():
        sys.setswitchinterval(seconds)
        log.info("GIL switch interval %d µs for the log consumer's commits (consumer_switch_interval_micros)", micros)


class Pipeline:
    """One thread that runs commits handed over by the consumer, in order; a failure is kept until taken."""

    def __init__(self, database: Database, stage: bool = True, switch_interval_micros: int = 0) -> None:
        self.database = database
        self.stage = stage
        """SQLite: stage the batches' bulk writes for their commit job (``consumer_stage_writes``)."""
        self.switch_interval_micros = switch_interval_micros
        """Applied as the thread first starts (:func:`shorten_switch_interval`)."""
        self._jobs: deque[tuple[Job, bool]] = deque()
        self._busy = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    def begin(self) -> BatchConnection:
        """A batch's connection: nothing is opened until it is used."""
        return BatchConnection(self)

    def submit(self, job: Job, opened: bool = False) -> None:
        """Run ``job`` after those handed over before. While a failure is kept (not yet taken), jobs are skipped,
        but for those of a batch whose transaction is ``opened`` already: they run (and roll it back)."""
        with self._cond:
            if self._thread is None:
                shorten_switch_interval(self.switch_interval_micros)
                self._thread = threading.Thread(target=self._run, name="profile-commit", daemon=True)
                self._thread.start()
            self._jobs.append((job, opened))
            self._cond.notify_all()

    def wait(self) -> None:
        """Until every job handed over is done (its failure, if any, kept for ``take_failure``)."""
        with self._cond:
            while self._jobs or self._busy:
                self._cond.wait()

    def take_failure(self) -> BaseException | None:
        """The failure of a commit handed over (None: none), forgotten once taken. Call after ``wait``."""
        with self._cond:
            failure, self._failure = self._failure, None
            return failure

    def check(self) -> None:
        """Wait for the jobs handed over; raise the failure of one of them."""
        self.wait()
        failure = self.take_failure()
        if failure is not None:
            raise failure

    @property
    def failed(self) -> bool:
        with self._cond:
            return self._failure is not None

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs:
                    if not self._cond.wait(timeout=IDLE_SECONDS) and not self._jobs:
                        self._thread = None  # idle: the next job starts a thread again (submit)
                        return
                job, opened = self._jobs.popleft()
                if self._failure is not None and not opened:
                    self._cond.notify_all()  # a batch after a failed one never writes; wait() may return
                    continue
                self._busy = True
            try:
                job()
            except BaseException as exc:  # kept for the consumer's next batch (or a reload of its cursor)
                with self._cond:
                    if self._failure is None:
                        self._failure = exc
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()


class BatchConnection:
    """The consumer's connection for one batch: writes buffered, the transaction opened on first use (after the
    previous batch's commit), committed on the pipeline's thread. Attributes other than ``defer``, ``dialect``,
    ``commit_later`` and ``abort`` are the opened connection's (a read runs the buffered writes first)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._buffer: list[Callable[[Connection], Any]] = []
        self._whole = True
        """Every buffered write is one statement (not one driver step per row): they can run on the pipeline's
        thread too, which holds the GIL only around each statement, not around each row."""
        self._cm: Any = None
        self._conn: Connection | None = None
        self.dialect = pipeline.database.engine.dialect
        self._stages = pipeline.stage and self.dialect.name == "sqlite" and _stage.AVAILABLE

    def defer(self, write: Callable[[Connection], Any], whole: bool = False) -> None:
        """Run ``write(connection)`` before the batch's next read, or at its end; what it is given must not change
        meanwhile. ``whole``: it is one statement for all its rows (PostgreSQL's arrays). On SQLite a write with a
        ``staged`` method (``_bulk.StagedRows``) counts as whole: at the batch's end its rows are staged
        (``svc_profile.store._stage``) and it becomes one statement."""
        self._buffer.append(write)
        self._whole = self._whole and (whole or (self._stages and hasattr(write, "staged")))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.now(), name)

    def reading(self, tables: Iterable[str], matters: Callable[[Any], bool] | None = None) -> Any:
        """The connection for a read of ``tables`` only, opened when the read first uses it (a read of no rows waits
        for nothing: opening waits for the previous batch's commit). The buffered writes then run up to the last one
        that writes one of them (one without a ``table`` attribute may write any) and that ``matters`` to the read
        (None: every one); those after it stay buffered, in order, for the batch's end (where they can still be
        staged). A segment change's read of the persons' ids thus leaves the batch's features, buckets and retained
        events to its end."""
        return _Reading(self, frozenset(tables), matters)

    def _reading(self, tables: frozenset[str], matters: Callable[[Any], bool] | None) -> Connection:
        if self._conn is None:
            self._pipeline.check()
        conn = self._open()
        last = -1
        for i, write in enumerate(self._buffer):
            table = getattr(write, "table", None)
            if table is None or (table in tables and (matters is None or matters(write))):
                last = i
        if last >= 0:
            run, self._buffer = self._buffer[: last + 1], self._buffer[last + 1 :]
            for write in run:
                write(conn)
        return conn

    def _open(self) -> Connection:
        if self._conn is None:
            self._cm = self._pipeline.database.connection(write=True)
            self._conn = self._cm.__enter__()
        return self._conn

    def now(self) -> Connection:
        """The open connection, the buffered writes run: waits for the previous batch's commit (its failure raised)."""
        if self._conn is None:
            self._pipeline.check()
        conn = self._open()
        if self._buffer:
            buffer, self._buffer = self._buffer, []
            self._whole = True  # of the writes buffered from now on
            for write in buffer:
                write(conn)
        return conn

    def commit_later(self, after: Callable[[], None] | None = None) -> None:
        """Commit on the pipeline's thread (``after`` called once committed), with the buffered writes when each is
        one statement (else they run here first), once the batch before is done: its failure is raised here, and
        nothing of this batch is written."""
        if self._conn is None and not self._buffer:
            return
        if self._pipeline.failed:
            self._pipeline.check()
        if not self._whole:
            self.now()
        buffer, self._buffer = self._buffer, []
        image = None
        if any(hasattr(write, "staged") for write in buffer):
            stage = _stage.Stage()
            buffer = [write.staged(stage) if hasattr(write, "staged") else write for write in buffer]  # type: ignore[attr-defined]
            image = stage.image()

        # The batch's context (svc_common.telemetry.batch_span): the commit's statements start no trace of their own.
        traced = otel_context.get_current()

        def commit() -> None:
            token = otel_context.attach(traced)
            try:
                run_commit()
            finally:
                otel_context.detach(token)

        def run_commit() -> None:
            if self._pipeline.failed:  # not expected: a batch opens its transaction after the previous commit
                self.abort(RuntimeError("a log batch before this one failed"))
                return
            conn = self._open()
            try:
                if image is not None:
                    _stage.load(conn, image)
                for write in buffer:
                    write(conn)
            except BaseException as exc:
                self.abort(exc)
                raise
            cm, self._cm, self._conn = self._cm, None, None
            cm.__exit__(None, None, None)  # raises when the commit fails: kept as the pipeline's failure
            if after is not None:
                try:
                    after()
                except Exception:  # committed: a failing notification must not make the batch count as failed
                    log.exception("after a log batch's commit")

        opened = self._conn is not None
        self._pipeline.check()  # one batch in flight at most; a failure of the one before is raised here
        self._pipeline.submit(commit, opened=opened)

    def abort(self, exc: BaseException) -> None:
        """Roll back what this batch wrote."""
        self._buffer.clear()
        cm, self._cm, self._conn = self._cm, None, None
        if cm is not None:
            with contextlib.suppress(BaseException):  # the batch's own error is the one raised
                cm.__exit__(type(exc), exc, exc.__traceback__)


class _Reading:
    """``BatchConnection.reading``'s connection: its dialect at once, anything else from the batch's connection
    opened for the read on first use."""

    __slots__ = ("_batch", "_conn", "_matters", "_tables", "dialect")

    def __init__(self, batch: BatchConnection, tables: frozenset[str], matters: Callable[[Any], bool] | None) -> None:
        self._batch, self._tables, self._matters = batch, tables, matters
        self._conn: Connection | None = None
        self.dialect = batch.dialect

    def __getattr__(self, name: str) -> Any:
        conn = self._conn
        if conn is None:
            conn = self._conn = self._batch._reading(self._tables, self._matters)
        return getattr(conn, name)


__all__ = ["BatchConnection", "Pipeline"]
