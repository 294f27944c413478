"""Findings of the consumer walk of 2026-12-07 (session 25): a log batch (and the RPC writers) took its time before
waiting for the writer, so one that waited behind a sweep's or recompute's transaction evaluated at a time before
that transaction's, and could undo what it did; the first day a profile read cached its answer by the ids of the
definitions, which Python may give a later definition once the earlier is freed."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from profile_helpers import event, profile_app, profile_settings, ref

from svc_common.conditions import to_proto
from svc_profile import consumer as consumer_module
from svc_profile import loading as loading_module
from svc_profile import service as service_module

HOUR = 3_600_000_000


def test_a_batch_that_waits_for_the_writer_evaluates_at_the_time_it_gets_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    released = threading.Event()
    real = consumer_module.now_us

    def clock() -> int:  # an hour earlier until the other writer is done
        return real() if released.is_set() else real() - HOUR

    monkeypatch.setattr(consumer_module, "now_us", clock)
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        app.core.write_lock.acquire()  # another writer's transaction (a sweep's chunk, a recompute)
        batch = threading.Thread(target=app.consumer.handle, args=([event("login", "K1")], "1"))
        batch.start()
        time.sleep(0.3)  # the batch is waiting for the writer
        released.set()
        done_at = real()
        app.core.write_lock.release()
        batch.join(30)
        assert not batch.is_alive()
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
        app.core.write_lock.acquire()
        out: list = []

        def write() -> None:
            out.append(app.profiles.upsert_attributes(ref("K2"), {"branch": to_proto("sh")}, [], "crm", frozenset()))

        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(0.3)
        released.set()
        done_at = real()
        app.core.write_lock.release()
        writer.join(30)
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
