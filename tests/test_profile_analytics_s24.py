"""Findings of the analytics walk of 2026-12-07 (session 24): a funnel walked each first-step occurrence's whole
window (quadratic in a person's events: 12 s for one person with 4,000); split_by_segments had no bound and took
repeats; a tag value "" or "(none)" could not be told from the overall result or from the people without the tag;
a funnel that loses nobody named step 1 its break-point; paths ran a person's events without a session id
together across days."""

from __future__ import annotations

import random
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from profile_helpers import DAY, event, profile_app, profile_settings, ref

from svc_common.errors import InvalidArgument, NotFound
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_profile import analytics
from svc_profile.analytics import MAX_SPLIT_SEGMENTS, NO_TAG_VALUE, OVERALL, SEGMENT, TAG_VALUE, _furthest, _walk
from svc_profile.analytics_server import _GROUPS
from svc_profile.model import StoredEvent

S = 1_000_000
CRM = types_pb2.Provenance(source=types_pb2.Provenance.SOURCE_IMPORT, writer="crm")


def _steps(*types: str) -> list[pb.FunnelStep]:
    return [pb.FunnelStep(event_type=t) for t in types]


def _reference(rows, steps, start_us, end_us, window_us):
    """The walk as it was before (each first-step occurrence scans its window event by event): what the jumps must
    answer, step times included."""
    events = [StoredEvent.of(r) for r in rows]

    def matches(e, index):
        return e.event_type == steps[index][1]

    best = []
    for i, first in enumerate(events):
        if (start_us is not None and first.occurred_us < start_us) or (
            end_us is not None and first.occurred_us >= end_us
        ):
            continue
        if not matches(first, 0):
            continue
        at0 = first.occurred_us
        times, step, n, start = [at0], 1, len(events), i
        while start > 0 and events[start - 1].occurred_us == at0:
            start -= 1
        while start < n and step < len(steps):
            at = events[start].occurred_us
            if at - at0 > window_us:
                break
            end = start
            while end < n and events[end].occurred_us == at:
                end += 1
            taken = _furthest(events, [k for k in range(start, end) if k != i], step, len(steps), matches)
            times += [at] * taken
            step += taken
            start = end
        if len(times) > len(best):
            best = times
        if len(best) == len(steps):
            break
    return best


def _row(at: int, kind: str) -> SimpleNamespace:
    return SimpleNamespace(
        occurred_us=at,
        event_type=kind,
        session_id="",
        screen="",
        properties={},
        channel=None,
        user_id=None,
        anonymous_id=None,
        context_fields=None,
    )


def test_the_walk_answers_as_the_window_scan_did() -> None:
    rng = random.Random(24)
    for case in range(3000):
        kinds = "abc"[: rng.randint(1, 3)]
        steps = [("", rng.choice(kinds), None) for _ in range(rng.randint(2, 5))]
        at, rows = 0, []
        for _ in range(rng.randint(1, 25)):
            at += rng.choice((0, 0, 1, 3, 10))  # ties are common: the search over events of one time
            rows.append(_row(at, rng.choice(kinds)))
        window = rng.choice((0, 5, 20, 1000))
        start = rng.choice((None, 0, 5))
        end = rng.choice((None, 30, 60))
        out: dict = {}
        _walk("p", rows, steps, start, end, window, out)
        assert out.get("p", []) == _reference(rows, steps, start, end, window), (case, rows, steps)


def test_a_person_with_thousands_of_first_steps_is_walked_once_each_not_over_the_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """4,000 first steps and no second one: each occurrence's walk looks at its own time and then finds no second
    step after it, instead of weighing each of the events after it (8 million looks before)."""
    rows = [_row(i, "a") for i in range(4000)]
    looks = 0

    def counting(*args):
        nonlocal looks
        looks += 1
        return _furthest(*args)

    monkeypatch.setattr(analytics, "_furthest", counting)
    out: dict = {}
    _walk("p", rows, [("", "a", None), ("", "b", None)], None, None, 10**9, out)
    assert out["p"] == [0] and looks <= 2 * len(rows)
    out = {}
    _walk("p", [*rows, _row(10_000, "b")], [("", "a", None), ("", "b", None)], None, None, 10**9, out)
    assert out["p"] == [0, 10_000]


def test_split_segments_are_bounded_named_once_and_not_empty(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path)) as app:
        app.definitions.create_segment(pb.Segment(segment_id="s1", static_list=pb.StaticSegment(source="crm")))
        funnel = app.analytics.funnel
        too_many = [f"s{i}" for i in range(MAX_SPLIT_SEGMENTS + 1)]
        for split, where in (
            (too_many, "split_by_segments.segment_ids"),
            (["s1", "s1"], "split_by_segments.segment_ids[1]"),
            (["s1", ""], "split_by_segments.segment_ids[1]"),
        ):
            with pytest.raises(InvalidArgument) as caught:
                funnel(_steps("a", "b"), 60, None, None, split_segments=split)
            assert [v.field for v in caught.value.violations] == [where]
        with pytest.raises(NotFound, match=r"split_by_segments.segment_ids\[1\]: no segment 'nope'"):
            funnel(_steps("a", "b"), 60, None, None, split_segments=["s1", "nope"])
        with pytest.raises(NotFound, match="segment_id: no segment 'gone'"):
            funnel(_steps("a", "b"), 60, None, None, segment_id="gone")


def test_split_groups_tell_overall_tag_values_and_no_value_apart_and_break_point_0_when_nobody_is_lost(
    tmp_path: Path, database_url: str
) -> None:
    now = time.time_ns() // 1000
    t0 = now - DAY
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        app.definitions.create_tag(
            pb.TagDefinition(
                name="grade", external=pb.ExternalTag(writer="crm"), value_type=types_pb2.VALUE_TYPE_STRING
            )
        )
        events = []
        for user in ("a", "b", "c", "d"):
            events += [event("view", user, at_us=t0), event("buy", user, at_us=t0 + S)]
        app.consumer.handle(events, "1")
        for user, value in (("a", ""), ("b", "(none)"), ("d", "x")):
            write = pb.TagWrite(user=ref(user), tag_name="grade", value=types_pb2.Value(string_value=value))
            assert app.tags.write([write], CRM, "") == (1, [])
        results = app.analytics.funnel(_steps("view", "buy"), 60, t0 - S, now, split_tag="grade")
        groups = [(r.split_value, r.group, r.steps[0].count) for r in results]
        assert groups == [
            ("", OVERALL, 4),
            ("", TAG_VALUE, 1),
            ("(none)", NO_TAG_VALUE, 1),  # c: no tag
            ("(none)", TAG_VALUE, 1),  # b: the value "(none)"
            ("x", TAG_VALUE, 1),
        ]
        assert all(r.break_point == 0 for r in results)  # everyone converted: no step loses anyone
        empty = app.analytics.funnel(_steps("x", "y", "z"), 60, None, None)
        assert [s.count for s in empty[0].steps] == [0, 0, 0] and empty[0].break_point == 0
        app.definitions.create_segment(pb.Segment(segment_id="s1", static_list=pb.StaticSegment(source="crm")))
        split = app.analytics.funnel(_steps("view", "buy"), 60, None, None, split_segments=["s1"])
        assert [r.group for r in split] == [OVERALL, SEGMENT]
    assert set(_GROUPS) == {OVERALL, TAG_VALUE, NO_TAG_VALUE, SEGMENT}


def test_paths_cut_events_without_a_session_into_visits(tmp_path: Path, database_url: str) -> None:
    now = time.time_ns() // 1000
    day1, day2 = now - 2 * DAY, now - DAY
    screens = [(day1, "home"), (day1 + S, "fund"), (day2, "news"), (day2 + S, "home"), (day2 + 2 * S, "fund")]
    events = [event("page_view", "p2", at_us=at, screen=screen) for at, screen in screens]
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        app.consumer.handle(events, "1")
        paths, sessions = app.analytics.paths("home", 3, True, None, None, 10)
        assert sessions == 2  # one visit a day
        assert dict(paths) == {("fund",): 2}  # not home → fund → news across the day between
