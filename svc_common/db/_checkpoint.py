"""SQLite checkpoints off the commit path.

In WAL mode SQLite copies the log back into the database file (a checkpoint) inside whichever commit pushes the
WAL past ``wal_autocheckpoint`` pages (1,000 by default): that commit then also writes and fsyncs every page the
log holds, so one in every few group commits of the collector or batches of a consumer takes several times as
long. A ``WalCheckpointer`` does that work in a thread of its own, with its own connection, every
``interval_millis`` (``PRAGMA wal_checkpoint(PASSIVE)``: it never waits for readers or writers), and the service's
connections keep an automatic checkpoint only as a backstop (``BACKSTOP_PAGES``) should the thread fall behind.
Durability is unchanged: a commit is durable when its WAL frames are synced, before any checkpoint.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger("qiming.db.checkpoint")
BACKSTOP_PAGES = 20_000
"""``wal_autocheckpoint`` of the service's connections while a checkpointer runs (80 MiB of 4 KiB pages)."""


class WalCheckpointer:
    def __init__(self, path: str, interval_millis: int, busy_timeout_millis: int) -> None:
        self._path = path
        self._interval = interval_millis / 1000
        self._busy_timeout_millis = busy_timeout_millis
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.checkpoints = 0
        """Passes that copied pages back (for tests and metrics)."""

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def checkpoint(self, conn: sqlite3.Connection) -> tuple[int, int]:
        """One passive checkpoint: (frames in the WAL, frames now copied into the database)."""
        _busy, wal_frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if copied > 0:
            self.checkpoints += 1
        return wal_frames, copied

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while not self._stop.wait(self._interval):
                try:
                    if conn is None:
                        conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
                        conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_millis)}")
                    self.checkpoint(conn)
                except sqlite3.Error as exc:
                    # The database may be gone (tests), locked for a moment, or not yet in WAL mode: the backstop
                    # still bounds the log, so note it and try again at the next interval.
                    log.debug("passive checkpoint of %s skipped: %s", self._path, exc)
                    if conn is not None:
                        conn.close()
                        conn = None
        finally:
            if conn is not None:
                conn.close()
