"""SQLite writers take turns through lock files (svc_common/db/_sqlite_turn.py): a write transaction holds the turn,
a writer of another process waiting for it gets it next instead of sleeping in SQLite's busy handler while the other
process writes again, and a turn held past the busy timeout fails the write as UNAVAILABLE."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from svc_common.config import ServiceSettings
from svc_common.db import Database
from svc_common.errors import DATABASE_BUSY, Unavailable

ROOT = Path(__file__).resolve().parents[1]


def _database(tmp_path: Path, busy_timeout_millis: int = 5000) -> Database:
    settings = ServiceSettings(data_dir=tmp_path, sqlite_busy_timeout_millis=busy_timeout_millis)
    database = Database.from_settings(settings)
    with database.connection(write=True) as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (who TEXT, n INTEGER)"))
    return database


def _held(path: str) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_write_transaction_holds_the_turn_and_a_read_does_not(tmp_path: Path) -> None:
    database = _database(tmp_path)
    turn = database.engine.url.database + "-writer"
    with database.connection() as conn:
        conn.execute(text("SELECT count(*) FROM t"))
        assert not _held(turn)
    with database.connection(write=True) as conn:
        conn.execute(text("INSERT INTO t VALUES ('a', 1)"))
        assert _held(turn)
    assert not _held(turn)
    with pytest.raises(RuntimeError), database.session(write=True) as session:
        session.execute(text("INSERT INTO t VALUES ('a', 2)"))
        assert _held(turn)
        raise RuntimeError("rolled back")
    assert not _held(turn)  # released after a rollback too
    database.dispose()


def test_the_turn_may_be_released_by_another_thread(tmp_path: Path) -> None:
    """svc_profile's log consumer opens a batch's transaction on its thread and commits it on its pipeline's."""
    database = _database(tmp_path)
    cm = database.connection(write=True)
    conn = cm.__enter__()
    conn.execute(text("INSERT INTO t VALUES ('a', 1)"))
    done = threading.Thread(target=cm.__exit__, args=(None, None, None))
    done.start()
    done.join()
    with database.connection(write=True) as conn:  # would wait for the busy timeout if the turn were still held
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 1
    database.dispose()


_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from sqlalchemy import text
    from svc_common.config import ServiceSettings
    from svc_common.db import Database

    database = Database.from_settings(ServiceSettings(data_dir=Path(sys.argv[1])))
    print("writing", flush=True)
    end = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < end:  # back to back: a new transaction as soon as the last one commits
        with database.connection(write=True) as conn:
            conn.execute(text("INSERT INTO t VALUES ('other', 1)"))
            time.sleep(0.02)
    """
)


def test_a_waiting_process_gets_the_turn_before_a_busy_one_takes_it_back(tmp_path: Path) -> None:
    database = _database(tmp_path, busy_timeout_millis=2000)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    other = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path), "6"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "writing"
        for n in range(5):  # each would wait out SQLite's busy timeout while the other process writes again
            with database.connection(write=True) as conn:
                conn.execute(text("INSERT INTO t VALUES ('this', :n)"), {"n": n})
    finally:
        other.wait(timeout=30)
        if other.stdout is not None:
            other.stdout.close()
    with database.connection() as conn:
        assert conn.execute(text("SELECT count(*) FROM t WHERE who = 'this'")).scalar() == 5
        assert conn.execute(text("SELECT count(*) FROM t WHERE who = 'other'")).scalar() > 0
    database.dispose()


def test_a_turn_held_past_the_busy_timeout_fails_the_write_as_unavailable(tmp_path: Path) -> None:
    database = _database(tmp_path, busy_timeout_millis=100)
    fd = os.open(database.engine.url.database + "-writer", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another process's writer, stopped while it writes
    try:
        with pytest.raises(Unavailable, match="busy with another writer") as raised, database.connection(write=True):
            pass
        assert raised.value.reason == DATABASE_BUSY  # not DEPENDENCY_UNAVAILABLE: the database is up
    finally:
        os.close(fd)
    with database.connection(write=True) as conn:  # the turn is free again: the failed wait gave up its locks
        conn.execute(text("INSERT INTO t VALUES ('a', 1)"))
    database.dispose()


def test_sqlites_own_busy_error_is_database_busy_not_an_outage(tmp_path: Path) -> None:
    """A writer that does not take the turn (another program on the file) holds SQLite's lock past busy_timeout: the
    write fails UNAVAILABLE with reason DATABASE_BUSY (retry; health stays SERVING), not DEPENDENCY_UNAVAILABLE."""
    import sqlite3

    database = _database(tmp_path, busy_timeout_millis=100)
    other = sqlite3.connect(database.engine.url.database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # SQLite's write lock, without the writer turn's lock file
    try:
        with pytest.raises(Unavailable) as raised, database.connection(write=True) as conn:
            conn.execute(text("INSERT INTO t VALUES ('a', 1)"))
        assert raised.value.reason == DATABASE_BUSY
        assert "busy" in raised.value.message and "retry" in raised.value.message
    finally:
        other.execute("ROLLBACK")
        other.close()
    with database.connection(write=True) as conn:
        conn.execute(text("INSERT INTO t VALUES ('a', 2)"))
    database.dispose()
