"""Entry triggers over the log, each kind, with a manual clock: single event with a filter, N in a window,
a sequence, "A then no B", absence, dwell, segment entered; journeys walk waits, branches and sends."""

from __future__ import annotations

import datetime as dt

from campaign_helpers import (
    ATTRIBUTE,
    EVENT_PROPERTY,
    PUSH,
    T0,
    add_template,
    campaign_service,
    equals,
    event,
    messages,
    node,
    on_event,
    profile,
    run_journey,
    simple_graph,
    statuses,
)

from svc_campaign.profiles import InMemoryProfiles
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb

MIN = dt.timedelta(minutes=1)


def test_single_event_with_a_filter_enters_and_queues_one_message(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        add_template(service)
        run_journey(service, simple_graph(on_event("abnormal_trade", equals(EVENT_PROPERTY, "kind", "large_loss"))))
        stats = service.engine.handle(
            [
                event("abnormal_trade", "c1", kind="large_loss"),
                event("abnormal_trade", "c2", kind="other"),
                event("page_view"),
            ]
        )
        assert stats.entered == 1 and stats.messages == 1
        assert [m.user.value for m in messages(service)] == ["c1"]
        assert messages(service)[0].body == "您好 客户，新基金开售，点击查看"
        # Already in or done: no second entry without allow_reentry.
        assert service.engine.handle([event("abnormal_trade", "c1", kind="large_loss")]).entered == 0


def test_repeated_event_same_fund_three_times_in_ten_minutes(tmp_path, database_url) -> None:
    trigger = pb.Trigger(
        repeated_event=pb.RepeatedEventTrigger(
            event_type="fund_view", count=3, window_seconds=600, same_property="fund_code"
        )
    )
    with campaign_service(tmp_path, database_url) as service:
        add_template(service)
        run_journey(service, simple_graph(trigger))
        views = [
            event("fund_view", "c1", T0, fund_code="A"),
            event("fund_view", "c1", T0 + MIN, fund_code="B"),
            event("fund_view", "c1", T0 + 5 * MIN, fund_code="A"),
            event("fund_view", "c1", T0 + 11 * MIN, fund_code="A"),  # the first A is out of the window now
        ]
        assert service.engine.handle(views).entered == 0
        assert service.engine.handle([event("fund_view", "c1", T0 + 12 * MIN, fund_code="A")]).entered == 1


def test_sequence_a_then_b_within_window(tmp_path, database_url) -> None:
    trigger = pb.Trigger(
        sequence=pb.SequenceTrigger(
            steps=[pb.SingleEventTrigger(event_type="account_opened"), pb.SingleEventTrigger(event_type="deposit")],
            within_seconds=3 * 86400,
        )
    )
    with campaign_service(tmp_path, database_url) as service:
        add_template(service)
        run_journey(service, simple_graph(trigger))
        assert service.engine.handle([event("deposit", "c1"), event("account_opened", "c1")]).entered == 0
        assert service.engine.handle([event("deposit", "c1", T0 + dt.timedelta(days=1))]).entered == 1
        # c2 deposits too late.
        service.engine.handle([event("account_opened", "c2")])
        assert service.engine.handle([event("deposit", "c2", T0 + dt.timedelta(days=4))]).entered == 0


def test_opened_account_then_no_deposit_within_three_days_fires_on_the_timer(tmp_path, database_url) -> None:
    trigger = pb.Trigger(
        sequence=pb.SequenceTrigger(
            steps=[pb.SingleEventTrigger(event_type="account_opened"), pb.SingleEventTrigger(event_type="deposit")],
            within_seconds=3 * 86400,
            last_step_absent=True,
        )
    )
    with campaign_service(tmp_path, database_url) as service:
        add_template(service)
        run_journey(service, simple_graph(trigger))
        service.engine.handle([event("account_opened", "c1"), event("account_opened", "c2")])
        service.engine.handle([event("deposit", "c2", T0 + dt.timedelta(days=1))])  # c2 deposits: no timer fires
        service.clock.advance(days=2, hours=23)
        assert service.engine.fire_due_timers().timers_fired == 0
        service.clock.advance(hours=2)
        fired = service.engine.fire_due_timers()
        assert fired.timers_fired == 1 and fired.entered == 1
        assert [m.user.value for m in messages(service)] == ["c1"]
        assert service.engine.fire_due_timers().timers_fired == 0  # once, never twice


def test_absence_viewed_advisory_product_and_did_not_subscribe(tmp_path, database_url) -> None:
    trigger = pb.Trigger(
        absence=pb.AbsenceTrigger(
            start=pb.SingleEventTrigger(event_type="product_view"),
            expected=pb.SingleEventTrigger(event_type="subscribe"),
            timeout_seconds=1800,
            correlate_property="product_id",
        )
    )
    with campaign_service(tmp_path, database_url) as service:
        add_template(service, body="{{event.product_id}} 还在等您")
        run_journey(service, simple_graph(trigger))
        service.engine.handle(
            [
                event("product_view", "c1", product_id="P1"),
                event("product_view", "c2", product_id="P1"),
                event("subscribe", "c2", T0 + 10 * MIN, product_id="P1"),
                event("subscribe", "c1", T0 + 10 * MIN, product_id="OTHER"),  # another product: no effect
            ]
        )
        service.clock.advance(minutes=31)
        assert service.engine.fire_due_timers().entered == 1
        sent = messages(service)
        assert [(m.user.value, m.body) for m in sent] == [("c1", "P1 还在等您")]


def test_dwell_on_a_screen_without_action_and_dwell_property(tmp_path, database_url) -> None:
    screen = pb.Trigger(dwell=pb.DwellTrigger(screen="fund_detail", timeout_seconds=60))
    millis = pb.Trigger(
        dwell=pb.DwellTrigger(dwell_event_type="page_leave", dwell_property="dwell_ms", dwell_threshold_millis=30000)
    )
    with campaign_service(tmp_path, database_url) as service:
        add_template(service)
        run_journey(service, simple_graph(screen), "screen")
        run_journey(service, simple_graph(millis), "millis")
        service.engine.handle(
            [
                event("page_view", "c1", screen="fund_detail"),
                event("page_view", "c2", screen="fund_detail"),
                event("app_click", "c2", T0 + dt.timedelta(seconds=20)),  # c2 acted: no dwell
                event("page_leave", "c3", dwell_ms=45000),
                event("page_leave", "c4", dwell_ms=2000),
            ]
        )
        service.clock.advance(seconds=61)
        service.engine.fire_due_timers()
        assert sorted((m.journey_id, m.user.value) for m in messages(service)) == [("millis", "c3"), ("screen", "c1")]


def test_segment_entered_with_audience_and_branch_on_profile(tmp_path, database_url) -> None:
    profiles = InMemoryProfiles({"c1": profile("c1", risk="C4", segments=("hnw",)), "c2": profile("c2", risk="C1")})
    trigger = pb.Trigger(segment=pb.SegmentTrigger(segment_id="dormant", change=pb.SegmentTrigger.CHANGE_ENTERED))
    graph = pb.JourneyGraph(
        entry_node_id="start",
        nodes=[
            node("start", trigger=pb.TriggerNode(trigger=trigger, next_node_id="risk")),
            node(
                "risk",
                branch=pb.BranchNode(
                    arms=[pb.BranchArm(condition=equals(ATTRIBUTE, "risk_rating", "C4"), next_node_id="bold")],
                    default_node_id="calm",
                ),
            ),
            node("bold", send=pb.SendNode(channel=PUSH, template_id="bold", next_node_id="end", is_marketing=True)),
            node("calm", send=pb.SendNode(channel=PUSH, template_id="calm", next_node_id="end", is_marketing=True)),
            node("end", exit=pb.ExitNode()),
        ],
    )
    with campaign_service(tmp_path, database_url, profiles=profiles) as service:
        add_template(service, "bold")
        add_template(service, "calm")
        run_journey(service, graph)
        entered = [
            event("$segment_entered", "c1", segment_id="dormant", segment_version=3, profile_id="p-c1", cause="rule"),
            event("$segment_entered", "c2", segment_id="dormant", segment_version=3, profile_id="p-c2", cause="rule"),
            event("$segment_exited", "c3", segment_id="dormant"),
            event("$segment_entered", "c4", segment_id="other"),
        ]
        service.engine.handle(entered)
        assert sorted((m.user.value, m.template_id) for m in messages(service)) == [("c1", "bold"), ("c2", "calm")]


def test_waits_for_an_event_with_a_timeout_and_two_exits(tmp_path, database_url) -> None:
    graph = pb.JourneyGraph(
        entry_node_id="start",
        nodes=[
            node("start", trigger=pb.TriggerNode(trigger=on_event("signup"), next_node_id="wait")),
            node(
                "wait",
                wait=pb.WaitNode(
                    until_event=pb.WaitForEvent(
                        event=pb.SingleEventTrigger(event_type="deposit"), timeout_seconds=86400
                    ),
                    next_node_id="thanks",
                    timeout_node_id="nudge",
                ),
            ),
            node("thanks", send=pb.SendNode(channel=PUSH, template_id="thanks", next_node_id="end", is_marketing=True)),
            node("nudge", send=pb.SendNode(channel=PUSH, template_id="nudge", next_node_id="end", is_marketing=True)),
            node("end", exit=pb.ExitNode()),
        ],
    )
    with campaign_service(tmp_path, database_url) as service:
        add_template(service, "thanks")
        add_template(service, "nudge")
        run_journey(service, graph)
        service.engine.handle([event("signup", "c1"), event("signup", "c2")])
        service.engine.handle([event("deposit", "c1", T0 + 5 * MIN)])
        service.clock.advance(days=1, seconds=1)
        service.engine.fire_due_timers()
        assert sorted((m.user.value, m.template_id) for m in messages(service)) == [("c1", "thanks"), ("c2", "nudge")]
        report = service.get_report("j1") if hasattr(service, "get_report") else None
        assert report is None or report.entered == 2
        assert statuses(service, "c1") == [("QUEUED", "")]


def test_an_erasures_segment_exit_starts_no_journey() -> None:
    """svc_profile publishes $segment_exited (cause "erased") just before $profile_erased: a CHANGE_EXITED journey
    must not enrol (and message) a customer whose data is being erased; an exit for any other cause still fires."""
    from svc_campaign.triggers import compile_trigger
    from svc_common.pb.qiming.common.v1 import event_pb2

    spec = pb.Trigger(segment=pb.SegmentTrigger(segment_id="vip", change=pb.SegmentTrigger.CHANGE_EXITED))
    trigger = compile_trigger(spec)

    def exited(cause: str) -> event_pb2.Event:
        event = event_pb2.Event(event_type="$segment_exited", user_id="c1")
        event.properties["segment_id"].string_value = "vip"
        event.properties["cause"].string_value = cause
        return event

    assert trigger.on_event({}, exited("event")).fire
    assert not trigger.on_event({}, exited("erased")).fire
