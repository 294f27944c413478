"""Segment membership: recompute, static lists, checks, size and sample, export; the outbox publisher and
the time sweep (docs/profile.md, "Segments")."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import distinct, select, update

from svc_common.errors import FieldViolation, InvalidArgument, NotFound
from svc_common.pb.qiming.common.v1 import event_pb2
from svc_profile import timewindows
from svc_profile.core import Core
from svc_profile.definitions import Definitions
from svc_profile.engine import SegmentRule, expiry_type
from svc_profile.jobs import JobFunction, Jobs, Progress, Superseded
from svc_profile.model import now_us
from svc_profile.sqlseg import segment_where

log = logging.getLogger("qiming.profile")
RECOMPUTE_CHUNK = 20_000
SWEEP_CATCH_UP_DAYS = 31
"""A sweep covers every day boundary since the last one up to this many days; after a longer downtime it
evaluates everyone once instead (bounded work either way)."""


def _quiet(percent: float, message: str) -> None:
    """No one is listening for progress."""


class Segments:
    def __init__(self, core: Core, definitions: Definitions) -> None:
        self.core = core
        self.definitions = definitions
        self.t = core.store.t
        self._tag_lock = threading.Lock()
        self._tag_generation: dict[str, int] = {}
        """Tag name → the number of re-evaluation jobs started for it; a job whose number is no longer the
        latest stops early."""

    def rule(self, segment_id: str) -> SegmentRule:
        rule = self.core.engine.segments.get(segment_id)
        if rule is None:
            self.definitions.get_segment(segment_id)  # NOT_FOUND when unknown
            raise InvalidArgument(
                f"segment {segment_id!r} is archived", violations=[FieldViolation("segment_id", "archived")]
            )
        return rule

    def all_pids(self) -> list[str]:
        with self.core.database.connection() as conn:
            return [r[0] for r in self.core.store.scan_persons(conn, ("profile_id",))]

    def recompute(self, segment_id: str, cause: str = "recompute", progress: Progress | None = None) -> dict[str, int]:
        """Evaluate the segment for every profile (one scan per table it reads) and write the differences."""
        report = progress or _quiet
        rule = self.rule(segment_id)
        if rule.node is None:
            return {"persons": 0, "entered": 0, "exited": 0}
        now = now_us()
        report(1.0, "waiting for the writer")
        with self.core.writing() as conn:
            report(5.0, "evaluating every profile")
            where = segment_where(
                rule.node, self.t, conn.dialect.name, now, self.core.engine.clock, self.core.is_sensitive
            )
            readers = self.readers(segment_id)  # members read before and after only when someone reads them
            before = self._members(conn, segment_id) if readers else set()
            if where is not None:
                counts = self._recompute_sql(conn, rule, where, now, cause, report)
            else:
                counts = self.core.engine.refresh(conn, None, now, cause=cause, only_segments=[rule], tags=False)
            if readers and (counts["entered"] or counts["exited"]):
                self.follow(conn, segment_id, before ^ self._members(conn, segment_id), now, cause)
            report(90.0, f"entered {counts['entered']}, exited {counts['exited']}: committing")
        self._stamp(segment_id, now)
        return {key: counts[key] for key in ("persons", "entered", "exited")}

    def _recompute_sql(
        self, conn: Any, rule: SegmentRule, where: Any, now: int, cause: str, report: Progress
    ) -> dict[str, int]:
        """Members by one set-based query; the differences with the stored memberships written in bulk."""
        sid, p = rule.segment_id, self.t["person"]
        wanted = {r[0] for r in conn.execute(select(p.c.profile_id).where(where))}
        members = self.core.store.load_members(conn, None, [sid])
        current = {pid for pid, rows in members.items() if rows[sid].is_member}
        changes = [(pid, sid, True) for pid in sorted(wanted - current)]
        changes += [(pid, sid, False) for pid in sorted(current - wanted)]
        report(50.0, f"{len(wanted)} members, {len(changes)} changes: writing")
        entered, exited = self.core.engine.write_changes(conn, changes, now, cause, {}, members)
        return {"persons": self.core.store.count_persons(conn), "entered": entered, "exited": exited}

    def _members(self, conn: Any, segment_id: str) -> set[str]:
        members = self.core.store.load_members(conn, None, [segment_id])
        return {pid for pid, rows in members.items() if rows[segment_id].is_member}

    def readers(self, segment_id: str) -> list[SegmentRule]:
        """The active dynamic segments reading ``segment_id`` through ``in_segment``, directly or through another
        reader, in dependency order (the engine keeps segments in that order)."""
        reached, out = {segment_id}, []
        for sid, rule in self.core.engine.segments.items():
            if rule.node is not None and rule.refs is not None and rule.refs.segments & reached:
                reached.add(sid)
                out.append(rule)
        return out

    def follow(self, conn: Any, segment_id: str, changed: set[str], now: int, cause: str) -> dict[str, int]:
        """After the memberships of ``segment_id`` changed outside the engine's own evaluation (a static list
        set, a recompute), its readers are evaluated for the persons that changed, in the same transaction:
        no reader is left stale until its own recompute. Returns the readers' total changes."""
        totals = {"entered": 0, "exited": 0}
        readers = self.readers(segment_id)
        if not readers or not changed:
            return totals
        pids = sorted(changed)
        for start in range(0, len(pids), RECOMPUTE_CHUNK):
            chunk = pids[start : start + RECOMPUTE_CHUNK]
            counts = self.core.engine.refresh(conn, chunk, now, cause=cause, only_segments=readers, tags=False)
            totals["entered"] += counts["entered"]
            totals["exited"] += counts["exited"]
        return totals

    def refresh_everyone(
        self,
        cause: str,
        progress: Progress | None = None,
        stop: Callable[[], str] | None = None,
        now: int | None = None,
    ) -> int:
        """Tags, lifecycle and every segment for everyone (after a tag definition changes), one transaction
        per ``RECOMPUTE_CHUNK`` profiles with the rules in force when the chunk starts. ``stop`` (checked
        before each chunk) returns why to stop early, or ""; returns the profiles evaluated."""
        report = progress or _quiet
        pids = self.all_pids()
        now = now if now is not None else now_us()
        for start in range(0, len(pids), RECOMPUTE_CHUNK):
            why = stop() if stop is not None else ""
            if why:
                raise Superseded(f"{why} after {start} of {len(pids)} profiles")
            report(100.0 * start / len(pids), f"{start} of {len(pids)} profiles")
            with self.core.writing() as conn:
                self.core.engine.refresh(conn, pids[start : start + RECOMPUTE_CHUNK], now, cause=cause)
        return len(pids)

    # -- jobs: within the call on a small population, in the background on a large one ----------------
    def _background(self) -> bool:
        threshold = self.core.settings.recompute_background_profiles
        if threshold == 0:
            return True
        with self.core.database.connection() as conn:
            return self.core.store.count_persons(conn) >= threshold

    def start_recompute(self, jobs: Jobs, segment_id: str, created_by: str = "") -> Any:
        """RecomputeSegment (and the first recompute of a created or updated segment) as a job."""
        run = self._segment_job(segment_id)  # NOT_FOUND / archived: refused now, not as a failed job
        return jobs.submit("recompute_segment", segment_id, run, background=self._background(), created_by=created_by)

    def _segment_job(self, segment_id: str) -> JobFunction:
        self.rule(segment_id)

        def run(progress: Progress) -> str:
            totals = self.recompute(segment_id, progress=progress)
            return f"entered {totals['entered']}, exited {totals['exited']} of {totals['persons']} profiles"

        return run

    def start_refresh_everyone(self, jobs: Jobs, tag_name: str, created_by: str = "") -> Any:
        """RecomputeTag, and the re-evaluation after CreateTagDefinition / UpdateTagDefinition, as a job: tags,
        lifecycle and segments for everyone. A newer job for the same tag supersedes a running one: the older
        stops before its next chunk (CANCELLED, reason SUPERSEDED) and the newer evaluates everyone again with
        the latest version, so the newest definition wins (docs/profile.md, "Tag definitions")."""
        version = self.definitions.get_tag(tag_name).version  # NOT_FOUND: refused now, not as a failed job
        run = self._tag_job(tag_name, version)
        return jobs.submit("recompute_tag", tag_name, run, background=self._background(), created_by=created_by)

    def _tag_job(self, tag_name: str, version: int) -> JobFunction:
        with self._tag_lock:
            generation = self._tag_generation[tag_name] = self._tag_generation.get(tag_name, 0) + 1

        def superseded() -> str:
            with self._tag_lock:
                newer = self._tag_generation.get(tag_name, 0) != generation
            return f"a newer job re-evaluates tag {tag_name!r}" if newer else ""

        def run(progress: Progress) -> str:
            persons = self.refresh_everyone("recompute", progress, superseded)
            return f"tag {tag_name!r} version {version}: re-evaluated for {persons} profiles"

        return run

    def resume(self, kind: str, name: str) -> JobFunction:
        """The function that runs an interrupted job again (``Jobs.resume_orphans``): the recompute of the
        segment, or the re-evaluation of the tag, as it is defined now. Raises when the target is gone: a
        segment unknown or archived, a tag unknown or archived."""
        if kind == "recompute_segment":
            return self._segment_job(name)
        if kind == "recompute_tag":
            definition = self.definitions.get_tag(name)
            if definition.archived:
                raise NotFound(f"tag {name!r} was archived", reason="TAG_NOT_FOUND")
            return self._tag_job(name, definition.version)
        raise NotFound(f"no job of kind {kind!r} can be resumed", reason="JOB_NOT_FOUND")

    def _stamp(self, segment_id: str, now: int) -> None:
        t = self.t["segment"]
        with self.core.database.connection(write=True) as conn:
            size = self.definitions.size(conn, segment_id)
            conn.execute(update(t).where(t.c.segment_id == segment_id).values(member_count=size, size_computed_us=now))

    def set_static(self, segment_id: str, keys: Sequence[Any], replace_all: bool) -> tuple[int, list[int]]:
        """Members of a static segment by id keys; returns the new size and the indexes of unknown keys."""
        rule = self.rule(segment_id)
        if rule.node is not None:
            raise InvalidArgument(
                f"segment {segment_id!r} is dynamic: its condition decides its members",
                violations=[FieldViolation("segment_id", "not a static segment")],
            )
        core, now = self.core, now_us()
        with core.writing() as conn:
            owners = core.store.lookup_ids(conn, keys)
            wanted = {owners[k] for k in keys if k in owners}
            missing = [i for i, k in enumerate(keys) if k not in owners]
            members = core.store.load_members(conn, None, [segment_id])
            current = {pid for pid, segs in members.items() if segs[segment_id].is_member}
            changes = [(pid, segment_id, True) for pid in sorted(wanted - current)]
            if replace_all:
                changes += [(pid, segment_id, False) for pid in sorted(current - wanted)]
            core.engine.write_changes(conn, changes, now, "static", {}, members)
            self.follow(conn, segment_id, {pid for pid, _, _ in changes}, now, "static")
        self._stamp(segment_id, now)
        with core.database.connection() as conn:
            return self.definitions.size(conn, segment_id), missing

    def check(self, segment_id: str, key: Any) -> tuple[bool, int]:
        self.definitions.get_segment(segment_id)
        with self.core.database.connection() as conn:
            pid = self.core.find(conn, key)
            row = self.core.store.load_members(conn, [pid], [segment_id]).get(pid, {}).get(segment_id)
        return (bool(row and row.is_member), row.entered_us if row and row.is_member else 0)

    def size_and_sample(self, segment_id: str, sample: int) -> tuple[int, list[str], int]:
        if sample > 1000:
            raise InvalidArgument("sample_size is at most 1000", violations=[FieldViolation("sample_size", "<= 1000")])
        segment = self.definitions.get_segment(segment_id)
        m = self.t["member"]
        picked: list[str] = []
        if sample:
            with self.core.database.connection() as conn:
                pids = [
                    r[0]
                    for r in conn.execute(
                        select(m.c.profile_id).where(m.c.segment_id == segment_id, m.c.is_member.is_(True))
                    )
                ]
            picked = random.sample(pids, min(sample, len(pids)))
        computed = segment.size_computed_at.ToMicroseconds() if segment.HasField("size_computed_at") else now_us()
        return segment.size, picked, computed

    def export(
        self, segment_id: str, batch: int, id_types: Iterable[int], after: str = ""
    ) -> Iterator[list[tuple[str, list, int]]]:
        """Members in profile id order, a page at a time, after ``after`` (a resumed export)."""
        self.definitions.get_segment(segment_id)
        m = self.t["member"]
        types = set(id_types)
        batch = min(batch or 500, 10_000)
        while True:
            with self.core.database.connection() as conn:
                rows = list(
                    conn.execute(
                        select(m.c.profile_id, m.c.entered_us)
                        .where(m.c.segment_id == segment_id, m.c.is_member.is_(True), m.c.profile_id > after)
                        .order_by(m.c.profile_id)
                        .limit(batch)
                    )
                )
                if not rows:
                    return
                ids = self.core.store.identities_of(conn, [r[0] for r in rows]) if types else {}
            yield [(pid, [i for i in ids.get(pid, ()) if i.id_type in types], entered) for pid, entered in rows]
            after = rows[-1][0]

    # -- time --------------------------------------------------------------------------------------------
    def sweep(self, previous_us: int, now: int) -> dict[str, int]:
        """Persons whose conditions can change with time alone since ``previous_us``: a bucket of a type some
        rule reads that left a window that rule reads (at a day boundary), a retained event that left a
        sub-day or filtered window, lifecycle stages that age."""
        core, clock = self.core, self.core.engine.clock
        engine = core.engine
        windows = timewindows.day_windows(engine)
        _, _, event_types, _ = engine.needs()
        exact = timewindows.exact_windows(engine, event_types)
        first, last = clock.of(previous_us), clock.of(now)
        found: dict[str, set[str]] = {}  # person → the event types whose window crossed (what can change)
        d, e, p = self.t["day"], self.t["event"], self.t["person"]
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
            self._expired_tags(conn, previous_us, now, found)
        pids = sorted(found)
        # As for a log batch, each person is evaluated only for the rules those event types can change.
        for start in range(0, len(pids), RECOMPUTE_CHUNK):
            chunk = pids[start : start + RECOMPUTE_CHUNK]
            with core.writing() as conn:
                core.engine.refresh(conn, chunk, now, cause="time", person_types=found)
        if last > first:
            self.purge_retained(now)
        return {"candidates": len(pids), "by_window": by_window}

    def _expired_tags(self, conn: Any, previous_us: int, now: int, found: dict[str, set[str]]) -> None:
        """Persons whose written value of a tag some rule reads expired since ``previous_us`` (a value is hidden
        from its ``expires_us`` on): their readers are re-evaluated through the tag's expiry type."""
        engine = self.core.engine
        refs = [r for rule in engine.tags.values() for r in rule.refs]
        refs += [s.refs for s in engine.segments.values() if s.refs is not None]
        read = {name for r in refs for name in r.tags}
        names = sorted(n for n in read if (rule := engine.tags.get(n)) is not None and rule.kind == "external")
        if not names:
            return
        rows = conn.execute(self.core.store.expired_tags_statement(names, previous_us, now))
        for pid, name in rows:
            found.setdefault(pid, set()).add(expiry_type(name))

    def purge_retained(self, now: int) -> None:
        retention = self.core.settings.event_retention_days
        if retention:
            with self.core.writing() as conn:
                self.core.store.purge_events(conn, now - retention * 86_400_000_000)

    def catch_up(self, now: int) -> dict[str, int]:
        """The time sweep since the last one, wherever it ran (``catch_up``): what ``Sweeper`` calls."""
        return catch_up(self, now)


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


class OutboxPublisher:
    """Publishes queued segment changes to svc_collect after their transaction committed, then marks them
    sent. Event ids are deterministic, so a re-publish after a crash is absorbed by the log."""

    def __init__(self, core: Core, client: Any) -> None:
        self.core = core
        self.client = client
        self.wake = asyncio.Event()
        self.published = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def notify(self) -> None:
        """Thread-safe: a write committed that may have queued events."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        while True:
            try:
                sent = await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("publishing segment changes failed; retrying")
                await asyncio.sleep(1.0)
                continue
            if not sent:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=1.0)

    async def drain(self) -> int:
        limit = self.core.settings.outbox_batch
        with self.core.database.connection() as conn:
            rows = self.core.store.unsent(conn, limit)
        if not rows:
            return 0
        events = [event_pb2.Event.FromString(body) for _, body in rows]
        await self.client.publish(events)
        with self.core.database.connection(write=True) as conn:
            self.core.store.mark_sent(conn, [r[0] for r in rows], now_us())
        self.published += len(rows)
        return len(rows)


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
