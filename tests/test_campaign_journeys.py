"""Journeys as data: every validation problem names its node; published versions are immutable and customers in
flight stay on theirs; pause holds timers, stop exits everyone; entry rules; waits until a time of day; goals
convert and show in the report and the customer's path."""

from __future__ import annotations

import datetime as dt

import pytest
from campaign_helpers import PUSH, SMS, T0, add_template, campaign_service, event, messages, node, on_event, run_journey

from svc_common.errors import FailedPrecondition, InvalidArgument
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import types_pb2


def wait_then_send(template: str = "t1", seconds: int = 3600) -> pb.JourneyGraph:
    return pb.JourneyGraph(
        entry_node_id="start",
        nodes=[
            node("start", trigger=pb.TriggerNode(trigger=on_event("signup"), next_node_id="wait")),
            node("wait", wait=pb.WaitNode(duration_seconds=seconds, next_node_id="send")),
            node("send", send=pb.SendNode(channel=PUSH, template_id=template, next_node_id="goal", is_marketing=True)),
            node(
                "goal",
                goal=pb.GoalNode(event=pb.SingleEventTrigger(event_type="deposit"), attribution_window_seconds=86400),
            ),
        ],
    )


def problems(service, graph: pb.JourneyGraph) -> set[tuple[str, str]]:
    with service.db.connection() as conn:
        return {(p.node_id, p.code) for p in service.journeys.problems(conn, graph)}


def test_every_problem_names_its_node(tmp_path) -> None:
    with campaign_service(tmp_path) as service:
        add_template(service, "sms_only", channel=SMS)
        graph = pb.JourneyGraph(
            entry_node_id="start",
            nodes=[
                node("start", trigger=pb.TriggerNode(trigger=on_event("x"), next_node_id="a")),
                node("a", branch=pb.BranchNode(arms=[pb.BranchArm(next_node_id="b")], default_node_id="ghost")),
                node("b", send=pb.SendNode(channel=PUSH, template_id="sms_only", next_node_id="c")),
                node("c", split=pb.SplitNode(arms=[pb.SplitArm(variant="x", weight_bps=5000, next_node_id="a")])),
                node("d", wait=pb.WaitNode(next_node_id="b")),
                node("e", send=pb.SendNode(channel=PUSH, template_id="nope", next_node_id="")),
                node(
                    "f",
                    trigger=pb.TriggerNode(
                        trigger=pb.Trigger(scheduled=pb.ScheduledTrigger(segment_id="s", cron="61 * * * *")),
                        next_node_id="a",
                    ),
                ),
            ],
        )
        found = problems(service, graph)
        assert {
            ("a", "dangling_edge"),
            ("b", "template_channel_mismatch"),
            ("c", "invalid_split"),
            ("d", "invalid_wait"),
            ("d", "unreachable"),
            ("e", "unknown_template"),
            ("e", "missing_exit"),
            ("f", "extra_trigger"),
            ("f", "invalid_trigger"),
        } <= found, found
        assert (
            ("a", "cycle_without_wait") in found
            or ("b", "cycle_without_wait") in found
            or ("c", "cycle_without_wait") in found
        )
        assert problems(service, wait_then_send("sms_only")) == {("send", "template_channel_mismatch")}
        with service.db.connection(write=True) as conn:
            service.journeys.create(conn, pb.Journey(journey_id="bad", name="bad", draft=graph), T0)
            with pytest.raises(InvalidArgument, match="node 'a'") as info:
                service.journeys.publish(conn, "bad", 0, T0)
        assert info.value.metadata["node_id"] == "a" and {v.field for v in info.value.violations} >= {"draft.nodes[e]"}


def test_published_versions_are_immutable_and_customers_stay_on_theirs(tmp_path) -> None:
    with campaign_service(tmp_path) as service:
        add_template(service, "v1")
        add_template(service, "v2")
        run_journey(service, wait_then_send("v1"))
        service.engine.handle([event("signup", "c1")])
        with service.db.connection(write=True) as conn:
            service.journeys.update_draft(
                conn, pb.UpdateJourneyDraftRequest(journey_id="j1", draft=wait_then_send("v2")), T0
            )
            journey = service.journeys.publish(conn, "j1", 0, T0)
            assert journey.published_version == 2 and journey.state == pb.JOURNEY_STATE_RUNNING
            first = service.journeys.get(conn, "j1", 1)
            assert first.published.nodes[2].send.template_id == "v1"
        service.engine.handle([event("signup", "c2")])
        service.clock.advance(hours=1, seconds=1)
        service.engine.fire_due_timers()
        assert sorted((m.user.value, m.template_id) for m in messages(service)) == [("c1", "v1"), ("c2", "v2")]


def test_pause_holds_waiting_customers_and_stop_exits_everyone(tmp_path) -> None:
    with campaign_service(tmp_path) as service:
        add_template(service)
        run_journey(service, wait_then_send())
        service.engine.handle([event("signup", "c1"), event("signup", "c2")])
        with service.db.connection(write=True) as conn:
            service.journeys.transition(conn, "j1", "pause", service.clock.now())
            with pytest.raises(FailedPrecondition, match="PAUSED"):
                service.journeys.transition(conn, "j1", "pause", service.clock.now())
        service.engine.handle([event("signup", "c3")])  # no new entries while paused
        service.clock.advance(hours=2)
        assert service.engine.fire_due_timers().timers_fired == 2 and messages(service) == []  # re-armed, not lost
        with service.db.connection(write=True) as conn:
            service.journeys.transition(conn, "j1", "start", service.clock.now())
        service.clock.advance(minutes=2)
        service.engine.fire_due_timers()
        assert sorted(m.user.value for m in messages(service)) == ["c1", "c2"]
        with service.db.connection(write=True) as conn:
            service.journeys.transition(conn, "j1", "stop", service.clock.now(), "campaign over")
            report = service.journeys.report(conn, "j1", None, None)
            with pytest.raises(FailedPrecondition):
                service.journeys.transition(conn, "j1", "start", service.clock.now())
        assert report.in_progress == 0 and service.engine.pending_timers() == 0


def test_entry_rules_reentry_cooldown_and_daily_budget(tmp_path) -> None:
    graph = pb.JourneyGraph(
        entry_node_id="start",
        nodes=[
            node("start", trigger=pb.TriggerNode(trigger=on_event("login"), next_node_id="end")),
            node("end", exit=pb.ExitNode()),
        ],
    )
    rules = pb.EntryRules(allow_reentry=True, reentry_cooldown_seconds=3600, max_entries_per_day=3)
    with campaign_service(tmp_path) as service:
        run_journey(service, graph, rules=rules)
        assert service.engine.handle([event("login", "c1"), event("login", "c1")]).entered == 1
        service.clock.advance(minutes=61)
        assert service.engine.handle([event("login", "c1")]).entered == 1
        assert service.engine.handle([event("login", "c2"), event("login", "c3")]).entered == 1  # the day's budget of 3


def test_wait_until_time_of_day_and_goal_conversion_in_report_and_path(tmp_path) -> None:
    graph = pb.JourneyGraph(
        entry_node_id="start",
        nodes=[
            node("start", trigger=pb.TriggerNode(trigger=on_event("signup"), next_node_id="morning")),
            node("morning", wait=pb.WaitNode(until_time_of_day=pb.TimeOfDay(hour=9, minute=30), next_node_id="send")),
            node("send", send=pb.SendNode(channel=PUSH, template_id="t1", next_node_id="goal", is_marketing=True)),
            node(
                "goal",
                goal=pb.GoalNode(event=pb.SingleEventTrigger(event_type="deposit"), attribution_window_seconds=86400),
            ),
        ],
    )
    with campaign_service(tmp_path) as service:
        add_template(service)
        run_journey(service, graph)
        service.engine.handle([event("signup", "c1"), event("signup", "c2")])  # 10:00 Shanghai: next 09:30 is tomorrow
        service.clock.advance(hours=23, minutes=29)
        assert service.engine.fire_due_timers().timers_fired == 0
        service.clock.advance(minutes=1)
        assert service.engine.fire_due_timers().timers_fired == 2
        service.engine.handle([event("deposit", "c1", service.clock.now() + dt.timedelta(hours=2))])
        with service.db.connection() as conn:
            report = service.journeys.report(conn, "j1", None, None)
            path = service.journeys.progress(conn, "j1", "c1")
            waiting = service.journeys.progress(conn, "j1", "c2")
        nodes = {n.node_id: n for n in report.nodes}
        assert (report.entered, report.converted, report.in_progress) == (2, 1, 1)
        assert nodes["send"].sent == 2 and nodes["goal"].converted == 1 and nodes["goal"].waiting == 1
        assert [(v.node_id, v.outcome) for v in path.path] == [
            ("start", "entered"),
            ("morning", "waiting"),
            ("send", "sent"),
            ("goal", "waiting_for_goal"),
            ("goal", "converted"),
        ]
        assert path.current_node_id == "" and waiting.current_node_id == "goal" and waiting.HasField("next_action_at")


def test_report_counts_suppressions_by_reason_per_node(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        add_template(service)
        run_journey(service, wait_then_send(seconds=60))
        service.set_consent(
            pb.Consent(
                user=types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value="c2"),
                channel=0,
                purpose="*",
                granted=False,
            )
        )
        service.engine.handle([event("signup", f"c{n}") for n in range(1, 4)])
        service.clock.advance(minutes=2)
        service.engine.fire_due_timers()
        with service.db.connection() as conn:
            report = service.journeys.report(conn, "j1", None, None)
            progress = service.journeys.progress(conn, "j1", "c2")
        send = {n.node_id: n for n in report.nodes}["send"]
        assert (send.entered, send.sent, dict(send.suppressed_by_reason)) == (3, 2, {"no_consent": 1})
        assert ("send", "suppressed:no_consent") in [(v.node_id, v.outcome) for v in progress.path]
