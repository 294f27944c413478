"""svc_profile's part of review 2 (/tmp/report-review2.md, numbered as there): svc_campaign's `$message_*` events are
not the customer's behaviour (5), an unknown split_by_tag is NOT_FOUND (11), ordered finance thresholds must nest
(13), a new person's first lifecycle stage is an entry, not a move out of PROSPECT (15). Each test fails on the
code before its fix; on SQLite and PostgreSQL where the store matters."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from profile_helpers import ANONYMOUS, DAY, event, profile_app, profile_settings, ref

from svc_common.conditions import to_proto
from svc_common.errors import InvalidArgument, NotFound
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb

S = 1_000_000


# 5. svc_campaign's deliveries neither create a person nor count as the customer's activity.
def test_message_events_do_not_create_persons_or_refresh_activity(tmp_path: Path, database_url: str) -> None:
    now = time.time_ns() // 1000
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        app.consumer.handle([event("login", user_id="u5", at_us=now - 20 * DAY, session_id="s1")], "c1")
        before = app.profiles.get(ref("u5"), ["features"], frozenset())
        messages = [
            event(kind, user_id=user, at_us=now - 1000, journey_id="j1", message_id=f"m-{user}")
            for user in ("u5", "m1")
            for kind in ("$message_sent", "$message_delivered", "$message_clicked")
        ]
        app.consumer.handle(messages, "c2")
        assert app.consumer.load_cursor() == "c2"  # the batch is consumed (its cursor stored)
        with pytest.raises(NotFound):  # a customer only messaged gets no profile
            app.profiles.get(ref("m1"), [], frozenset())
        after = app.profiles.get(ref("u5"), ["features"], frozenset())
        assert after.lifecycle_stage == before.lifecycle_stage
        for name in ("last_seen_at", "first_seen_at", "events_total", "sessions"):
            assert after.features[name] == before.features[name], name
        assert not [k for k in after.features if "$message" in k]
        stages, _ = app.analytics.lifecycle(None, None, "")
        assert sum(stages.values()) == 1


# 11. A split by a tag that has no definition is NOT_FOUND naming split_by_tag, like an unknown segment.
def test_funnel_split_by_an_unknown_tag_is_not_found(tmp_path: Path) -> None:
    now = time.time_ns() // 1000
    with profile_app(profile_settings(tmp_path, f"sqlite:///{tmp_path / 't.db'}")) as app:
        app.consumer.handle(
            [event("fund_view", user_id="a", at_us=now - 100 * S), event("trade_filled", user_id="a", at_us=now)], "c1"
        )
        steps = [pb.FunnelStep(event_type="fund_view"), pb.FunnelStep(event_type="trade_filled")]
        with pytest.raises(NotFound) as refused:
            app.analytics.funnel(steps, 3600, None, None, split_tag="nope_tag")
        assert "split_by_tag" in refused.value.message and "nope_tag" in refused.value.message
        known = app.analytics.funnel(steps, 3600, None, None, split_tag="fin_trading_frequency")
        assert [s.count for s in known[0].steps] == [1, 1]


# 13. Ordered thresholds must nest; every formula that has them.
@pytest.mark.parametrize(
    ("tag", "values", "named"),
    [
        ("fin_trading_frequency", {"low": 10, "medium": 2, "high": 4}, "low/medium/high"),
        ("fin_trading_frequency", {"high": 3}, "low/medium/high"),  # medium stays 4
        ("fin_investor_tier", {"qualified_fen": 600_000_000}, "qualified_fen/professional_fen"),
        ("fin_investor_tier", {"chinext_fen": 60_000_000}, "chinext_fen/star_fen"),
        ("fin_high_net_worth", {"active_assets_fen": 400_000_000}, "active_assets_fen/assets_fen"),
        ("lifecycle_stage", {"active_days": 120}, "active_days/churned_days"),
    ],
)
def test_builtin_thresholds_that_do_not_nest_are_refused(
    tmp_path: Path, tag: str, values: dict[str, int], named: str
) -> None:
    with profile_app(profile_settings(tmp_path, f"sqlite:///{tmp_path / 't.db'}")) as app:
        definition = app.definitions.get_tag(tag)
        for name, value in values.items():
            definition.builtin.parameters[name].CopyFrom(to_proto(value))
        with pytest.raises(InvalidArgument) as refused:
            app.definitions.update_tag(definition, 0)
        assert [v.field for v in refused.value.violations] == ["definition.builtin.parameters"]
        assert named in refused.value.message
        assert app.definitions.get_tag(tag).version == 1  # nothing stored


def test_nested_thresholds_are_accepted_and_equal_ones_too(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, f"sqlite:///{tmp_path / 't.db'}")) as app:
        definition = app.definitions.get_tag("fin_trading_frequency")
        for name, value in {"low": 2, "medium": 2, "high": 10}.items():
            definition.builtin.parameters[name].CopyFrom(to_proto(value))
        assert app.definitions.update_tag(definition, 0).version == 2


# 15. A new person's first stage is recorded from UNSPECIFIED and counted as an entry in the flows.
def test_first_lifecycle_stage_is_an_entry_not_a_move_out_of_prospect(tmp_path: Path, database_url: str) -> None:
    now = time.time_ns() // 1000
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        batch = [
            event("login", user_id="A1", at_us=now - 5 * DAY),  # a customer from the start: never a prospect
            event("trade_filled", user_id="A1", at_us=now - 5 * DAY + S),
            event("login", user_id="C1", at_us=now - 200 * DAY),
            event("page_view", anonymous_id="dev-1", at_us=now - S),  # no account: a prospect
        ]
        app.consumer.handle(batch, "c1")
        first = app.profiles.lifecycle_history(ref("A1"), None, 10)
        assert [(h.from_stage, h.to_stage) for h in first] == [("UNSPECIFIED", "ACTIVE")]
        assert [(h.from_stage, h.to_stage) for h in app.profiles.lifecycle_history(ref("C1"), None, 10)] == [
            ("UNSPECIFIED", "CHURNED")
        ]
        prospect = app.profiles.lifecycle_history(ref("dev-1", ANONYMOUS), None, 10)
        assert [(h.from_stage, h.to_stage) for h in prospect] == [("UNSPECIFIED", "PROSPECT")]
        # The prospect later opens an account: a real move out of PROSPECT.
        app.profiles.upsert_attributes(ref("dev-1", ANONYMOUS), {"account_opened_at": to_proto(
            dt.datetime.now(dt.UTC))}, [], "counter", frozenset())  # fmt: skip
        moves = app.profiles.lifecycle_history(ref("dev-1", ANONYMOUS), None, 10)
        assert [(h.from_stage, h.to_stage) for h in moves] == [("PROSPECT", "NEW"), ("UNSPECIFIED", "PROSPECT")]
        # A profile created by an attribute write starts from UNSPECIFIED too.
        app.profiles.upsert_attributes(ref("K1"), {"branch": to_proto("SH")}, [], "crm", frozenset())
        assert [h.from_stage for h in app.profiles.lifecycle_history(ref("K1"), None, 10)] == ["UNSPECIFIED"]
        _, flows = app.analytics.lifecycle(None, None, "")
        assert flows == {
            ("UNSPECIFIED", "ACTIVE"): 1,
            ("UNSPECIFIED", "CHURNED"): 1,
            ("UNSPECIFIED", "PROSPECT"): 1,
            ("UNSPECIFIED", "NEW"): 1,
            ("PROSPECT", "NEW"): 1,
        }


# 8. An event window is rolling, whole days included: 86,400 s is the last 24 h, not "since local midnight".
def test_whole_day_windows_are_rolling_not_calendar_days(tmp_path: Path, database_url: str) -> None:
    settings = profile_settings(tmp_path, database_url)
    now = time.time_ns() // 1000
    offset = settings.day_offset_hours * 3_600 * S
    midnight = (now + offset) // DAY * DAY - offset  # today's local midnight, in UTC micros
    with profile_app(settings) as app:
        # yesterday 23:59:59 local (inside the last 24 h), and 25 h before now (outside it, inside 2 days)
        app.consumer.handle([event("login", user_id="y1", at_us=midnight - S)], "c1")
        app.consumer.handle([event("login", user_id="old", at_us=now - 25 * 3_600 * S)], "c2")
        windows = {"day": 86_400, "almost": 86_399, "two_days": 172_800}
        for name, seconds in windows.items():
            count = C.EventCount(event_type="login", min_count=1, window_seconds=seconds)
            app.definitions.create_segment(
                pb.Segment(segment_id=f"in_{name}", condition=C.Condition(event_count=count))
            )
            absent = C.EventAbsence(event_type="login", window_seconds=seconds)
            app.definitions.create_segment(
                pb.Segment(segment_id=f"none_{name}", condition=C.Condition(event_absence=absent))
            )
        for name in windows:  # y1 and old by the recompute (SQL where it can)
            app.segments.recompute(f"in_{name}")
            app.segments.recompute(f"none_{name}")
        app.consumer.handle([event("login", user_id="y2", at_us=midnight - S)], "c3")  # y2 by the log consumer
        with app.core.database.connection() as conn:
            members = {
                sid: app.analytics._members(conn, sid) for name in windows for sid in (f"in_{name}", f"none_{name}")
            }
        pid = {u: app.profiles.get(ref(u), [], frozenset()).profile_id for u in ("y1", "y2", "old")}
        recent = {pid["y1"], pid["y2"]}
        assert members["in_day"] == recent and members["none_day"] == {pid["old"]}  # the last 86,400 s
        assert members["in_almost"] == recent and members["none_almost"] == {pid["old"]}  # monotonic in the window
        assert members["in_two_days"] == set(pid.values()) and members["none_two_days"] == set()


def test_the_sweep_drops_a_rolling_whole_day_window_within_the_day(tmp_path: Path, database_url: str) -> None:
    """An event leaves a rolling 1-day window at any hour, not at midnight: the sweep finds it between two sweeps
    of the same day (no day boundary crossed)."""
    settings = profile_settings(tmp_path, database_url)
    now = time.time_ns() // 1000
    hour = 3_600 * S
    with profile_app(settings) as app:
        count = C.EventCount(event_type="login", min_count=1, window_seconds=86_400)
        app.definitions.create_segment(pb.Segment(segment_id="daily", condition=C.Condition(event_count=count)))
        app.consumer.handle([event("login", user_id="w1", at_us=now - DAY - hour // 2)], "c1")
        with app.core.writing() as conn:  # as of an hour ago the login is 23.5 h old
            app.core.engine.refresh(conn, None, now - hour, cause="test")
        assert app.segments.check("daily", (2, "w1"))[0]
        result = app.segments.sweep(now - hour, now)  # now it is 24.5 h old
        assert result["candidates"] >= 1
        assert not app.segments.check("daily", (2, "w1"))[0]
