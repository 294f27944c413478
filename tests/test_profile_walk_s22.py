"""Findings of the svc_profile review of 2026-12-07 (session 22): a funnel split by a tag counted expired values,
funnel steps stored in one microsecond converted or not by their ids, lifecycle stages aged to the microsecond
while the sweep evaluates them once a day, and a process-wide dict kept the creation time of every profile ever
evaluated."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from profile_helpers import ANONYMOUS, DAY, event, profile_app, profile_settings, ref

from svc_common.conditions import to_proto
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_profile import finance
from svc_profile.config import ProfileSettings
from svc_profile.model import Days, Person, to_us
from svc_profile.rules import Context

S = 1_000_000
MODEL = types_pb2.Provenance(source=types_pb2.Provenance.SOURCE_MODEL, writer="svc_modeling")


def _steps(*types: str) -> list[pb.FunnelStep]:
    return [pb.FunnelStep(event_type=t) for t in types]


def test_a_funnel_split_by_tag_leaves_expired_values_out(tmp_path: Path, database_url: str) -> None:
    """An expired value is hidden from every reader of tags; the split counted the person under it."""
    now = time.time_ns() // 1000
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        for user in ("c1", "c2"):
            app.consumer.handle(
                [
                    event("fund_view", user_id=user, at_us=now - 60 * S),
                    event("fund_buy", user_id=user, at_us=now - 30 * S),
                ],
                f"c-{user}",
            )
        app.definitions.create_tag(pb.TagDefinition(name="risk", external=pb.ExternalTag(writer="svc_modeling")))
        soon = Timestamp()
        soon.FromMicroseconds(time.time_ns() // 1000 + 200_000)
        writes = [
            pb.TagWrite(user=ref("c1"), tag_name="risk", value=to_proto("high"), expires_at=soon),
            pb.TagWrite(user=ref("c2"), tag_name="risk", value=to_proto("low")),
        ]
        app.tags.write(writes, MODEL, "")
        time.sleep(0.3)
        results = app.analytics.funnel(_steps("fund_view", "fund_buy"), 3600, now - DAY, now + S, split_tag="risk")
        by_label = {r.split_value: [s.count for s in r.steps] for r in results[1:]}
        assert by_label == {"(none)": [1, 1], "low": [1, 1]}


def test_funnel_steps_in_one_microsecond_convert_whatever_their_order(tmp_path: Path, database_url: str) -> None:
    """The store orders a person's events by time only: the fill (its id sorting first) came before its order of
    the same microsecond, and the walk from the order never saw it."""
    now = time.time_ns() // 1000
    at = now - 60 * S
    first, last = "00000000-0000-4000-8000-000000000001", "ffffffff-ffff-4fff-bfff-fffffffffff{}"
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        app.consumer.handle(
            [
                event("order_submit", user_id="c1", at_us=at, event_id=last.format(1)),
                event("trade_filled", user_id="c1", at_us=at, event_id=first),
                # c2: three steps in one microsecond, stored last step first
                event("order_submit", user_id="c2", at_us=at, event_id=last.format(2)),
                event("order_ack", user_id="c2", at_us=at, event_id=last.format(3)),
                event("trade_filled", user_id="c2", at_us=at, event_id="00000000-0000-4000-8000-000000000002"),
                # c3: the fill a microsecond before the order: not a conversion
                event("trade_filled", user_id="c3", at_us=at - 1, event_id=first.replace("1", "3")),
                event("order_submit", user_id="c3", at_us=at, event_id=last.format(4)),
            ],
            "c1",
        )
        two = app.analytics.funnel(_steps("order_submit", "trade_filled"), 3600, now - DAY, now)[0]
        assert [s.count for s in two.steps] == [3, 2]
        assert two.steps[1].seconds == [0.0, 0.0]
        three = app.analytics.funnel(_steps("order_submit", "order_ack", "trade_filled"), 3600, now - DAY, now)[0]
        assert [s.count for s in three.steps] == [3, 1, 1]


def _stage(opened: dt.datetime, now: dt.datetime, stage: str = "NEW", since: dt.datetime | None = None) -> str:
    person = Person(
        "p",
        attributes={"account_opened_at": opened},
        has_customer=True,
        clock=Days(8),
        now=to_us(now),
        lifecycle_stage=stage,
        lifecycle_since_us=to_us(since) if since else 0,
    )
    return finance.lifecycle(person, finance.DEFAULTS["lifecycle_stage"], Context(ProfileSettings()))[0]


def test_lifecycle_ages_in_days_of_the_local_calendar() -> None:
    """NEW for 30 local days, then no longer from the boundary on, where the day's sweep evaluates it (it ended at
    10:00 of that day, when nothing evaluated it until the next boundary); the same for REACTIVATED's 30 days and a
    never-active customer's 90 before CHURNED. Days begin at 00:00 UTC+8 (``day_offset_hours`` 8)."""
    utc8 = dt.timezone(dt.timedelta(hours=8))
    opened = dt.datetime(2026, 1, 1, 10, 0, tzinfo=utc8)
    assert _stage(opened, dt.datetime(2026, 1, 30, 23, 59, tzinfo=utc8)) == "NEW"  # day 29 of the account
    assert _stage(opened, dt.datetime(2026, 1, 31, 0, 1, tzinfo=utc8)) == "AT_RISK"  # day 30, before 10:00
    assert _stage(opened, dt.datetime(2026, 3, 31, 23, 59, tzinfo=utc8)) == "AT_RISK"  # day 89, never active
    assert _stage(opened, dt.datetime(2026, 4, 1, 0, 1, tzinfo=utc8)) == "CHURNED"  # day 90, before 10:00
    old = dt.datetime(2025, 1, 1, tzinfo=utc8)
    back = dt.datetime(2026, 3, 1, 10, 0, tzinfo=utc8)
    person_days = Days(8)
    active = {"login": {person_days.of(to_us(dt.datetime(2026, 3, 30, 12, tzinfo=utc8))): (1, 0)}}

    def reactivated(now: dt.datetime) -> str:
        person = Person(
            "p",
            attributes={"account_opened_at": old},
            has_customer=True,
            days=active,
            clock=person_days,
            now=to_us(now),
            lifecycle_stage="REACTIVATED",
            lifecycle_since_us=to_us(back),
        )
        return finance.lifecycle(person, finance.DEFAULTS["lifecycle_stage"], Context(ProfileSettings()))[0]

    assert reactivated(dt.datetime(2026, 3, 30, 23, 59, tzinfo=utc8)) == "REACTIVATED"
    assert reactivated(dt.datetime(2026, 3, 31, 0, 1, tzinfo=utc8)) == "ACTIVE"


def test_a_customers_account_dates_from_the_profiles_creation(tmp_path: Path) -> None:
    """Without ``account_opened_at``, a customer's account dates from the profile's creation, carried on the person
    (``Person.created_us``), not kept for every profile ever evaluated in a dict of the process-wide context."""
    clock, now = Days(8), time.time_ns() // 1000

    def stage(created_us: int | None) -> str:
        person = Person("p", has_customer=True, clock=clock, now=now, created_us=created_us)
        return finance.lifecycle(person, finance.DEFAULTS["lifecycle_stage"], Context(ProfileSettings()))[0]

    assert stage(now - 40 * DAY) == "AT_RISK"
    assert stage(now - 2 * DAY) == stage(None) == "NEW"
    with profile_app(profile_settings(tmp_path)) as app:
        app.consumer.handle([event("login", user_id=f"c{i}", at_us=now - S) for i in range(50)], "c1")
        profile = app.profiles.get(ref("c7"), [], frozenset())
        assert profile.lifecycle_stage == pb.LIFECYCLE_STAGE_NEW
        context = app.core.engine.context
        held = repr(vars(context))
        assert profile.profile_id not in held and "c7" not in held


def test_tied_funnel_steps_take_the_events_that_reach_furthest(tmp_path: Path, database_url: str) -> None:
    """Steps "trade" then "trade of side buy" with a buy and a sell in one microsecond: whichever the store lists first,
    the sell takes the broader step and the buy the narrower one (taking the buy for the first left the sell
    nothing)."""
    from svc_common.pb.qiming.common.v1 import condition_pb2 as C

    buy = C.Condition(
        comparison=C.Comparison(
            field=C.FieldRef(source=C.FieldRef.SOURCE_EVENT_PROPERTY, name="side"),
            operator=C.OPERATOR_EQ,
            value=to_proto("buy"),
        )
    )
    steps = [
        pb.FunnelStep(event_type="open"),
        pb.FunnelStep(event_type="trade"),
        pb.FunnelStep(event_type="trade", filter=buy),
    ]
    now = time.time_ns() // 1000
    at = now - 60 * S
    low, high = "00000000-0000-4000-8000-00000000000{}", "ffffffff-ffff-4fff-bfff-fffffffffff{}"
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        app.consumer.handle(
            [
                event("open", user_id="c1", at_us=at - S),
                event("trade", user_id="c1", at_us=at, event_id=low.format(1), side="buy"),
                event("trade", user_id="c1", at_us=at, event_id=high.format(1), side="sell"),
                event("open", user_id="c2", at_us=at - S),
                event("trade", user_id="c2", at_us=at, event_id=low.format(2), side="sell"),
                event("trade", user_id="c2", at_us=at, event_id=high.format(2), side="buy"),
            ],
            "c1",
        )
        (result,) = app.analytics.funnel(steps, 3600, now - DAY, now)
        assert [s.count for s in result.steps] == [2, 2, 2]


def _outbox(app: object) -> list[tuple[int, str, str, str]]:
    """(outbox id, person key, event type, event id) of every queued segment event, in order."""
    import sqlalchemy as sa

    from svc_common.pb.qiming.common.v1 import event_pb2

    t = app.core.store.t["outbox"]
    with app.core.database.connection() as conn:
        rows = conn.execute(sa.select(t.c.outbox_id, t.c.person_key, t.c.body).order_by(t.c.outbox_id))
        return [(i, key, (e := event_pb2.Event.FromString(body)).event_type, e.event_id) for i, key, body in rows]


def test_a_segment_created_again_after_its_undo_publishes_events_of_new_ids(tmp_path: Path) -> None:
    """CreateSegment's undo (its first computation failed) deleted the memberships, so the retry's events counted
    their ``seq`` from 1 again and took the ids of the first ones: svc_collect answered DUPLICATE, never delivered."""
    from svc_common.pb.qiming.common.v1 import condition_pb2 as C

    logged_in = C.Condition(event_count=C.EventCount(event_type="login", min_count=1, window_seconds=7 * 86_400))
    with profile_app(profile_settings(tmp_path)) as app:
        app.definitions.create_segment(pb.Segment(segment_id="vip", condition=logged_in))
        app.consumer.handle([event("login", user_id="C1")], "c1")  # enters
        app.definitions.discard_segment("vip")  # exits
        app.definitions.create_segment(pb.Segment(segment_id="vip", condition=logged_in))  # the caller's retry
        app.consumer.handle([event("login", user_id="C1")], "c2")  # enters again
        queued = _outbox(app)
        assert [kind for _, _, kind, _ in queued] == ["$segment_entered", "$segment_exited", "$segment_entered"]
        assert len({event_id for *_, event_id in queued}) == 3


def test_a_recompute_job_evaluates_at_its_own_time_not_at_its_start(tmp_path: Path, monkeypatch) -> None:
    """The job took its time once: waiting for the writer or between chunks the sweep exited a person whose login
    left a one-day window, and the job entered them again at its start time, for good (no later sweep looked)."""
    from svc_common.pb.qiming.common.v1 import condition_pb2 as C
    from svc_profile import segments as segments_module

    hour = 3_600 * S
    t0 = time.time_ns() // 1000
    clock = [t0]
    monkeypatch.setattr(segments_module, "now_us", lambda: clock[0])
    within_a_day = C.Condition(event_count=C.EventCount(event_type="login", min_count=1, window_seconds=86_400))
    with profile_app(profile_settings(tmp_path)) as app:
        app.definitions.create_segment(pb.Segment(segment_id="day", condition=within_a_day))
        app.consumer.handle([event("login", user_id="C1", at_us=t0 - 23 * hour)], "c1")
        app.segments.catch_up(t0)

        def sweep_first() -> str:  # before the job's chunk: two hours later, the sweep exits C1
            if clock[0] == t0:
                clock[0] = t0 + 2 * hour
                app.segments.catch_up(clock[0])
            return ""

        app.segments.refresh_everyone("recompute", stop=sweep_first)
        assert [kind for _, _, kind, _ in _outbox(app)] == ["$segment_entered", "$segment_exited"]


@pytest.mark.parametrize("how", ["event", "LinkIdentities"])
def test_a_profile_that_gains_a_customer_number_keeps_its_events_in_order(tmp_path: Path, how: str) -> None:
    """The outbox holds a person's later events behind a rejected earlier one, by person key; the key was the
    profile while anonymous and the customer number after, so the exit went out before its rejected enter."""
    from svc_common.pb.qiming.common.v1 import condition_pb2 as C
    from svc_profile.store import _outbox as outbox

    no_login = C.Condition(event_absence=C.EventAbsence(event_type="login", window_seconds=7 * 86_400))
    with profile_app(profile_settings(tmp_path)) as app:
        app.definitions.create_segment(pb.Segment(segment_id="no_login", condition=no_login))
        app.consumer.handle([event("page_view", anonymous_id="dev-1")], "c1")  # enters, anonymous
        t = app.core.store.t["outbox"]
        now = time.time_ns() // 1000
        with app.core.database.connection(write=True) as conn:  # svc_collect refused it once
            outbox.mark_rejected(conn, t, [outbox.Rejection(1, "QUOTA", "m", "", 1, now, now + 60 * S)])
        login = event("login", anonymous_id="dev-1")
        if how == "event":
            login.identities.add(type=types_pb2.ID_TYPE_CUSTOMER, value="C1")
        else:
            app.profiles.link(ref("dev-1", ANONYMOUS), ref("C1"), "crm", frozenset())
        app.consumer.handle([login], "c2")  # the same profile, now C1's (no merge), exits
        queued = _outbox(app)
        assert [(key, kind) for _, key, kind, _ in queued] == [("C1", "$segment_entered"), ("C1", "$segment_exited")]
        with app.core.database.connection() as conn:
            assert outbox.due(conn, t, now + 1, 100, 3_600 * S) == []  # the exit waits for its enter
