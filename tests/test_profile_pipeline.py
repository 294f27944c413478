"""The log consumer's commits on the pipeline's thread (``svc_profile.pipeline``): batches handed over with
``submit`` (each committed while the next is computed) end exactly as batches committed one by one, a failed
commit fails the next batch before it writes and the replay from the stored cursor is exact, and every other
writer and a reload of the cursor wait for the commit in flight. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from profile_helpers import event, profile_app, profile_settings, second_database
from sqlalchemy import func, select
from test_profile_fastpath import _state, _stream

from svc_common.errors import Unavailable
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb


def _batches(seed: int, persons: int, n: int) -> list[list[Any]]:
    """``test_profile_fastpath._stream``'s events cut into many batches of 7 to 120 events."""
    events = [e for batch in _stream(seed, persons, n) for e in batch]
    out, sizes = [], [7, 50, 120, 31]
    while events:
        size = sizes[len(out) % len(sizes)]
        out.append(events[:size])
        events = events[size:]
    return out


QUOTERS = C.Condition(event_count=C.EventCount(event_type="quote_view", min_count=2, window_seconds=30 * 86_400))


def _commits(app: Any, fail: set[int] | None = None, delay: float = 0.0) -> list[str]:
    """Commits on the pipeline's thread are counted (1, 2, ...); those numbered in ``fail`` raise the driver's
    OperationalError instead of committing, each waits ``delay`` seconds first. Returns the log of them."""
    dialect = app.core.database.engine.dialect
    original = dialect.do_commit
    seen: list[str] = []

    def do_commit(dbapi_connection: Any) -> None:
        if threading.current_thread().name == "profile-commit":
            seen.append("commit")
            time.sleep(delay)
            if fail and len(seen) in fail:
                raise dialect.loaded_dbapi.OperationalError("injected: the disk is full")
        original(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    return seen


@pytest.mark.parametrize("seed", [3, 4])
def test_pipelined_batches_equal_batches_committed_one_by_one(tmp_path: Path, database_url: str, seed: int) -> None:
    """The same stream through ``submit`` (nothing waited for between batches; another writer in the middle, a crash
    in mid-batch replayed) and through ``handle`` with no cache: identical features, buckets, retained events,
    tags, memberships and outbox."""
    batches = _batches(seed, persons=60, n=900)
    states = []
    with second_database(tmp_path, database_url) as second:
        for pipelined, url in ((False, database_url), (True, second)):
            settings = profile_settings(tmp_path / f"p{pipelined}", url, hot_persons=100_000 if pipelined else 0)
            with profile_app(settings) as app:
                app.definitions.create_segment(pb.Segment(segment_id="quoters", condition=QUOTERS))
                commits = _commits(app)
                for i, batch in enumerate(batches):
                    if not pipelined:
                        app.consumer.handle(batch, f"c{i}")
                        continue
                    if i == len(batches) // 3:
                        app.consumer.fail_after_features = True
                        with pytest.raises(RuntimeError):
                            app.consumer.submit(batch, f"c{i}")
                        app.consumer.fail_after_features = False
                        assert app.consumer.load_cursor() == f"c{i - 1}"
                    if i == len(batches) // 2:  # another writer: it waits for the commit in flight
                        with app.core.writing() as conn:
                            held = conn.execute(select(func.count()).select_from(app.core.store.t["consumer"]))
                            assert held.scalar_one() == 1
                    app.consumer.submit(batch, f"c{i}")
                app.consumer.drain()
                if pipelined:
                    assert len(commits) == len(batches) and app.core.hot.hits > 0
                    assert app.consumer.load_cursor() == f"c{len(batches) - 1}"
                states.append(_state(app))
    assert states[0] == states[1]
    assert states[0]["outbox"] > 0 and states[0]["tags"] and states[0]["members"]


def test_a_failed_commit_fails_the_next_batch_and_the_replay_is_exact(tmp_path: Path, database_url: str) -> None:
    """Batch k's commit fails on the pipeline's thread after ``submit`` returned: batch k+1 raises before it writes
    (the cache emptied), the stored cursor is batch k-1's, and replaying from it (as the log follower does) ends
    exactly as a consumer that never failed."""
    batches = _batches(5, persons=40, n=600)
    k = len(batches) // 2
    states = []
    with second_database(tmp_path, database_url) as second:
        for failing, url in ((False, database_url), (True, second)):
            with profile_app(profile_settings(tmp_path / f"f{failing}", url)) as app:
                app.definitions.create_segment(pb.Segment(segment_id="quoters", condition=QUOTERS))
                commits = _commits(app, fail={k + 1} if failing else None, delay=0.2 if failing else 0.0)
                i = 0
                while i < len(batches):
                    try:
                        app.consumer.submit(batches[i], f"c{i}")
                    except Unavailable:
                        assert failing and i == k + 1 and not app.core.hot.rows  # batch k+1 wrote nothing
                        cursor = app.consumer.load_cursor()
                        assert cursor == f"c{k - 1}"
                        i = int(cursor[1:]) + 1
                        continue
                    i += 1
                app.consumer.drain()
                assert len(commits) == len(batches) + (1 if failing else 0)  # batch k's failed commit counted too
                states.append(_state(app))
    assert states[0] == states[1]


def test_drain_raises_the_last_commits_failure(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, None, finance_pack=False)) as app:
        _commits(app, fail={2})
        app.consumer.submit([event("login", user_id="U1")], "c1")
        app.consumer.submit([event("login", user_id="U2")], "c2")
        with pytest.raises(Unavailable):
            app.consumer.drain()
        assert not app.core.hot.rows and app.consumer.load_cursor() == "c1"
        app.consumer.drain()  # taken once
        with pytest.raises(Unavailable):
            _commits(app, fail={1})
            app.consumer.handle([event("login", user_id="U2")], "c2")  # handle: committed (or raised) on return
        assert app.consumer.load_cursor() == "c1"


def test_other_writers_and_the_cursor_wait_for_the_commit_in_flight(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        seen = _commits(app, delay=0.3)
        person = app.core.store.t["person"]
        app.consumer.submit([event("login", user_id=f"U{i}") for i in range(5)], "c1")
        with app.core.writing() as conn:  # the batch's rows are there, and the cache is emptied
            assert conn.execute(select(func.count()).select_from(person)).scalar_one() == 5
            assert not app.core.hot.rows
        app.consumer.submit([event("login", user_id="U9")], "c2")
        assert app.consumer.load_cursor() == "c2"
        assert seen == ["commit", "commit"]


class Follower:
    """The service's log follower as the commit watcher uses it: each stop and start recorded."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def stop(self) -> None:
        self.calls.append("stop")

    def start(self) -> None:
        self.calls.append("start")


def test_a_failed_commit_with_no_batch_after_it_restarts_the_follower(tmp_path: Path) -> None:
    """The log goes idle after a batch whose commit fails: no next batch raises it, so the service restarts its
    follower, which reloads the stored cursor (the batch is replayed); a commit that succeeds restarts nothing."""

    with profile_app(profile_settings(tmp_path, None, finance_pack=False)) as app:
        follower = app.follower = Follower()  # type: ignore[assignment]
        _commits(app, fail={2})

        async def batch(user: str, cursor: str) -> None:
            await app._handle([event("login", user_id=user)], cursor)
            if app._watch is not None:
                await app._watch

        asyncio.run(batch("U1", "c1"))
        assert follower.calls == []
        asyncio.run(batch("U2", "c2"))
        assert follower.calls == ["stop", "start"]
        assert app.consumer.load_cursor() == "c1"


def test_a_batch_handed_over_while_the_watcher_waits_is_watched_too(tmp_path: Path) -> None:
    """The commit watcher runs while a batch's commit is in flight; a second batch handed over meanwhile starts no
    second watcher. When the first commit succeeds and the second fails with the log idle, the watcher waits for
    that one too and restarts the follower (walk 2026-12-07: it returned after the first, and nothing restarted
    the follower until the next event)."""

    class Pipeline:
        def __init__(self) -> None:
            self.done = [threading.Event(), threading.Event()]
            self.waits = 0
            self.failed = False

        def wait(self) -> None:
            self.waits += 1
            self.done[min(self.waits, 2) - 1].wait(10)

    with profile_app(profile_settings(tmp_path, None, finance_pack=False)) as app:
        pipeline = app.core.pipeline = Pipeline()  # type: ignore[assignment]
        follower = app.follower = Follower()  # type: ignore[assignment]
        app.consumer.submit = lambda events, cursor: {}  # type: ignore[method-assign]

        async def scenario() -> None:
            await app._handle([], "c1")
            watcher = app._watch
            await asyncio.sleep(0.05)  # the watcher waits for the first commit
            await app._handle([], "c2")
            assert app._watch is watcher  # no second watcher while one runs
            pipeline.done[0].set()  # the first commit: fine
            await asyncio.sleep(0.1)
            pipeline.failed = True
            pipeline.done[1].set()  # the second: failed, and no batch follows
            await asyncio.wait_for(watcher, 5)  # type: ignore[arg-type]

        asyncio.run(scenario())
        assert pipeline.waits == 2 and follower.calls == ["stop", "start"]


def test_a_job_skipped_after_a_failure_wakes_those_waiting() -> None:
    """A job handed over after a failed one (not taken yet) is skipped, and ``wait`` returns once it is."""
    from svc_profile.pipeline import Pipeline

    pipeline = Pipeline(None)  # type: ignore[arg-type]  # jobs only: no database
    ran: list[str] = []

    def fail() -> None:
        raise RuntimeError("the commit failed")

    pipeline.submit(fail)
    pipeline.wait()
    assert pipeline.failed

    def hand_over_and_wait() -> None:
        for _ in range(20):
            pipeline.submit(lambda: ran.append("ran"))
            pipeline.wait()

    waiter = threading.Thread(target=hand_over_and_wait, daemon=True)
    waiter.start()
    waiter.join(timeout=10)
    assert not waiter.is_alive() and ran == []
    with pytest.raises(RuntimeError):
        pipeline.check()


@pytest.mark.parametrize("dialect_name", ["sqlite", "postgresql", "dm", "opengauss"])
def test_transitions_and_tag_deletions_go_through_bulk_for_every_dialect(dialect_name: str) -> None:
    """The lifecycle transitions and tag deletions are bulk statements now (PostgreSQL: one statement of arrays, so
    the pipeline's thread can run them): each compiles for every dialect and names every row's values."""
    from test_profile_upsert import make_dialect

    from svc_profile.store import tables
    from svc_profile.store._sql import ProfileStore

    class Recorder:
        dialect = make_dialect(dialect_name)

        def __init__(self) -> None:
            self.seen: list[tuple[str, Any]] = []

        def exec_driver_sql(self, sql: str, params: Any) -> None:
            self.seen.append((sql, params))

    store, conn = ProfileStore(None, tables), Recorder()  # type: ignore[arg-type]  # compile only: no database
    store.add_transitions(
        conn,  # type: ignore[arg-type]
        [{"profile_id": f"p{i}", "from_stage": "NEW", "to_stage": "ACTIVE", "at_us": i, "rule": "r"} for i in range(3)],
    )
    store.delete_tags(conn, [("p1", "a"), ("p2", "b")])  # type: ignore[arg-type]
    (insert_sql, inserted), (delete_sql, deleted) = conn.seen
    assert insert_sql.startswith("INSERT INTO profile_lifecycle") and delete_sql.startswith("DELETE FROM profile_tag")
    if dialect_name == "postgresql":
        assert "unnest" in insert_sql and "unnest" in delete_sql
        assert inserted["profile_id"] == ["p0", "p1", "p2"] and deleted == {"p": ["p1", "p2"], "n": ["a", "b"]}
    else:
        assert len(inserted) == 3 and len(deleted) == 2


def test_the_pipelines_thread_ends_when_idle_and_starts_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from svc_profile import pipeline as module

    monkeypatch.setattr(module, "IDLE_SECONDS", 0.05)
    pipeline, ran = module.Pipeline(None), []  # type: ignore[arg-type]  # jobs only: no database
    pipeline.submit(lambda: ran.append(1))
    pipeline.wait()
    first = pipeline._thread
    assert first is not None
    first.join(timeout=5)
    assert not first.is_alive() and pipeline._thread is None
    pipeline.submit(lambda: ran.append(2))
    pipeline.check()
    assert ran == [1, 2]


def test_the_batch_after_a_failed_commit_raises_even_when_it_reads_nothing(tmp_path: Path, database_url: str) -> None:
    """Batch k+1 is all cache hits (no read waits for batch k's commit); it still raises k's failure before handing
    its own job over (on PostgreSQL its writes would otherwise be skipped while it returned as if committed)."""
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        users = [f"U{i}" for i in range(5)]
        app.consumer.handle([event("login", user_id=u) for u in users], "c0")
        app.consumer.handle([event("page_view", user_id=u) for u in users], "c1")  # every person cached
        _commits(app, fail={1}, delay=0.2)
        app.consumer.submit([event("page_view", user_id=u) for u in users], "c2")  # its commit fails, slowly
        with pytest.raises(Unavailable):
            app.consumer.submit([event("page_view", user_id=u) for u in users], "c3")
        assert app.consumer.load_cursor() == "c1" and not app.core.hot.rows
