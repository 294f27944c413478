"""Segment membership: recompute, static lists, checks, size and sample, export; the outbox publisher is
svc_profile/outbox.py, the time sweep svc_profile/timesweep.py (docs/profile.md, "Segments")."""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import select, update

from svc_common.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound, ResourceExhausted
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_profile import timesweep
from svc_profile.core import Core
from svc_profile.definitions import Definitions
from svc_profile.engine import SegmentRule
from svc_profile.identity import note_customers_of
from svc_profile.jobs import JobFunction, Jobs, Progress, Superseded
from svc_profile.model import DAY_US, now_us
from svc_profile.outbox import OutboxPublisher
from svc_profile.retained import KEPT_NONE, PURGE_WATERMARK
from svc_profile.sqlseg import segment_where
from svc_profile.store._sql import CANONICAL

_ID_TYPES = frozenset(types_pb2.IdType.values()) - {types_pb2.ID_TYPE_UNSPECIFIED}
"""What ExportMembers may be asked to send of each member (an unknown number matched nothing, silently)."""
log = logging.getLogger("qiming.profile")
RECOMPUTE_CHUNK = 20_000


def _quiet(percent: float, message: str) -> None:
    """No one is listening for progress."""


EXACT_SAMPLE_MEMBERS = 100_000
"""GetSegmentSize samples a segment of up to this many members from all their ids, a larger one by random look-ups."""


def _exported(identity: Any, types: set[int], pid: str) -> bool:
    return identity.id_type in types and (identity.id_type != CANONICAL or identity.id_value == pid)


class Segments:
    def __init__(self, core: Core, definitions: Definitions) -> None:
        self.core = core
        self.definitions = definitions
        self.t = core.store.t
        self._tag_lock = threading.Lock()
        self._export_streams = threading.BoundedSemaphore(core.settings.max_export_streams)
        self._tag_generation: dict[str, int] = {}
        """Tag name → the number of re-evaluation jobs started for it; a job whose number is no longer the
        latest stops early."""

    def rule(self, segment_id: str) -> SegmentRule:
        rule = self.core.engine.segments.get(segment_id)
        if rule is None:
            self.definitions.get_segment(segment_id)  # NOT_FOUND when unknown
            # The request is well-formed: the segment's state refuses it (as TAG_ARCHIVED does for a tag).
            raise FailedPrecondition(
                f"segment {segment_id!r} is archived: it is no longer evaluated (create a segment under a new id)",
                reason="SEGMENT_ARCHIVED",
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
        report(1.0, "waiting for the writer")
        with self.core.writing() as conn:
            now = now_us()  # once the writer is ours: the wait may be as long as another recompute
            # The definition as it is now: archived or updated while this waited, the rule read before is stale (an
            # archived segment got members again, entered events and all, that nothing would ever end).
            rule = self.rule(segment_id)
            if rule.node is None:
                return {"persons": 0, "entered": 0, "exited": 0}
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
        per ``RECOMPUTE_CHUNK`` profiles with the rules in force and at the time the chunk starts (not before ``now``,
        when given: the time sweep's own). ``stop`` (checked before each chunk) returns why to stop early, or "";
        returns the profiles evaluated."""
        report = progress or _quiet
        pids = self.all_pids()
        for start in range(0, len(pids), RECOMPUTE_CHUNK):
            why = stop() if stop is not None else ""
            if why:
                raise Superseded(f"{why} after {start} of {len(pids)} profiles")
            report(100.0 * start / len(pids), f"{start} of {len(pids)} profiles")
            with self.core.writing() as conn:
                # Each chunk at its own time: a job of minutes evaluated its last chunks at its start, re-entering
                # persons the sweep had exited meanwhile, whom no later sweep looked at again (review 2026-12-07).
                at = max(now, now_us()) if now is not None else now_us()  # the sweep's start is stale as well
                self.core.engine.refresh(conn, pids[start : start + RECOMPUTE_CHUNK], at, cause=cause)
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
            try:
                return self._segment_job(name)
            except FailedPrecondition as exc:  # archived: gone for good, not a reason to give the job back
                raise NotFound(f"segment {name!r} was archived", reason="SEGMENT_NOT_FOUND") from exc
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
        core = self.core
        with core.writing() as conn:  # the segment as it is under the lock (an archive may have just ended it)
            now = now_us()  # under the writer (Core.writing)
            rule = self.rule(segment_id)
            if rule.node is not None:
                raise InvalidArgument(
                    f"segment {segment_id!r} is dynamic: its condition decides its members",
                    violations=[FieldViolation("segment_id", "not a static segment")],
                )
            owners = core.store.lookup_ids(conn, keys)
            wanted = {owners[k] for k in keys if k in owners}
            missing = [i for i, k in enumerate(keys) if k not in owners]
            members = core.store.load_members(conn, None, [segment_id])
            current = {pid for pid, segs in members.items() if segs[segment_id].is_member}
            changes = [(pid, segment_id, True) for pid in sorted(wanted - current)]
            if replace_all:
                changes += [(pid, segment_id, False) for pid in sorted(current - wanted)]
            core.engine.write_changes(conn, changes, now, "static", {}, members)
            note_customers_of(core.store, conn, [pid for pid, _, _ in changes])  # whose membership changed
            self.follow(conn, segment_id, {pid for pid, _, _ in changes}, now, "static")
        self._stamp(segment_id, now)
        with core.database.connection() as conn:
            return self.definitions.size(conn, segment_id), missing

    def check(self, segment_id: str, key: Any) -> tuple[bool, int]:
        with self.core.database.connection() as conn:
            self.definitions.stored_segment(conn, segment_id)  # NOT_FOUND when unknown (not its size: a count)
            pid = self.core.find(conn, key)
            note_customers_of(self.core.store, conn, [pid])
            row = self.core.store.load_members(conn, [pid], [segment_id]).get(pid, {}).get(segment_id)
        return (bool(row and row.is_member), row.entered_us if row and row.is_member else 0)

    def size_and_sample(self, segment_id: str, sample: int) -> tuple[int, list[str], int]:
        if sample > 1000:
            raise InvalidArgument("sample_size is at most 1000", violations=[FieldViolation("sample_size", "<= 1000")])
        segment = self.definitions.get_segment(segment_id)
        picked: list[str] = []
        if sample and segment.size:
            with self.core.database.connection() as conn:
                picked = self._sample(conn, segment_id, sample, segment.size)
        computed = segment.size_computed_at.ToMicroseconds() if segment.HasField("size_computed_at") else now_us()
        return segment.size, picked, computed

    def _sample(self, conn: Any, segment_id: str, n: int, size: int) -> list[str]:
        """``n`` members drawn at random: of up to ``EXACT_SAMPLE_MEMBERS``, uniformly from all their ids; of more,
        each the member whose profile id comes first at or after a random id (profile ids are random UUIDs: every
        member about as likely), one look-up of the membership index each instead of reading a million ids (1.1 s
        for a sample of one, walk 2026-12-07)."""
        m = self.t["member"]
        members = select(m.c.profile_id).where(m.c.segment_id == segment_id, m.c.is_member.is_(True))
        if size <= EXACT_SAMPLE_MEMBERS:
            pids = [r[0] for r in conn.execute(members)]
            return random.sample(pids, min(n, len(pids)))
        picked: dict[str, None] = {}
        first = members.order_by(m.c.profile_id).limit(1)
        for _ in range(3 * n):  # two draws of one member are one: a few more draws make up for them
            if len(picked) >= min(n, size):
                break
            at = str(uuid.uuid4())
            found = conn.execute(first.where(m.c.profile_id >= at)).scalar() or conn.execute(first).scalar()
            if found is not None:
                picked[found] = None
        return list(picked)

    def export(
        self, segment_id: str, batch: int, id_types: Iterable[int], after: str = ""
    ) -> Iterator[list[tuple[str, list, int]]]:
        """Members in profile id order, a page at a time, after ``after`` (a resumed export). Every page is read in
        one snapshot, taken at the first page: the export is the segment as it was then, never part before and part
        after a recompute or a batch that committed meanwhile (before 0.2.9 each page was its own transaction)."""
        self.definitions.get_segment(segment_id)
        listed = list(id_types)  # looked at twice: a generator would be empty the second time
        types = set(listed)
        for i, id_type in enumerate(listed):
            if id_type not in _ID_TYPES:
                why = f"{id_type} is not an id type (IdType: CUSTOMER, ANONYMOUS, FUND_ACCOUNT, ...)"
                raise InvalidArgument(f"id_types[{i}]: {why}", violations=[FieldViolation(f"id_types[{i}]", why)])
        batch = min(batch or 500, 10_000)
        if not self._export_streams.acquire(blocking=False):
            limit = self.core.settings.max_export_streams
            raise ResourceExhausted(
                f"{limit} member exports are running in this process (max_export_streams): retry when one has ended",
                reason="EXPORTS_RUNNING",
            )
        try:
            yield from self._pages(segment_id, batch, types, after)
        finally:
            self._export_streams.release()

    def _pages(self, segment_id: str, batch: int, types: set[int], after: str) -> Iterator[list[tuple[str, list, int]]]:
        m = self.t["member"]
        with self.core.database.snapshot() as conn:
            while True:
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
                # Of canonical ids, the member's own: a merge keeps the absorbed profile's linked too (old references
                # resolve), and an export listed it first, a reader taking "the" canonical id got the wrong profile.
                yield [
                    (pid, [i for i in ids.get(pid, ()) if _exported(i, types, pid)], entered) for pid, entered in rows
                ]
                after = rows[-1][0]

    # -- time --------------------------------------------------------------------------------------------
    def sweep(self, previous_us: int, now: int) -> dict[str, int]:
        """The time sweep across the day boundaries since ``previous_us`` (svc_profile/timesweep.py)."""
        return timesweep.sweep(self, previous_us, now)

    def purge_retained(self, now: int) -> None:
        """Delete the retained events older than ``event_retention_days``, but those of a type some rolling whole-day
        window longer than that reads (``event_absence(stock_trade, 180 d)``): its first, partial day is counted from
        the retained events, so they are kept until that day has left the longest such window. Purged sooner, the
        day's events counted for a person when an event came and not in a recompute after the purge (walk
        2026-12-07)."""
        retention = self.core.settings.event_retention_days
        if retention:
            before = now - retention * DAY_US
            with self.core.writing() as conn:
                edges = self.core.engine.needs()[4]  # under the writer: the definitions in force
                longer = {t: now - (max(ws) // 86_400 + 1) * DAY_US for t, ws in edges.items()}
                kept = {t: b for t, b in longer.items() if b < before}
                self.core.store.purge_events(conn, before, kept)
                self._move_watermark(conn, now, before)

    def note_retention(self, now: int) -> None:
        """At start, before the log is consumed: with ``event_retention_days`` 0 no event is kept (the purge watermark
        at ``KEPT_NONE``); the first start keeping events after such a time keeps them from ``now`` on (the watermark
        at ``now``), so a funnel over the time nothing was kept says it is truncated."""
        with self.core.writing(keep_hot=True) as conn:
            if self.core.settings.event_retention_days > 0:
                self._move_watermark(conn, now, None)
            elif self.core.store.load_cursor(conn, PURGE_WATERMARK) != str(KEPT_NONE):
                self.core.store.save_cursor(conn, PURGE_WATERMARK, str(KEPT_NONE), 0, now)

    def _move_watermark(self, conn: Any, now: int, before: int | None) -> None:
        """The purge watermark at ``now`` when it says nothing is kept (``KEPT_NONE``: events are kept from now at the
        latest), else at ``before`` (a purge's horizon) when that is later (a longer retention now purges less far)."""
        purged = self.core.store.load_cursor(conn, PURGE_WATERMARK)
        mark = int(purged) if purged else None
        if mark is not None and mark > now:
            moved = now
        elif before is not None and (mark is None or mark < before):
            moved = before
        else:
            return
        self.core.store.save_cursor(conn, PURGE_WATERMARK, str(moved), 0, now)

    def catch_up(self, now: int) -> dict[str, int]:
        """The time sweep since the last one, wherever it ran (``catch_up``): what ``Sweeper`` calls."""
        return timesweep.catch_up(self, now)


# The time sweep lives in svc_profile/timesweep.py; these names stay importable from here.
SweepWatermark, Sweeper, catch_up = timesweep.SweepWatermark, timesweep.Sweeper, timesweep.catch_up
SWEEP_CATCH_UP_DAYS = timesweep.SWEEP_CATCH_UP_DAYS
__all__ = ["OutboxPublisher", "Segments", "SweepWatermark", "Sweeper", "catch_up"]
