"""Funnels (break-point, median time, split by tag and segment), paths around a screen, lifecycle distribution
and flows; on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from profile_helpers import DAY, event, profile_app, profile_settings, ref

from svc_common.conditions import to_proto
from svc_common.errors import InvalidArgument, NotFound
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb

S = 1_000_000


def _steps(*types: str) -> list[pb.FunnelStep]:
    return [pb.FunnelStep(event_type=t) for t in types]


def test_funnel_paths_and_lifecycle(tmp_path: Path, database_url: str) -> None:
    now = time.time_ns() // 1000
    t0 = now - 2 * DAY
    events = []
    # u1 converts in 60 s + 120 s; u2 stops after step 2; u3 after step 1; u4 completes too late (window 1 h).
    for user, offsets in {"u1": (0, 60, 180), "u2": (0, 30), "u3": (0,), "u4": (0, 10, 7200)}.items():
        for offset, kind in zip(offsets, ("fund_view", "fund_buy_start", "fund_buy_done"), strict=False):
            events.append(event(kind, user_id=user, at_us=t0 + offset * S, session_id=f"{user}-s", screen=kind))
    events.append(event("page_view", user_id="u1", at_us=t0 + 10 * S, session_id="u1-s", screen="home"))
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        app.consumer.handle(sorted(events, key=lambda e: e.occurred_at.ToMicroseconds()), "c1")
        app.profiles.upsert_attributes(ref("u1"), {"branch": to_proto("SH")}, [], "crm", frozenset())
        app.tags.definitions.create_tag(
            pb.TagDefinition(
                name="branch_sh",
                condition=C.Condition(
                    comparison=C.Comparison(
                        field=C.FieldRef(source=C.FieldRef.SOURCE_ATTRIBUTE, name="branch"),
                        operator=C.OPERATOR_EQ,
                        value=to_proto("SH"),
                    )
                ),
            )
        )
        app.segments.refresh_everyone("recompute")
        viewers = pb.Segment(
            segment_id="buyers",
            condition=C.Condition(
                event_count=C.EventCount(event_type="fund_buy_start", min_count=1, window_seconds=7 * 86_400)
            ),
        )
        app.definitions.create_segment(viewers)
        app.segments.recompute("buyers")

        analytics = app.analytics
        results = analytics.funnel(
            _steps("fund_view", "fund_buy_start", "fund_buy_done"), 3600, t0 - S, now, split_tag="branch_sh",
            split_segments=["buyers"],
        )  # fmt: skip
        overall = results[0]
        assert [s.count for s in overall.steps] == [4, 3, 1]
        assert overall.break_point == 2  # 3 → 1 loses two thirds
        assert overall.steps[1].seconds and sorted(overall.steps[1].seconds) == [10.0, 30.0, 60.0]
        by_label = {r.split_value: [s.count for s in r.steps] for r in results[1:]}
        assert by_label == {"(none)": [3, 2, 0], "true": [1, 1, 1], "buyers": [3, 3, 1]}
        only = analytics.funnel(_steps("fund_view", "fund_buy_start"), 3600, None, None, segment_id="buyers")
        assert [s.count for s in only[0].steps] == [3, 3]
        with pytest.raises(InvalidArgument):
            analytics.funnel(_steps("fund_view"), 3600, None, None)
        with pytest.raises(NotFound):
            analytics.funnel(_steps("a", "b"), 3600, None, None, segment_id="nope")

        paths, sessions = analytics.paths("fund_view", 2, True, None, None, 10)
        assert sessions == 4
        assert dict(paths) == {
            ("home", "fund_buy_start"): 1,
            ("fund_buy_start",): 1,
            ("fund_buy_start", "fund_buy_done"): 1,
        }
        back, _ = analytics.paths("fund_buy_start", 1, False, None, None, 10)
        assert dict(back) == {("fund_view",): 2, ("home",): 1}

        stages, flows = analytics.lifecycle(None, None, "")
        assert sum(stages.values()) == 4 and stages.get("ACTIVE", 0) + stages.get("NEW", 0) == 4
        assert sum(flows.values()) >= 4
