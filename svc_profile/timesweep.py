"""The time sweep (docs/profile.md, "Time"): at each day boundary, the persons whose conditions can change with
time alone are re-evaluated (only they, and only for the rules that can change); its watermark, its catch-up after
a downtime, and the task that runs it every ``sweep_interval_seconds``."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import distinct, select

from svc_profile import timewindows
from svc_profile.engine import expiry_type
from svc_profile.model import now_us

if TYPE_CHECKING:
    from svc_profile.segments import Segments

log = logging.getLogger("qiming.profile")
SWEEP_CHUNK = 5_000
"""Persons per transaction of the time sweep: log batches wait for the writer lock at most about one chunk."""
SWEEP_CATCH_UP_DAYS = 31
"""A sweep covers every day boundary since the last one up to this many days; after a longer downtime it
evaluates everyone once instead (bounded work either way)."""


def sweep(segments: Segments, previous_us: int, now: int) -> dict[str, int]:
    """Persons whose conditions can change with time alone since ``previous_us``: a bucket of a type some
    rule reads that left a window that rule reads (at a day boundary), a retained event that left a
    sub-day or filtered window, lifecycle stages that age."""
    core, clock = segments.core, segments.core.engine.clock
    engine = core.engine
    windows = timewindows.day_windows(engine)
    _, _, event_types, _, edges = engine.needs()
    exact = timewindows.exact_windows(engine, event_types | edges.keys())  # whole days are rolling too
    first, last = clock.of(previous_us), clock.of(now)
    found: dict[str, set[str]] = {}  # person → the event types whose window crossed (what can change)
    ageing_stage: set[str] = set()  # persons whose lifecycle stage can change (the others keep theirs)
    d, e, p = segments.t["day"], segments.t["event"], segments.t["person"]
    with core.database.connection() as conn:
        for types, edges in timewindows.edge_groups(windows, first, last):
            for part in range(0, len(edges), 500):
                where = d.c.day.in_(edges[part : part + 500])
                if types is not None:
                    where = where & d.c.event_type.in_(types)
                for pid, event_type in conn.execute(select(d.c.profile_id, d.c.event_type).where(where).distinct()):
                    found.setdefault(pid, set()).add(event_type)
        by_window = len(found)
        for event_type, seconds in sorted(exact):
            rows = conn.execute(
                select(distinct(e.c.profile_id)).where(
                    e.c.event_type == event_type,
                    e.c.occurred_us >= previous_us - seconds * 1_000_000 - 1,
                    e.c.occurred_us < now - seconds * 1_000_000 + 1,
                )
            )
            for (pid,) in rows:
                found.setdefault(pid, set()).add(event_type)
        if last > first:
            ageing = {*engine.context.active_types, *engine.context.trade_types}  # what lifecycle reads
            rows = conn.execute(
                select(p.c.profile_id).where(p.c.lifecycle_stage.in_(("NEW", "REACTIVATED", "PROSPECT")))
            )
            for (pid,) in rows:
                found.setdefault(pid, set()).update(ageing)
                ageing_stage.add(pid)
            # AT_RISK with no activity in the churned window: CHURNED comes with the account's age (no
            # bucket leaves a window for one never active), so they age like NEW persons.
            churned = engine.lifecycle_params["churned_days"] * 86_400
            active = (
                select(d.c.profile_id)
                .where(
                    d.c.profile_id == p.c.profile_id,
                    d.c.event_type.in_(sorted(engine.context.active_types)),
                    d.c.day >= clock.first_of_window(now, churned),
                    d.c.n > 0,
                )
                .exists()
            )
            rows = conn.execute(select(p.c.profile_id).where(p.c.lifecycle_stage == "AT_RISK", ~active))
            for (pid,) in rows:
                found.setdefault(pid, set()).update(ageing)
                ageing_stage.add(pid)
            # Otherwise a stage changes with time only when the last active day leaves a window lifecycle
            # reads: persons with an active bucket on such an edge and none later.
            for pid in _last_active_on_edge(segments, conn, first, last):
                found.setdefault(pid, set()).update(ageing)
                ageing_stage.add(pid)
        _expired_tags(segments, conn, previous_us, now, found)
    # As for a log batch, each person is evaluated only for the rules those event types can change, and for
    # lifecycle only when their stage can change; those come first, so that the chunks of the others load
    # only the windows their rules read.
    pids = sorted(ageing_stage) + sorted(found.keys() - ageing_stage)
    for start in range(0, len(pids), SWEEP_CHUNK):
        chunk = pids[start : start + SWEEP_CHUNK]
        with core.writing() as conn:
            # Each chunk at its own time (never before the sweep's): log batches commit between chunks, and one that
            # evaluated a person later must not be undone by an answer of the sweep's start (a false entered event
            # when an event window had closed meanwhile; walk 2026-12-07).
            at = max(now, now_us())
            core.engine.refresh(conn, chunk, at, cause="time", person_types=found, lifecycle_for=ageing_stage)
    if last > first:
        segments.purge_retained(now)
    return {"candidates": len(pids), "by_window": by_window}


def _last_active_on_edge(segments: Segments, conn: Any, first: int, last: int) -> list[str]:
    """Persons whose last active day (an active-type bucket with a count) left, at one of the boundaries after
    day ``first`` up to ``last``, a window lifecycle compares against: ``active_days``, ``churned_days``, or the
    days evaluation loads (beyond them the last active day reads as none)."""
    engine, d = segments.core.engine, segments.t["day"]
    params = engine.lifecycle_params
    horizon = engine.needs()[1]
    windows = {int(params["active_days"]), int(params["churned_days"]), horizon // 86_400, -(-horizon // 86_400)}
    edges = sorted({day - w for day in range(first + 1, last + 1) for w in windows if w > 0})
    active = sorted(engine.context.active_types)
    later = d.alias("later")
    newer = (
        select(later.c.profile_id)
        .where(
            later.c.profile_id == d.c.profile_id,
            later.c.event_type.in_(active),
            later.c.day > d.c.day,
            later.c.n > 0,
        )
        .exists()
    )
    if conn.dialect.name == "sqlite":
        # A later bucket of the edge's own type first (one probe of the key, where the IN list costs one per type): it
        # settles most persons, and the same type is one of the active ones, so the answer is the same.
        same = d.alias("same")
        newer = (
            select(same.c.profile_id)
            .where(
                same.c.profile_id == d.c.profile_id,
                same.c.event_type == d.c.event_type,
                same.c.day > d.c.day,
                same.c.n > 0,
            )
            .exists()
        ) | newer
    out: set[str] = set()
    for part in range(0, len(edges), 500):
        where = d.c.day.in_(edges[part : part + 500]) & d.c.event_type.in_(active) & (d.c.n > 0) & ~newer
        out.update(r[0] for r in conn.execute(select(d.c.profile_id).where(where)))
    return sorted(out)


def _expired_tags(segments: Segments, conn: Any, previous_us: int, now: int, found: dict[str, set[str]]) -> None:
    """Persons whose written value of a tag some rule reads expired since ``previous_us`` (a value is hidden
    from its ``expires_us`` on): their readers are re-evaluated through the tag's expiry type."""
    engine = segments.core.engine
    refs = [r for rule in engine.tags.values() for r in rule.refs]
    refs += [s.refs for s in engine.segments.values() if s.refs is not None]
    read = {name for r in refs for name in r.tags}
    names = sorted(n for n in read if (rule := engine.tags.get(n)) is not None and rule.kind == "external")
    if not names:
        return
    rows = conn.execute(segments.core.store.expired_tags_statement(names, previous_us, now))
    for pid, name in rows:
        found.setdefault(pid, set()).add(expiry_type(name))


class SweepWatermark:
    """Up to when the time sweep has run, kept in ``profile_consumer`` (a row of its own), so that the first
    sweep after a restart covers every day boundary passed while the service was down."""

    def __init__(self, segments: Segments) -> None:
        self.segments = segments
        self.name = f"sweep:{segments.core.settings.consumer_name}"[:64]

    def load(self) -> int | None:
        with self.segments.core.database.connection() as conn:
            stored = self.segments.core.store.load_cursor(conn, self.name)
        return int(stored) if stored else None

    def save(self, at_us: int, persons: int) -> None:
        # keep_hot: this row changes no person, so the consumer's cache of hot persons stays (each sweep saves it)
        with self.segments.core.writing(keep_hot=True) as conn:
            self.segments.core.store.save_cursor(conn, self.name, str(at_us), persons, at_us)


def catch_up(segments: Segments, now: int) -> dict[str, int]:
    """The sweep from the stored watermark to ``now`` (one day back when none is stored: a new database, or
    the first start of a release that stores it); a gap of more than ``SWEEP_CATCH_UP_DAYS`` evaluates
    everyone once instead (cause ``time``). The watermark is saved after the sweep: a sweep that fails is
    done again from the same point (re-evaluating writes only differences)."""
    watermark = SweepWatermark(segments)
    previous = watermark.load()
    if previous is None:
        previous = now - 86_400_000_000
    clock = segments.core.engine.clock
    if clock.of(now) - clock.of(previous) > SWEEP_CATCH_UP_DAYS:
        log.warning("time sweep: last run %d days ago; evaluating everyone", clock.of(now) - clock.of(previous))
        result = {"candidates": segments.refresh_everyone("time", now=now), "by_window": 0, "everyone": 1}
        segments.purge_retained(now)
    else:
        result = segments.sweep(previous, now)
    watermark.save(now, result["candidates"])
    return result


class Sweeper:
    def __init__(self, segments: Segments, interval: float) -> None:
        self.segments = segments
        self.interval = interval

    async def run(self) -> None:
        while True:
            now = now_us()
            try:
                started = time.monotonic()
                result = await asyncio.to_thread(self.segments.catch_up, now)
                log.debug("sweep: %s in %.2fs", result, time.monotonic() - started)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("time sweep failed; retrying at the next interval")
            await asyncio.sleep(self.interval)
