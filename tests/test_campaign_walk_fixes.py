"""Defects found by the svc_campaign review (2026-12-05) in the journey walk, each fixed and kept fixed here:

- H1: the event that enters a customer does not also end the "wait until event" after it (nor convert them),
  and two sends of one participant at one node in one batch get distinct message ids (a collision made the
  batch fail for ever: the whole log stalled);
- H3 (PostgreSQL): an awaited event and the wait's timeout at the same moment take one exit, not both;
- M8 (PostgreSQL): StopJourney during an event batch leaves nothing of the stopped journey to send;
- M9: two random splits of one journey are independent coins;
- L1: a ``page_enter`` of the screen arms a dwell trigger, as documented.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa
from campaign_helpers import (
    EMAIL,
    PUSH,
    T0,
    add_template,
    campaign_service,
    event,
    messages,
    node,
    on_event,
    run_journey,
    simple_graph,
    statuses,
)

from svc_campaign.store._reports import ReportStore
from svc_campaign.triggers import DWELL_SCREEN_EVENTS
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb

DOCS = Path(__file__).resolve().parents[1] / "docs" / "campaign.md"


def visits(service) -> list[tuple[str, str]]:
    """(node, outcome) of every participant's path, in order of entry (an exit node's visit is the participant's
    ``exited_at`` since campaign_0008: the report store reads both)."""
    i, paths = service.t["instance"].c, ReportStore(service.t)
    with service.db.connection() as conn:
        ids = conn.execute(sa.select(i.instance_id).order_by(i.entered_at, i.instance_id)).scalars().all()
        return [(v.node_id, v.outcome) for instance_id in ids for v in paths.path(conn, instance_id)]


# -- L1: dwell on page_enter ----------------------------------------------------------------------------------


def test_a_page_enter_of_the_screen_arms_the_dwell_trigger(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        add_template(service)
        run_journey(service, simple_graph(pb.Trigger(dwell=pb.DwellTrigger(screen="fund_detail", timeout_seconds=60))))
        service.engine.handle([event("page_enter", "c1", screen="fund_detail")])
        service.clock.advance(seconds=61)
        service.engine.fire_due_timers()
        assert statuses(service, "c1") == [("QUEUED", "")]


def test_the_docs_name_every_event_that_arms_a_dwell() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert [name for name in DWELL_SCREEN_EVENTS if f"`{name}`" not in text] == []


# -- M9: splits ---------------------------------------------------------------------------------------------


def _two_splits() -> pb.JourneyGraph:
    def split(node_id: str, a: str, b: str, then: str) -> pb.JourneyNode:
        arms = [pb.SplitArm(variant=v, weight_bps=5000, next_node_id=then) for v in (a, b)]
        return node(node_id, split=pb.SplitNode(arms=arms))

    return pb.JourneyGraph(
        entry_node_id="start",
        nodes=[
            node("start", trigger=pb.TriggerNode(trigger=on_event("signup"), next_node_id="first")),
            split("first", "A", "B", "second"),
            split("second", "X", "Y", "end"),
            node("end", exit=pb.ExitNode(reason="done")),
        ],
    )


def test_two_splits_in_one_journey_are_independent(tmp_path) -> None:
    with campaign_service(tmp_path) as service:
        run_journey(service, _two_splits())
        service.engine.handle([event("signup", f"u{n}") for n in range(400)])
        v, i = service.t["visit"].c, service.t["instance"].c
        with service.db.connection() as conn:
            rows = conn.execute(
                sa.select(i.user_id, v.outcome)
                .join_from(service.t["visit"], service.t["instance"], v.instance_id == i.instance_id)
                .where(v.outcome.like("split:%"))
                .order_by(v.visit_id)
            ).all()
        arms: dict[str, str] = {}
        for user, outcome in rows:
            arms[user] = arms.get(user, "") + outcome.removeprefix("split:")
        pairs = Counter(arms.values())
        # Independent halves: each of the four pairs about a quarter of 400 (the same coin gave only AX and BY).
        assert sorted(pairs) == ["AX", "AY", "BX", "BY"] and min(pairs.values()) > 70, pairs


def test_a_customer_keeps_their_arm_of_a_split_across_versions(tmp_path) -> None:
    split = pb.SplitNode(arms=[pb.SplitArm(variant="A", weight_bps=5000), pb.SplitArm(variant="B", weight_bps=5000)])
    with campaign_service(tmp_path) as service, service.db.connection() as conn:
        arms = {
            version: [
                service.walker._split(
                    conn, {"journey_id": "j1", "version_no": version, "user_id": f"u{n}"}, "s", split, T0
                )
                for n in range(200)
            ]
            for version in (1, 2)
        }
    assert arms[1] == arms[2] and set(arms[1]) == {"A", "B"}


# -- H1: the entering event and the wait after it -------------------------------------------------------------


def _view_then_wait(*, loop: bool) -> pb.JourneyGraph:
    """fund_view → push → wait for the next fund_view (a day) → e-mail "welcome back" (``loop``: back to the push,
    the timeout to the e-mail)."""
    wait_for = pb.WaitForEvent(event=pb.SingleEventTrigger(event_type="fund_view"), timeout_seconds=86400)
    return pb.JourneyGraph(
        entry_node_id="start",
        nodes=[
            node("start", trigger=pb.TriggerNode(trigger=on_event("fund_view"), next_node_id="push")),
            node("push", send=pb.SendNode(channel=PUSH, template_id="t1", next_node_id="wait", is_marketing=True)),
            node(
                "wait",
                wait=pb.WaitNode(
                    until_event=wait_for,
                    next_node_id="push" if loop else "again",
                    timeout_node_id="again" if loop else "end",
                ),
            ),
            node("again", send=pb.SendNode(channel=EMAIL, template_id="t2", next_node_id="end", is_marketing=True)),
            node("end", exit=pb.ExitNode(reason="done")),
        ],
    )


def _two_templates(service) -> None:
    add_template(service, "t1", body="看看这只基金")
    add_template(service, "t2", body="欢迎回来")


def test_the_entry_event_does_not_also_end_the_wait_after_it(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        _two_templates(service)
        run_journey(service, _view_then_wait(loop=False))
        service.engine.handle([event("fund_view", "c1")])
        assert [m.node_id for m in messages(service, "c1")] == ["push"]
        assert visits(service) == [("start", "entered"), ("push", "sent"), ("wait", "waiting")]
        service.clock.advance(hours=1)
        service.engine.handle([event("fund_view", "c1", T0 + dt.timedelta(hours=1))])  # came back: the e-mail
        assert [m.node_id for m in messages(service, "c1")] == ["push", "again"]
        assert visits(service)[3:] == [("wait", "event"), ("again", "sent"), ("end", "exited")]


def test_a_loop_back_to_a_send_gives_each_send_its_own_message_id(tmp_path, database_url) -> None:
    """Two fund_views in one batch: the first enters (push, wait), the second ends the wait and loops back to the
    push; a third in the next batch at the same clock reading does it again. Each send is a message of its own
    (one id twice failed the batch, and the follower retried it for ever: the whole log stalled)."""
    with campaign_service(tmp_path, database_url) as service:
        _two_templates(service)
        run_journey(service, _view_then_wait(loop=True))
        service.engine.handle([event("fund_view", "c1"), event("fund_view", "c1")], "cursor-1")
        service.engine.handle([event("fund_view", "c1")], "cursor-2")
        assert service.engine.load_cursor() == "cursor-2"
        sent = messages(service, "c1")
        assert [m.node_id for m in sent] == ["push"] * 3 and len({m.message_id for m in sent}) == 3
        assert len({m.idempotency_key for m in sent}) == 3
        # The gate refuses the loop's later pushes (the same content again, one push a day): refused, not lost.
        assert sorted(status for status, _ in statuses(service, "c1")) == ["QUEUED", "SUPPRESSED", "SUPPRESSED"]


def _subscribe_then_goal() -> pb.JourneyGraph:
    goal = pb.GoalNode(event=pb.SingleEventTrigger(event_type="fund_subscribe"), attribution_window_seconds=86400)
    return pb.JourneyGraph(
        entry_node_id="start",
        nodes=[
            node("start", trigger=pb.TriggerNode(trigger=on_event("fund_subscribe"), next_node_id="push")),
            node("push", send=pb.SendNode(channel=PUSH, template_id="t1", next_node_id="goal", is_marketing=True)),
            node("goal", goal=goal),
        ],
    )


def test_the_entry_event_does_not_convert_the_customer_it_entered(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        add_template(service)
        run_journey(service, _subscribe_then_goal())
        service.engine.handle([event("fund_subscribe", "c1")])
        assert visits(service)[-1] == ("goal", "waiting_for_goal")
        service.clock.advance(hours=1)
        service.engine.handle([event("fund_subscribe", "c1", T0 + dt.timedelta(hours=1))])  # a second subscription
        assert visits(service)[-1] == ("goal", "converted")
        i = service.t["instance"].c
        with service.db.connection() as conn:
            row = conn.execute(sa.select(i.status, i.exit_reason, i.converted_at)).one()
        assert (row.status, row.exit_reason) == ("done", "converted")
        assert row.converted_at.replace(tzinfo=dt.UTC) == T0 + dt.timedelta(hours=1)


# -- H3, M8: transactions that meet on PostgreSQL ----------------------------------------------------------------


def _until_one_waits_for_a_lock(service, other: Future) -> None:
    """Return once a transaction of this database waits for a row lock (or ``other`` ended without waiting)."""
    deadline = time.monotonic() + 30
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    while not other.done():
        with service.db.connection() as conn:
            if conn.execute(query).scalar_one():
                return
        assert time.monotonic() < deadline, "nothing waited for a lock"
        time.sleep(0.005)


@contextlib.contextmanager
def _held(target: object, name: str) -> Iterator[tuple[threading.Event, threading.Event]]:
    """Hold every call of ``target.name`` until told: yields (reached, go)."""
    real, reached, go = getattr(target, name), threading.Event(), threading.Event()

    def held(*args, **kwargs):
        reached.set()
        assert go.wait(30)
        return real(*args, **kwargs)

    setattr(target, name, held)
    try:
        yield reached, go
    finally:
        go.set()
        setattr(target, name, real)


def _wait_for_deposit(*, goal: bool) -> pb.JourneyGraph:
    """signup → wait for a deposit (an hour; thanks, or a nudge at the timeout) → exit; ``goal``: signup → push →
    goal (a deposit within the hour)."""
    deposit = pb.SingleEventTrigger(event_type="deposit")
    start = node("start", trigger=pb.TriggerNode(trigger=on_event("signup"), next_node_id="push" if goal else "wait"))
    if goal:
        return pb.JourneyGraph(
            entry_node_id="start",
            nodes=[
                start,
                node(
                    "push", send=pb.SendNode(channel=PUSH, template_id="nudge", next_node_id="goal", is_marketing=True)
                ),
                node("goal", goal=pb.GoalNode(event=deposit, attribution_window_seconds=3600)),
            ],
        )
    wait = pb.WaitForEvent(event=deposit, timeout_seconds=3600)
    return pb.JourneyGraph(
        entry_node_id="start",
        nodes=[
            start,
            node("wait", wait=pb.WaitNode(until_event=wait, next_node_id="thanks", timeout_node_id="nudge")),
            node("thanks", send=pb.SendNode(channel=PUSH, template_id="thanks", next_node_id="end", is_marketing=True)),
            node("nudge", send=pb.SendNode(channel=EMAIL, template_id="nudge", next_node_id="end", is_marketing=True)),
            node("end", exit=pb.ExitNode(reason="done")),
        ],
    )


def _deposit_as_the_timer_fires(service) -> None:
    """The timer loop claims the due timer and is held there (its transaction open) while the deposit's batch
    runs; let go once that batch waits for the timer's row lock: an event and the timeout at the same moment."""
    service.clock.advance(seconds=3600)
    with _held(service.engine, "_fire") as (claimed, go), ThreadPoolExecutor(2) as pool:
        timers = pool.submit(service.engine.fire_due_timers)
        assert claimed.wait(30)
        batch = pool.submit(service.engine.handle, [event("deposit", "c1", service.clock.now())])
        _until_one_waits_for_a_lock(service, batch)
        go.set()
        assert timers.result(30).timers_fired == 1
        batch.result(30)


def test_an_event_and_the_timeout_of_its_wait_at_once_take_one_exit(tmp_path, database_url_postgresql) -> None:
    with campaign_service(tmp_path, database_url_postgresql) as service:
        add_template(service, "thanks")
        add_template(service, "nudge")
        run_journey(service, _wait_for_deposit(goal=False))
        service.engine.handle([event("signup", "c1")])
        _deposit_as_the_timer_fires(service)
        # The timer claimed the wait first: the timeout exit, and nothing of the event exit.
        assert [m.template_id for m in messages(service, "c1")] == ["nudge"]
        assert ("wait", "event") not in visits(service)


def test_a_goal_event_as_the_goal_window_ends_exits_once(tmp_path, database_url_postgresql) -> None:
    with campaign_service(tmp_path, database_url_postgresql) as service:
        add_template(service, "nudge")
        run_journey(service, _wait_for_deposit(goal=True))
        service.engine.handle([event("signup", "c1")])
        _deposit_as_the_timer_fires(service)
        i = service.t["instance"].c
        with service.db.connection() as conn:
            row = conn.execute(sa.select(i.status, i.exit_reason, i.converted_at)).one()
        # The window ended first (that exit stands); the deposit still counts: within the hour after the push.
        assert (row.status, row.exit_reason) == ("done", "goal_window_ended") and row.converted_at is not None
        assert [o for n, o in visits(service) if n == "goal"] == [
            "waiting_for_goal",
            "exited:goal_window_ended",
            "converted",
        ]


def test_stop_during_an_event_batch_leaves_nothing_to_send(tmp_path, database_url_postgresql) -> None:
    with campaign_service(tmp_path, database_url_postgresql) as service:
        add_template(service)
        run_journey(service, simple_graph(on_event("signup")))
        with _held(service.walker, "enter") as (entering, go), ThreadPoolExecutor(2) as pool:
            batch = pool.submit(service.engine.handle, [event("signup", "c1")])
            assert entering.wait(30)

            def stop() -> None:
                with service.db.connection(write=True) as conn:
                    service.journeys.transition(conn, "j1", "stop", service.clock.now())

            stopped = pool.submit(stop)
            _until_one_waits_for_a_lock(service, stopped)  # the stop waits for the batch (it ends without)
            go.set()
            batch.result(30)
            stopped.result(30)
        assert statuses(service, "c1") == [("SUPPRESSED", "journey_stopped")]


def test_a_journey_stopped_by_another_process_takes_no_entry_from_a_stale_cache(tmp_path, database_url) -> None:
    settings = {"journey_refresh_seconds": 3600}
    with campaign_service(tmp_path / "a", database_url, settings=settings) as service:
        add_template(service)
        run_journey(service, simple_graph(on_event("signup")))
        service.engine.handle([event("signup", "c1")])  # the journeys are cached for an hour
        assert statuses(service, "c1") == [("QUEUED", "")]
        with campaign_service(tmp_path / "b", database_url) as other, other.db.connection(write=True) as conn:
            other.journeys.transition(conn, "j1", "stop", other.clock.now())
        service.engine.handle([event("signup", "c2")])
        assert statuses(service, "c2") == []
