"""Behaviour analytics over the retained events and profiles: funnels with break-point and split, paths around
a screen, lifecycle distribution and flows (docs/profile.md, "Analytics")."""

from __future__ import annotations

import datetime as dt
import json
import statistics
from array import array
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from svc_common.conditions import EVENT_FILTER_SCOPE, compile_condition, matches_event
from svc_common.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound, PermissionDenied
from svc_profile.core import Core
from svc_profile.definitions import Definitions
from svc_profile.features import screen_column
from svc_profile.model import DAY_US, StoredEvent, decode, now_us
from svc_profile.retained import PURGE_WATERMARK, check_kept_type, check_retained

MAX_STEPS = 20
MAX_DEPTH = 10
MAX_WINDOW_SECONDS = 400 * 86_400
MAX_SPLIT_SEGMENTS = 20
"""Segments one funnel is split by: each is a result, and its members are read whole."""
MAX_SPLIT_VALUES = 50
"""Values of ``split_by_tag`` one funnel reports, each a result: a tag of more among the people counted (a score, a
time) is refused, not answered with a result per person."""
SESSION_GAP_US = 30 * 60 * 1_000_000
"""Paths: a person's events without a session id are cut into visits where 30 minutes pass without a screen (paths
read only events with one; a session id's events stay one session, as svc_collect's clients mark them)."""
OVERALL, TAG_VALUE, NO_TAG_VALUE, SEGMENT = "overall", "tag_value", "no_tag_value", "segment"
"""What a funnel result counts (``FunnelResult.group``): everyone, the holders of one tag value, those without the
tag, one segment's members."""


def _bad(field_name: str, message: str) -> InvalidArgument:
    return InvalidArgument(message, violations=[FieldViolation(field_name, message)])


@dataclass
class StepResult:
    name: str
    count: int = 0
    seconds: list[float] = field(default_factory=list)


@dataclass
class Coverage:
    """What part of the asked time range a funnel or paths answer covers (``ComputeFunnelResponse.retained_since``,
    ``range_truncated``): filled in by the call it is given to."""

    retained_since_us: int = 0
    """The oldest time the retained events reach back to: what is before it is not counted."""
    truncated: bool = False
    """The asked range starts before ``retained_since_us`` (or has no start)."""


@dataclass
class FunnelResult:
    split_value: str
    steps: list[StepResult]
    break_point: int
    group: str = OVERALL


class Analytics:
    def __init__(self, core: Core, definitions: Definitions) -> None:
        self.core = core
        self.definitions = definitions

    # -- funnel --------------------------------------------------------------------------------------
    def funnel(
        self,
        steps: Sequence[Any],
        window_seconds: int,
        start_us: int | None,
        end_us: int | None,
        split_tag: str = "",
        split_segments: Sequence[str] = (),
        segment_id: str = "",
        roles: frozenset[str] = frozenset(),
        coverage: Coverage | None = None,
    ) -> list[FunnelResult]:
        if not 2 <= len(steps) <= MAX_STEPS:
            raise _bad("steps", f"a funnel has 2 to {MAX_STEPS} steps")
        if not 0 < window_seconds <= MAX_WINDOW_SECONDS:
            raise _bad("conversion_window_seconds", "the conversion window must be 1 s to 400 days")
        if split_tag in self.core.sensitive_tags and not roles & frozenset(self.core.settings.unmask_roles):
            raise PermissionDenied(  # its values would be shown as split labels
                f"split_by_tag {split_tag!r} is a sensitive (level 3+) tag: splitting by it needs an unmask role"
            )
        compiled = []
        for i, step in enumerate(steps):
            if not step.event_type:
                raise _bad(f"steps[{i}].event_type", "each step needs an event type")
            check_kept_type(step.event_type, f"steps[{i}].event_type")
            node = None
            if step.HasField("filter"):
                node = compile_condition(step.filter, EVENT_FILTER_SCOPE, field=f"steps[{i}].filter")
                check_retained(step.filter, f"steps[{i}].filter", in_filter=True)
            compiled.append((step.name or step.event_type, step.event_type, node))
        self._check_segments(split_segments, segment_id)
        if split_tag:
            self._known_tag(split_tag)
        scan_end = end_us + window_seconds * 1_000_000 if end_us is not None else None
        window_us = window_seconds * 1_000_000
        reached: dict[str, list[int]] = {}
        with self.core.database.connection() as conn:
            start_us = self._covered(conn, start_us, coverage)
            store = self.core.store
            allowed = self._members(conn, segment_id) if segment_id else None
            rows = store.scan_events(conn, start_us, scan_end, [t for _, t, _ in compiled])
            current, events = None, []
            for row in rows:
                if row.profile_id != current:
                    if current is not None and (allowed is None or current in allowed):
                        _walk(current, events, compiled, start_us, end_us, window_us, reached)
                    current, events = row.profile_id, []
                events.append(row)
            if current is not None and (allowed is None or current in allowed):
                _walk(current, events, compiled, start_us, end_us, window_us, reached)
            groups: list[tuple[str, str, set[str] | None]] = [("", OVERALL, None)]
            if split_tag:
                values: dict[tuple[str, str], set[str]] = defaultdict(set)
                tags = store.load_tags(conn, sorted(reached), names=[split_tag])
                now = now_us()
                for pid in reached:
                    tag = tags.get(pid, {}).get(split_tag)
                    if tag is not None and tag.expires_us is not None and tag.expires_us <= now:
                        tag = None  # expired: hidden, as from every other reader of tags
                    group = (_label(decode(tag.tag_value)), TAG_VALUE) if tag is not None else ("(none)", NO_TAG_VALUE)
                    values[group].add(pid)
                held = sum(1 for _, kind in values if kind == TAG_VALUE)
                if held > MAX_SPLIT_VALUES:
                    raise _bad(
                        "split_by_tag",
                        f"tag {split_tag!r} has {held} values among the people this funnel counts; a funnel is split "
                        f"by at most {MAX_SPLIT_VALUES}: split by a tag of fewer values (a band of the score)",
                    )
                groups += [(label, kind, members) for (label, kind), members in sorted(values.items())]
            for sid in split_segments:
                groups.append((sid, SEGMENT, self._members(conn, sid)))
        names = [n for n, _, _ in compiled]
        return [self._result(label, kind, names, reached, members) for label, kind, members in groups]

    def _covered(self, conn: Any, start_us: int | None, coverage: Coverage | None) -> int:
        """The start of the range read: the later of ``start_us`` and the retained events' horizon (so an answer
        does not depend on when the last purge ran), told in ``coverage``. No events retained at all
        (``event_retention_days`` 0): FAILED_PRECONDITION, not an empty answer that looks like no behaviour."""
        retention = self.core.settings.event_retention_days
        if not retention:
            raise FailedPrecondition(
                "event_retention_days is 0: svc_profile keeps no events, so funnels and paths have nothing to read; "
                "set it (1 to 400 days) and the events consumed from then on are counted",
                reason="EVENTS_NOT_RETAINED",
            )
        now = now_us()
        since = now - retention * DAY_US
        purged = self.core.store.load_cursor(conn, PURGE_WATERMARK)
        if purged:  # a shorter retention (or none) before: events are complete from later than this one's horizon
            since = max(since, min(int(purged), now))
        if coverage is not None:
            coverage.retained_since_us, coverage.truncated = since, start_us is None or start_us < since
        return since if start_us is None else max(start_us, since)

    def _check_segments(self, split_segments: Sequence[str], segment_id: str) -> None:
        """INVALID_ARGUMENT for an empty, repeated or surplus split segment; NOT_FOUND naming the field of an unknown
        one (a split costs a result and a read of its members each: a request cannot ask for thousands)."""
        field_name = "split_by_segments.segment_ids"
        if len(split_segments) > MAX_SPLIT_SEGMENTS:
            raise _bad(field_name, f"a funnel is split by at most {MAX_SPLIT_SEGMENTS} segments")
        seen: set[str] = set()
        for i, sid in enumerate(split_segments):
            if not sid:
                raise _bad(f"{field_name}[{i}]", f"{field_name}[{i}] is empty")
            if sid in seen:
                raise _bad(f"{field_name}[{i}]", f"{field_name}[{i}] repeats segment {sid!r}")
            seen.add(sid)
        named = [(f"{field_name}[{i}]", sid) for i, sid in enumerate(split_segments)]
        with self.core.database.connection() as conn:
            for where, sid in [*named, *([("segment_id", segment_id)] if segment_id else [])]:
                try:
                    self.definitions.stored_segment(conn, sid)  # not get_segment: no count of its members
                except NotFound:
                    raise NotFound(f"{where}: no segment {sid!r}", reason="SEGMENT_NOT_FOUND") from None

    def _known_tag(self, name: str) -> None:
        """NOT_FOUND naming split_by_tag for a tag with no definition: a typo must not split everyone into
        "(none)"."""
        try:
            self.definitions.get_tag(name)
        except NotFound:
            raise NotFound(f"split_by_tag: no tag definition {name!r}", reason="TAG_NOT_FOUND") from None

    def _members(self, conn: Any, segment_id: str) -> set[str]:
        m = self.core.store.t["member"]
        rows = conn.execute(select(m.c.profile_id).where(m.c.segment_id == segment_id, m.c.is_member.is_(True)))
        return {r[0] for r in rows}

    @staticmethod
    def _result(
        label: str, group: str, names: list[str], reached: dict[str, list[int]], members: set[str] | None
    ) -> FunnelResult:
        steps = [StepResult(n) for n in names]
        for pid, times in reached.items():
            if members is not None and pid not in members:
                continue
            for i, at in enumerate(times):
                steps[i].count += 1
                if i:
                    steps[i].seconds.append((at - times[i - 1]) / 1e6)
        worst, worst_share = 0, 0.0  # 0: no step loses anyone (nobody entered, or everyone converted)
        for i in range(1, len(steps)):
            before = steps[i - 1].count
            share = (before - steps[i].count) / before if before else 0.0
            if share > worst_share:  # a tie: the earlier step
                worst, worst_share = i, share
        return FunnelResult(label, steps, worst, group)

    # -- paths ---------------------------------------------------------------------------------------
    def paths(
        self,
        screen: str,
        depth: int,
        forward: bool,
        start_us: int | None,
        end_us: int | None,
        top_n: int,
        coverage: Coverage | None = None,
    ) -> tuple[list[tuple[tuple[str, ...], int]], int]:
        if not screen:
            raise _bad("screen", "name the screen")
        screen = screen_column(screen)  # found as stored: a long screen by its first 256 characters (docs/profile.md)
        depth = depth or 3
        if depth > MAX_DEPTH:
            raise _bad("depth", f"depth is at most {MAX_DEPTH}")
        counts: Counter[tuple[str, ...]] = Counter()
        sessions = 0
        with self.core.database.connection() as conn:
            start_us = self._covered(conn, start_us, coverage)
            # Rows come by person, then time: a person's sessions may interleave (app and web at once), so the
            # screens are gathered per session of the person at hand.
            rows = self.core.store.scan_events(conn, start_us, end_us, filters=False)  # events with a screen
            person: str | None = None
            by_session: dict[object, list[str]] = {}
            visit, last_us = 0, 0  # the person's events without a session id: visits cut by SESSION_GAP_US
            for row in rows:
                if row.profile_id != person:
                    sessions += sum(_path(s, screen, depth, forward, counts) for s in by_session.values())
                    person, by_session, visit, last_us = row.profile_id, {}, 0, 0
                key: object = row.session_id
                if not key:
                    if last_us and row.occurred_us - last_us > SESSION_GAP_US:
                        visit += 1
                    key, last_us = visit, row.occurred_us  # an int: no session id equals it
                screens = by_session.setdefault(key, [])
                if row.screen and (not screens or screens[-1] != row.screen):
                    screens.append(row.screen)
            sessions += sum(_path(s, screen, depth, forward, counts) for s in by_session.values())
        return counts.most_common(top_n or 10), sessions

    # -- lifecycle -----------------------------------------------------------------------------------
    def lifecycle(self, start_us: int | None, end_us: int | None, segment_id: str) -> tuple[dict, dict]:
        t, h = self.core.store.t["person"], self.core.store.t["lifecycle"]
        with self.core.database.connection() as conn:
            members = None
            if segment_id:
                self.definitions.stored_segment(conn, segment_id)  # NOT_FOUND when unknown
                members = self._members(conn, segment_id)
            if members is None:
                stages = dict(
                    conn.execute(select(t.c.lifecycle_stage, func.count()).group_by(t.c.lifecycle_stage)).all()
                )
            else:
                stages = Counter(
                    stage for pid, stage in conn.execute(select(t.c.profile_id, t.c.lifecycle_stage)) if pid in members
                )
            stmt = select(h.c.profile_id, h.c.from_stage, h.c.to_stage)
            if start_us is not None:
                stmt = stmt.where(h.c.at_us >= start_us)
            if end_us is not None:
                stmt = stmt.where(h.c.at_us < end_us)
            flows: Counter[tuple[str, str]] = Counter(
                (a, b) for pid, a, b in conn.execute(stmt) if members is None or pid in members
            )
        return dict(stages), dict(flows)


def _path(screens: list[str], screen: str, depth: int, forward: bool, counts: Counter) -> int:
    if screen not in screens:
        return 0
    at = screens.index(screen)
    part = screens[at + 1 : at + 1 + depth] if forward else screens[max(0, at - depth) : at]
    if part:
        counts[tuple(part)] += 1
    return 1


def _walk(pid: str, rows: list[Any], steps: list, start_us: Any, end_us: Any, window_us: int, out: dict) -> None:
    """The furthest this person got: times of the steps reached from the best first-step occurrence (the earliest
    of those that get furthest)."""
    events = [StoredEvent.of(r) for r in rows]
    n = len(events)

    def matches(event: StoredEvent, index: int) -> bool:
        _, event_type, node = steps[index]
        return event.event_type == event_type and (node is None or matches_event(node, event.as_event()))

    # next_match[s][p]: the first event at p or after that matches step s (n: none). Each first-step occurrence's
    # walk then jumps from step to step instead of scanning its window: a person with thousands of step-one events
    # cost thousands of window scans (quadratic: 12 s for 4,000; walk 2026-12-07).
    next_match = [array("i", [n]) * (n + 1) for _ in steps]  # machine ints: 4 bytes an entry, no int objects
    for s in range(len(steps)):
        row = next_match[s]
        for p in range(n - 1, -1, -1):
            row[p] = p if matches(events[p], s) else row[p + 1]
    group_start, group_end = [0] * n, [n] * n  # the first event of the same microsecond; one past its last
    for p in range(1, n):
        group_start[p] = group_start[p - 1] if events[p - 1].occurred_us == events[p].occurred_us else p
    for p in range(n - 2, -1, -1):
        group_end[p] = group_end[p + 1] if events[p + 1].occurred_us == events[p].occurred_us else p + 1
    best: list[int] = []
    for i in range(n):
        first = events[i].occurred_us
        if (
            next_match[0][i] != i
            or not (start_us is None or first >= start_us)
            or not (end_us is None or first < end_us)
        ):
            continue
        times = _steps_after(events, i, matches, len(steps), window_us, next_match, (group_start, group_end))
        if len(times) > len(best):
            best = times
        if len(best) == len(steps):
            break
    if best:
        out[pid] = best


def _steps_after(
    events: list[StoredEvent],
    i: int,
    matches: Any,
    steps: int,
    window_us: int,
    next_match: list[array],
    groups: tuple[list[int], list[int]],
) -> list[int]:
    """The times of the steps reached from ``events[i]`` (step one): each next step the first event after the step
    before, within the window. Events of one microsecond are in no particular order (the store orders by time
    only; server clocks of millisecond or second resolution make ties): among them the steps take the events that
    reach furthest, whatever their order (a fill stored before its order at the same time converts; review
    2026-12-07)."""
    group_start, group_end = groups
    first = events[i].occurred_us
    times, step, n = [first], 1, len(events)
    start = group_start[i]  # the events tied with step one
    while start < n and step < steps:
        if events[start].occurred_us != first:  # past step one's time: jump to the next time holding this step
            found = next_match[step][start]  # (a time without an event of the step takes no step: ``_furthest``)
            if found == n:
                break
            start = group_start[found]
        at = events[start].occurred_us
        if at - first > window_us:
            break
        end = group_end[start]
        taken = _furthest(events, [k for k in range(start, end) if k != i], step, steps, matches)
        times += [at] * taken
        step += taken
        start = end
    return times


_TIED_SEARCH_EVENTS = 8
"""Events of one person in one microsecond searched for the assignment that reaches furthest (the search grows as
their count's factorial); more (a bulk load) take the steps in their order."""


def _furthest(events: list[StoredEvent], group: list[int], step: int, steps: int, matches: Any) -> int:
    """How many steps from ``step`` on the events ``group`` (of one time) can take, each event one step at most."""
    if step == steps or not group:
        return 0
    if len(group) == 1:
        return 1 if matches(events[group[0]], step) else 0
    if len(group) > _TIED_SEARCH_EVENTS:  # each step the first event left that matches it
        taken = next((k for k in group if matches(events[k], step)), None)
        return 0 if taken is None else 1 + _furthest(events, [j for j in group if j != taken], step + 1, steps, matches)
    best = 0
    for k in group:  # a few events at most share a microsecond
        if matches(events[k], step):
            best = max(best, 1 + _furthest(events, [j for j in group if j != k], step + 1, steps, matches))
            if best == min(len(group), steps - step):
                break
    return best


def _label(value: object) -> str:
    """A split tag value as ``split_value``: a list as the JSON array of its distinct elements in order (one group
    whatever order they were written in), a time in ISO 8601 UTC (until 0.2.10 Python's texts of both)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return json.dumps(sorted({str(v) for v in value}), ensure_ascii=False)
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0
