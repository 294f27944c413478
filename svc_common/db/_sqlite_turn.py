"""Writers of one SQLite file take turns through lock files before ``BEGIN IMMEDIATE``.

SQLite makes a writer that meets another one's lock sleep in its busy handler (1, 2, 5, 10 … 100 ms) and try again:
a lock freed after 2 ms may stay unused for the rest of a 10 ms sleep. With two collector workers on one SQLite log
(``workers = 2``) each spent most of its time asleep there (measured: 2 workers 34,690 events/s against 31,579 for
one, with 0.9 of the two cores idle). Here a writer first takes its turn: a thread lock within the process, then an
``flock`` on ``<database>-writer`` between processes. A waiting process is woken within a millisecond of the turn's
release, and a gate (``<database>-writer-gate``, held by the next writer while it waits) keeps one busy process from
taking the turn back again and again ahead of a waiting one. The wait is bounded by ``sqlite_busy_timeout_millis``,
as SQLite's own is: past it the write fails as UNAVAILABLE, as a busy SQLite lock does.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time

from svc_common.errors import DATABASE_BUSY, Unavailable

POLL_SECONDS_MAX = 0.001
"""The longest sleep between two tries of a lock file held by another process (the wake-up delay at most)."""


class WriterTurn:
    """One SQLite file's turn to write, for the connections of one ``Database``."""

    def __init__(self, database_path: str, timeout_millis: int) -> None:
        self.path = database_path + "-writer"
        self.timeout_seconds = timeout_millis / 1000
        self._thread_lock = threading.Lock()
        self._turn: int | None = None
        self._gate: int | None = None

    def acquire(self) -> None:
        """Wait for the turn (raise :class:`Unavailable` after the timeout). Release it with :meth:`release`, from
        any thread (svc_profile's log consumer commits on a thread of its own)."""
        deadline = time.monotonic() + self.timeout_seconds
        if not self._thread_lock.acquire(timeout=self.timeout_seconds):
            raise _busy()
        try:
            turn, gate = self._files()
            # Through the gate: a process waiting for the turn holds it, so the one that just wrote cannot take the
            # turn back before it (two flock calls a transaction when nobody waits).
            _wait(gate, deadline)
            try:
                _wait(turn, deadline)
            finally:
                fcntl.flock(gate, fcntl.LOCK_UN)
        except BaseException:
            self._thread_lock.release()
            raise

    def release(self) -> None:
        if self._turn is not None:
            fcntl.flock(self._turn, fcntl.LOCK_UN)
        self._thread_lock.release()

    def close(self) -> None:
        for fd in (self._turn, self._gate):
            if fd is not None:
                os.close(fd)
        self._turn = self._gate = None

    def _files(self) -> tuple[int, int]:
        if self._turn is None or self._gate is None:
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
            self._turn = os.open(self.path, flags, 0o600)
            self._gate = os.open(self.path + "-gate", flags, 0o600)
        return self._turn, self._gate


def _try(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _wait(fd: int, deadline: float) -> None:
    delay = 0.0001
    while not _try(fd):
        if time.monotonic() >= deadline:
            raise _busy()
        time.sleep(delay)
        delay = min(delay * 2, POLL_SECONDS_MAX)


def _busy() -> Unavailable:
    return Unavailable(
        "the service's SQLite database was busy with another writer longer than sqlite_busy_timeout_millis; "
        "retry with backoff",
        reason=DATABASE_BUSY,
    )
