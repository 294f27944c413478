"""Valid events that failed svc_campaign's log batch at every retry, stopping every journey (walk of session 26):
a timer due past the calendar (an event of 9999-12-31, which svc_collect flags and keeps by default), a goal's
attribution window reaching before year 1, a goal value past 64 bits, and a NUL rendered into a message body
(PostgreSQL's text refuses it). Each batch now commits, on SQLite and PostgreSQL, and the journeys go on."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from campaign_helpers import PUSH, T0, add_template, campaign_service, event, node, on_event, run_journey, simple_graph
from sqlalchemy import select

from svc_campaign.experiments import goal_value_fen
from svc_common.amounts import MAX_AMOUNT_FEN
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.timestamps import MAX_SECONDS, MIN_SECONDS

LAST = dt.datetime.fromtimestamp(MAX_SECONDS, dt.UTC)
FIRST = dt.datetime.fromtimestamp(MIN_SECONDS, dt.UTC)


def _at(e, occurred: dt.datetime):
    """As svc_collect stores a flagged time: ``occurred_at`` as sent, ``received_at`` the server's."""
    e.occurred_at.FromDatetime(occurred)
    e.received_at.FromDatetime(T0)
    return e


def _journeys(service) -> None:
    add_template(service, body="您好 {{event.fund_name|客户}}，新基金开售")
    run_journey(service, simple_graph(on_event("signup")), "j_single")
    absence = pb.AbsenceTrigger(
        start=pb.SingleEventTrigger(event_type="product_view"),
        expected=pb.SingleEventTrigger(event_type="fund_subscribe"),
        timeout_seconds=1800,
        correlate_property="product_id",
    )
    run_journey(service, simple_graph(pb.Trigger(absence=absence)), "j_abs")
    dwell = pb.DwellTrigger(screen="fund_detail", timeout_seconds=60)
    run_journey(service, simple_graph(pb.Trigger(dwell=dwell)), "j_dwell")
    steps = [pb.SingleEventTrigger(event_type="cart_add"), pb.SingleEventTrigger(event_type="checkout")]
    sequence = pb.SequenceTrigger(steps=steps, within_seconds=600, last_step_absent=True)
    run_journey(service, simple_graph(pb.Trigger(sequence=sequence)), "j_seq")
    variants = [pb.Variant(key="a", weight_bps=5000, is_control=True), pb.Variant(key="b", weight_bps=5000)]
    experiment = pb.Experiment(
        name="x", variants=variants, goal_event_type="fund_purchase", attribution_window_seconds=7 * 86400
    )
    with service.db.connection(write=True) as conn:
        service.experiments.create(conn, experiment, service.clock.now())


def test_events_that_stopped_the_campaign_consumer_now_commit(tmp_path: Path, database_url: str) -> None:
    with campaign_service(tmp_path, database_url) as service:
        _journeys(service)
        batches = [
            [_at(event("product_view", "u1", product_id="p1"), LAST)],  # absence: due 9999-12-31 + 30 min
            [_at(event("page_view", "u2", screen="fund_detail"), LAST)],  # dwell: due + 60 s
            [_at(event("cart_add", "u3"), LAST)],  # sequence with its last step absent: due + 600 s
            [_at(event("fund_purchase", "u4", value_fen=5), FIRST)],  # goal: year 1 less 7 days
            [event("fund_purchase", "u5", value_fen=1e300)],  # goal value past 64 bits
            [event("signup", "u6", fund_name="基金\x00A")],  # a NUL rendered into the message body
        ]
        for i, batch in enumerate(batches):
            service.engine.handle(batch, f"c{i}")
        t = service.t
        with service.db.connection() as conn:
            due = dict(conn.execute(select(t["timer"].c.user_id, t["timer"].c.due_at)).all())
            bodies = dict(conn.execute(select(t["message"].c.user_id, t["message"].c.body)).all())
        # Due from when svc_collect received each event, not from a time past the calendar.
        assert due == {
            "u1": T0 + dt.timedelta(seconds=1800),
            "u2": T0 + dt.timedelta(seconds=60),
            "u3": T0 + dt.timedelta(seconds=600),
        }
        assert bodies["u6"] == "您好 基金A，新基金开售"  # the NUL dropped
        assert service.engine.handle([event("signup", "u7")], "c9").messages == 1  # still consuming


def test_a_goal_value_is_bounded_as_a_trade_amount() -> None:
    for value, fen in ((1e300, MAX_AMOUNT_FEN), (-1e300, -MAX_AMOUNT_FEN), ((1 << 63) - 1, MAX_AMOUNT_FEN), (12.5, 13)):
        assert goal_value_fen(event("fund_purchase", "u", value_fen=value)) == fen, value


def _signup_send_goal(window_seconds: int) -> pb.JourneyGraph:
    """signup → a marketing push → a goal of ``deposit`` within ``window_seconds``."""
    goal = pb.GoalNode(event=pb.SingleEventTrigger(event_type="deposit"), attribution_window_seconds=window_seconds)
    start = pb.TriggerNode(trigger=on_event("signup"), next_node_id="send")
    send = pb.SendNode(channel=PUSH, template_id="t1", next_node_id="goal", is_marketing=True)
    return pb.JourneyGraph(
        entry_node_id="start", nodes=[node("start", trigger=start), node("send", send=send), node("goal", goal=goal)]
    )


def test_a_goal_of_year_one_after_a_send_commits(tmp_path: Path, database_url: str) -> None:
    graph = _signup_send_goal(86400)
    with campaign_service(tmp_path, database_url) as service:
        add_template(service)
        run_journey(service, graph)
        assert service.engine.handle([event("signup", "c1")], "c0").messages == 1
        service.engine.handle([_at(event("deposit", "c1"), FIRST)], "c1")  # its window reached before year 1
        service.engine.handle([event("deposit", "c1", T0 - dt.timedelta(days=1))], "c2")  # a late upload
        with service.db.connection() as conn:
            assert service.journeys.report(conn, "j1", None, None).converted == 0  # neither came after the entry
        service.engine.handle([event("deposit", "c1", T0 + dt.timedelta(hours=1))], "c3")
        with service.db.connection() as conn:
            report = service.journeys.report(conn, "j1", None, None)
            converted = conn.execute(select(service.t["instance"].c.converted_at)).scalar_one()
        assert report.converted == 1 and converted == T0 + dt.timedelta(hours=1)


def test_a_goal_of_year_one_for_a_participant_entered_before_0_2_9_commits(tmp_path: Path, database_url: str) -> None:
    """A participant whose entry context has no ``event_at`` (entered before 0.2.9, or by a timer or a schedule)
    keeps the old rule, where the goal's attribution window is what reached before year 1."""
    with campaign_service(tmp_path, database_url) as service:
        add_template(service)
        run_journey(service, _signup_send_goal(86400))
        service.engine.handle([event("signup", "c1")], "c0")
        instance = service.t["instance"]
        with service.db.connection(write=True) as conn:
            context = conn.execute(select(instance.c.entry_event)).scalar_one()
            del context["event_at"]
            conn.execute(instance.update().values(entry_event=context))
        service.engine.handle([_at(event("deposit", "c1"), FIRST)], "c1")
        with service.db.connection() as conn:
            assert conn.execute(select(instance.c.converted_at)).scalar_one() == FIRST  # the rule before 0.2.9


def test_a_cron_field_of_other_digits_is_invalid_argument() -> None:
    from svc_campaign.cron import Cron
    from svc_common.errors import InvalidArgument

    with pytest.raises(InvalidArgument) as refused:
        Cron("³0 9 * * *")
    assert "minute '³0' is not in 0-59" in refused.value.message
    assert Cron("３0 9 * * *").minutes == [30]  # full-width decimal digits are digits


def test_a_consumer_catching_up_converts_a_goal_that_came_after_the_entry(tmp_path: Path) -> None:
    """Event times are compared with the entering event's time, not with the service's clock: a consumer an hour
    behind (stopped, then catching up) enters the customer an hour after the signup happened, and the deposit of ten
    minutes after the signup still converts."""
    graph = _signup_send_goal(86400)
    with campaign_service(tmp_path) as service:
        add_template(service)
        run_journey(service, graph)
        service.clock.advance(hours=1)  # the consumer is an hour behind the log
        signup, deposit = event("signup", "c1"), event("deposit", "c1", T0 + dt.timedelta(minutes=10))
        service.engine.handle([signup], "c0")
        service.engine.handle([deposit], "c1")
        with service.db.connection() as conn:
            converted = conn.execute(select(service.t["instance"].c.converted_at)).scalar_one()
        assert converted == T0 + dt.timedelta(minutes=10)


def test_a_goal_from_before_the_entry_converts_no_one_who_left(tmp_path: Path) -> None:
    graph = _signup_send_goal(3600)
    with campaign_service(tmp_path) as service:
        add_template(service)
        run_journey(service, graph)
        service.engine.handle([event("signup", "c1")], "c0")
        service.clock.advance(hours=2)
        service.engine.fire_due_timers()  # the goal window ends: c1 leaves, unconverted
        service.engine.handle([event("deposit", "c1", T0 - dt.timedelta(days=1))], "c1")  # before the signup
        with service.db.connection() as conn:
            assert conn.execute(select(service.t["instance"].c.converted_at)).scalar_one() is None
        late = T0 + dt.timedelta(minutes=30)  # within the window after the send, uploaded late
        service.engine.handle([event("deposit", "c1", late)], "c2")
        with service.db.connection() as conn:
            assert conn.execute(select(service.t["instance"].c.converted_at)).scalar_one() == late


def test_a_template_holding_a_nul_is_refused_naming_the_field(tmp_path: Path) -> None:
    from svc_common.errors import InvalidArgument

    with campaign_service(tmp_path) as service:
        for field in ("body", "title", "link"):
            texts = {"body": "新基金开售", field: "新基金\x00开售"}
            with pytest.raises(InvalidArgument) as refused:
                add_template(service, template_id=f"t_{field}", **texts)
            assert refused.value.violations[0].field == f"template.{field}" and "NUL" in refused.value.message


def test_a_sequence_started_by_0_2_8_at_the_calendars_end_starts_over() -> None:
    """0.2.8 kept a sequence's start from an event of 9999-12-31 (no timer until the prefix is complete); the next
    step overflowed the calendar at every retry. It now starts the sequence over at that step."""
    from svc_campaign.triggers import compile_trigger

    steps = [pb.SingleEventTrigger(event_type=t) for t in ("a", "b", "c")]
    trigger = compile_trigger(
        pb.Trigger(sequence=pb.SequenceTrigger(steps=steps, within_seconds=600, last_step_absent=True))
    )
    kept = {"step": 1, "started": float(MAX_SECONDS)}
    assert trigger.on_event(kept, event("b", "u")).state == {}  # not a first step: nothing begun
    begun = trigger.on_event(kept, event("a", "u"))
    assert begun.state == {"step": 1, "started": T0.timestamp()}
    armed = trigger.on_event(begun.state, event("b", "u", T0 + dt.timedelta(seconds=60)))
    assert [(name, due) for name, due, _ in armed.arm] == [("sequence", T0 + dt.timedelta(seconds=600))]


def test_durations_past_the_calendar_are_due_never_instead_of_failing(tmp_path: Path, database_url: str) -> None:
    """Any int64 of seconds is a valid timeout or window: one past the calendar overflowed every batch that used it."""
    from svc_campaign.clock import LATEST

    absence = pb.AbsenceTrigger(
        start=pb.SingleEventTrigger(event_type="product_view"),
        expected=pb.SingleEventTrigger(event_type="fund_subscribe"),
        timeout_seconds=3 * 10**11,
    )
    variants = [pb.Variant(key="a", weight_bps=5000, is_control=True), pb.Variant(key="b", weight_bps=5000)]
    experiment = pb.Experiment(
        name="x", variants=variants, goal_event_type="fund_purchase", attribution_window_seconds=10**15
    )
    with campaign_service(tmp_path, database_url) as service:
        add_template(service)
        run_journey(service, simple_graph(pb.Trigger(absence=absence)), "j_abs")
        with service.db.connection(write=True) as conn:
            service.experiments.create(conn, experiment, service.clock.now())
        service.engine.handle([event("product_view", "u1")], "c1")
        service.engine.handle([event("fund_purchase", "u1", value_fen=5)], "c2")
        with service.db.connection() as conn:
            assert conn.execute(select(service.t["timer"].c.due_at)).scalar_one() == LATEST


def test_durations_past_the_calendar_in_a_policy_a_cooldown_and_an_outcome_do_not_fail(tmp_path: Path) -> None:
    """The review of 53632f8: a dedupe window, a negative re-entry cooldown and RecordOutcome's attribution window,
    each an int64 the service accepts, still overflowed the calendar."""
    from svc_campaign.policy import default_policy

    variants = [pb.Variant(key="a", weight_bps=5000, is_control=True), pb.Variant(key="b", weight_bps=5000)]
    experiment = pb.Experiment(
        name="x", variants=variants, goal_event_type="fund_purchase", attribution_window_seconds=10**15
    )
    rules = pb.EntryRules(allow_reentry=True, reentry_cooldown_seconds=-(2**63))
    with campaign_service(tmp_path) as service:
        policy = default_policy()
        policy.dedupe_window_seconds = 10**11
        service.update_policy(policy, 0)
        add_template(service)
        run_journey(service, simple_graph(on_event("signup")), rules=rules)
        assert service.engine.handle([event("signup", "c1")], "c0").messages == 1
        assert service.engine.handle([event("signup", "c1", T0 + dt.timedelta(minutes=1))], "c1").entered == 1
        with service.db.connection(write=True) as conn:
            created = service.experiments.create(conn, experiment, T0)
            service.experiments.assign(conn, created, "c9", T0, expose=True)
            service.experiments.record(conn, created.experiment_id, "c9", "conversion", T0 + dt.timedelta(days=1))


def test_a_late_upload_does_not_reset_a_sequence_in_progress() -> None:
    """Only a start after the event at hand was even received is impossible (0.2.8's, from 9999-12-31); a step
    uploaded late, stamped before the sequence began, goes on with it as before 0.2.9 (the review of 47fa5b3: a first
    fix started the sequence over, losing the step already taken)."""
    from svc_campaign.triggers import compile_trigger

    steps = [pb.SingleEventTrigger(event_type=t) for t in ("a", "b", "c")]
    trigger = compile_trigger(pb.Trigger(sequence=pb.SequenceTrigger(steps=steps, within_seconds=600)))
    begun = trigger.on_event({}, event("a", "u"))
    late = event("b", "u", T0 - dt.timedelta(hours=1))
    late.received_at.FromDatetime(T0 + dt.timedelta(seconds=30))
    assert trigger.on_event(begun.state, late).state == {"step": 2, "started": T0.timestamp()}
