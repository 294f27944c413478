"""Findings of the consumer walk of 2026-12-07 (session 25): a log batch (and the RPC writers) took its time before
waiting for the writer, so one that waited behind a sweep's or recompute's transaction evaluated at a time before
that transaction's, and could undo what it did; the first day a profile read cached its answer by the ids of the
definitions, which Python may give a later definition once the earlier is freed."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from profile_helpers import event, profile_app, profile_settings, ref

from svc_common.conditions import to_proto
from svc_profile import consumer as consumer_module
from svc_profile import loading as loading_module
from svc_profile import service as service_module

HOUR = 3_600_000_000


class _Held:
    """The writer's lock held by the test, told when another thread starts waiting for it."""

    def __init__(self, lock: Any) -> None:
        self._lock, self.waiting = lock, threading.Event()

    def __enter__(self) -> _Held:
        self.waiting.set()
        self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    acquire, release = __enter__, __exit__


def _waits_for_the_writer(app: Any, work: Any, released: threading.Event) -> int:
    """Run ``work`` on a thread while this one holds the writer; set ``released`` and let it go once the thread waits
    for it. Returns the time it was let go."""
    lock = app.core.write_lock
    lock.acquire()
    held = app.core.write_lock = _Held(lock)
    thread = threading.Thread(target=work, daemon=True)
    try:
        thread.start()
        assert held.waiting.wait(30)
        released.set()
        done_at = time.time_ns() // 1000
    finally:
        lock.release()
        thread.join(30)
        app.core.write_lock = lock
    assert not thread.is_alive()
    return done_at


def test_a_batch_that_waits_for_the_writer_evaluates_at_the_time_it_gets_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    released = threading.Event()
    real = consumer_module.now_us
    monkeypatch.setattr(consumer_module, "now_us", lambda: real() if released.is_set() else real() - HOUR)
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        done_at = _waits_for_the_writer(app, lambda: app.consumer.handle([event("login", "K1")], "1"), released)
        with app.core.database.connection() as conn:
            pid = app.core.find(conn, app.core.policy.ref(ref("K1").type, "K1", "user"))
            (row,) = app.core.store.load_persons(conn, [pid]).values()
        assert row.updated_us >= done_at  # evaluated at its own time, not at the one before the wait


def test_an_attribute_write_that_waits_for_the_writer_is_stamped_when_it_gets_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for the RPC writers (UpsertAttributes here; ImportAttributes, LinkIdentities, UnlinkIdentity,
    DeleteProfile, WriteTags and SetStaticMembers take their time the same way)."""
    released = threading.Event()
    real = service_module.now_us
    monkeypatch.setattr(service_module, "now_us", lambda: real() if released.is_set() else real() - HOUR)
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        out: list = []

        def write() -> None:
            out.append(app.profiles.upsert_attributes(ref("K2"), {"branch": to_proto("sh")}, [], "crm", frozenset()))

        done_at = _waits_for_the_writer(app, write, released)
        (profile, created) = out[0]
        assert created and profile.updated_at.ToMicroseconds() >= done_at


def test_the_first_day_a_profile_reads_follows_new_definitions_whatever_their_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every object given the same id, as CPython may give a freed dict's to the next one made."""
    monkeypatch.setattr(loading_module, "id", lambda _: 1, raising=False)
    with profile_app(profile_settings(tmp_path)) as app:  # the finance pack: lifecycle reads 90 days at least
        engine = app.core.engine
        now = time.time_ns() // 1000
        before = engine.profile_first_day(now)
        params = dict(engine.lifecycle_params, churned_days=400)
        monkeypatch.setattr(engine, "lifecycle_params", params)
        engine.tags = dict(engine.tags)  # new definitions: a new dict, as Engine.set_tags makes
        assert engine.profile_first_day(now) < before  # 400 days back, not the 90 cached before
