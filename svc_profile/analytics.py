"""Behaviour analytics over the retained events and profiles: funnels with break-point and split, paths around
a screen, lifecycle distribution and flows (docs/profile.md, "Analytics")."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from svc_common.conditions import EVENT_FILTER_SCOPE, compile_condition, matches_event
from svc_common.errors import FieldViolation, InvalidArgument, NotFound, PermissionDenied
from svc_profile.core import Core
from svc_profile.definitions import Definitions
from svc_profile.model import StoredEvent, decode, now_us
from svc_profile.retained import check_retained

MAX_STEPS = 20
MAX_DEPTH = 10
MAX_WINDOW_SECONDS = 400 * 86_400


def _bad(field_name: str, message: str) -> InvalidArgument:
    return InvalidArgument(message, violations=[FieldViolation(field_name, message)])


@dataclass
class StepResult:
    name: str
    count: int = 0
    seconds: list[float] = field(default_factory=list)


@dataclass
class FunnelResult:
    split_value: str
    steps: list[StepResult]
    break_point: int


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
            node = None
            if step.HasField("filter"):
                node = compile_condition(step.filter, EVENT_FILTER_SCOPE, field=f"steps[{i}].filter")
                check_retained(step.filter, f"steps[{i}].filter", in_filter=True)
            compiled.append((step.name or step.event_type, step.event_type, node))
        for sid in [*split_segments, *([segment_id] if segment_id else [])]:
            self.definitions.get_segment(sid)  # NOT_FOUND for an unknown segment
        if split_tag:
            self._known_tag(split_tag)
        scan_end = end_us + window_seconds * 1_000_000 if end_us is not None else None
        window_us = window_seconds * 1_000_000
        reached: dict[str, list[int]] = {}
        with self.core.database.connection() as conn:
            store = self.core.store
            rows = store.scan_events(conn, start_us, scan_end, [t for _, t, _ in compiled])
            current, events = None, []
            for row in rows:
                if row.profile_id != current:
                    if current is not None:
                        self._walk(current, events, compiled, start_us, end_us, window_us, reached)
                    current, events = row.profile_id, []
                events.append(row)
            if current is not None:
                self._walk(current, events, compiled, start_us, end_us, window_us, reached)
            allowed = self._members(conn, segment_id) if segment_id else None
            if allowed is not None:
                reached = {p: t for p, t in reached.items() if p in allowed}
            groups: list[tuple[str, set[str] | None]] = [("", None)]
            if split_tag:
                values: dict[str, set[str]] = defaultdict(set)
                tags = store.load_tags(conn, sorted(reached))
                now = now_us()
                for pid in reached:
                    tag = tags.get(pid, {}).get(split_tag)
                    if tag is not None and tag.expires_us is not None and tag.expires_us <= now:
                        tag = None  # expired: hidden, as from every other reader of tags
                    values[_label(decode(tag.tag_value)) if tag is not None else "(none)"].add(pid)
                groups += sorted(values.items())
            for sid in split_segments:
                groups.append((sid, self._members(conn, sid)))
        names = [n for n, _, _ in compiled]
        return [self._result(label, names, reached, members) for label, members in groups]

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
    def _walk(pid: str, rows: list[Any], steps: list, start_us: Any, end_us: Any, window_us: int, out: dict) -> None:
        """The furthest this person got: times of the steps reached from the best first-step occurrence."""
        events = [StoredEvent.of(r) for r in rows]

        def matches(event: StoredEvent, index: int) -> bool:
            _, event_type, node = steps[index]
            return event.event_type == event_type and (node is None or matches_event(node, event.as_event()))

        best: list[int] = []
        for i, first in enumerate(events):
            if (start_us is not None and first.occurred_us < start_us) or (
                end_us is not None and first.occurred_us >= end_us
            ):
                continue
            if not matches(first, 0):
                continue
            times = _steps_after(events, i, matches, len(steps), window_us)
            if len(times) > len(best):
                best = times
            if len(best) == len(steps):
                break
        if best:
            out[pid] = best

    @staticmethod
    def _result(label: str, names: list[str], reached: dict[str, list[int]], members: set[str] | None) -> FunnelResult:
        steps = [StepResult(n) for n in names]
        for pid, times in reached.items():
            if members is not None and pid not in members:
                continue
            for i, at in enumerate(times):
                steps[i].count += 1
                if i:
                    steps[i].seconds.append((at - times[i - 1]) / 1e6)
        worst, worst_share = 0, -1.0
        for i in range(1, len(steps)):
            before = steps[i - 1].count
            share = (before - steps[i].count) / before if before else 0.0
            if share > worst_share:
                worst, worst_share = i, share
        return FunnelResult(label, steps, worst)

    # -- paths ---------------------------------------------------------------------------------------
    def paths(
        self, screen: str, depth: int, forward: bool, start_us: int | None, end_us: int | None, top_n: int
    ) -> tuple[list[tuple[tuple[str, ...], int]], int]:
        if not screen:
            raise _bad("screen", "name the screen")
        depth = depth or 3
        if depth > MAX_DEPTH:
            raise _bad("depth", f"depth is at most {MAX_DEPTH}")
        counts: Counter[tuple[str, ...]] = Counter()
        sessions = 0
        with self.core.database.connection() as conn:
            # Rows come by person, then time: a person's sessions may interleave (app and web at once), so the
            # screens are gathered per session of the person at hand.
            rows = self.core.store.scan_events(conn, start_us, end_us, filters=False)  # screens only
            person: str | None = None
            by_session: dict[str, list[str]] = {}
            for row in rows:
                if row.profile_id != person:
                    sessions += sum(_path(s, screen, depth, forward, counts) for s in by_session.values())
                    person, by_session = row.profile_id, {}
                screens = by_session.setdefault(row.session_id, [])
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
                self.definitions.get_segment(segment_id)
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


def _steps_after(events: list[StoredEvent], i: int, matches: Any, steps: int, window_us: int) -> list[int]:
    """The times of the steps reached from ``events[i]`` (step one): each next step the first event after the step
    before, within the window. Events of one microsecond are in no particular order (the store orders by time
    only; server clocks of millisecond or second resolution make ties): among them the steps take the events that
    reach furthest, whatever their order (a fill stored before its order at the same time converts; review
    2026-12-07)."""
    first = events[i].occurred_us
    times, step, n = [first], 1, len(events)
    start = i
    while start > 0 and events[start - 1].occurred_us == first:
        start -= 1  # the events tied with step one
    while start < n and step < steps:
        at = events[start].occurred_us
        if at - first > window_us:
            break
        end = start
        while end < n and events[end].occurred_us == at:
            end += 1
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
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0
