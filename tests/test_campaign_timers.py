"""Due timers fired in batches (issue 6, 100,000 customers waiting on timers): a batch claims its participants'
timers in one statement and writes their participants' changes together, yet every send still passes the policy
gate with the sends earlier in the same batch counted; a participant who left the journey gets nothing; the bulk
claim gives what claiming one timer at a time gives; and a process killed (SIGKILL) in the middle of draining
fires every timer once after its restart, never twice."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from campaign_helpers import (
    PUSH,
    T0,
    add_template,
    campaign_service,
    event,
    messages,
    node,
    on_event,
    run_journey,
    statuses,
    wait_then_send,
)
from collect_helpers import KEYRING

from svc_campaign.clock import ManualClock
from svc_campaign.erasure import ERASED
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import event_pb2
from svc_common.process import ServerProcess


def _two_journeys_one_customer(service) -> None:
    """c1 waits in two journeys (a push each, due at the same moment), c2 and c3 in one."""
    add_template(service, "t1")
    add_template(service, "t2")
    run_journey(service, wait_then_send(3600, "t1"), "j1")
    run_journey(service, wait_then_send(3600, "t2", entry_event="deposit"), "j2")
    service.engine.handle([event("signup", "c1"), event("deposit", "c1"), event("signup", "c2"), event("signup", "c3")])
    assert service.engine.pending_timers() == 4


def test_a_batch_counts_its_own_earlier_sends_against_the_caps(tmp_path, database_url) -> None:
    # The default policy allows one push a day per customer: c1's two timers come due in the same batch.
    with campaign_service(tmp_path, database_url) as service:
        _two_journeys_one_customer(service)
        service.clock.advance(hours=1)
        fired = service.engine.fire_due_timers()
        assert (fired.timers_fired, fired.messages) == (4, 3)
        assert sorted(statuses(service, "c1")) == [("QUEUED", ""), ("SUPPRESSED", "channel_cap")]
        assert statuses(service, "c2") == statuses(service, "c3") == [("QUEUED", "")]
        assert service.engine.pending_timers() == 0 and service.engine.fire_due_timers().timers_fired == 0
        with service.db.connection() as conn:
            i = service.t["instance"].c
            rows = conn.execute(select_participants(i)).all()
        assert [tuple(r) for r in rows] == [
            ("c1", "j1", "done", "end", None),
            ("c1", "j2", "done", "end", None),
            ("c2", "j1", "done", "end", None),
            ("c3", "j1", "done", "end", None),
        ]


def select_participants(i):
    return sa.select(i.user_id, i.journey_id, i.status, i.current_node, i.next_action_at).order_by(
        i.user_id, i.journey_id
    )


def test_the_bulk_claim_gives_what_one_delete_per_timer_gives(tmp_path) -> None:
    """Same journeys, same customers, the timers fired in batches of 3: once claimed in one statement per batch,
    once one DELETE at a time (the path of databases without DELETE ... RETURNING)."""
    outcomes = []
    for bulk in (True, False):
        with campaign_service(tmp_path / str(bulk), settings={"timer_batch_size": 3}) as service:
            service.engine.bulk_claim = bulk
            _two_journeys_one_customer(service)
            service.clock.advance(hours=1)
            assert [service.engine.fire_due_timers().timers_fired for _ in range(3)] == [3, 1, 0]
            with service.db.connection() as conn:
                i, v = service.t["instance"].c, service.t["visit"].c
                participants = [tuple(r) for r in conn.execute(select_participants(i))]
                visits = sorted(
                    tuple(r)
                    for r in conn.execute(
                        sa.select(i.user_id, i.journey_id, v.node_id, v.outcome).join_from(
                            service.t["visit"], service.t["instance"], v.instance_id == i.instance_id
                        )
                    )
                )
            outcomes.append((participants, visits, sorted(statuses(service, "c2") + statuses(service, "c3"))))
            assert sorted(statuses(service, "c1")) == [("QUEUED", ""), ("SUPPRESSED", "channel_cap")]
    assert outcomes[0] == outcomes[1]


def test_a_customer_who_left_the_journey_gets_nothing_when_the_timer_comes_due(tmp_path, database_url) -> None:
    # signup -> wait 1 h -> push -> goal (a deposit converts, also while waiting)
    graph = pb.JourneyGraph(
        entry_node_id="start",
        nodes=[
            node("start", trigger=pb.TriggerNode(trigger=on_event("signup"), next_node_id="wait")),
            node("wait", wait=pb.WaitNode(duration_seconds=3600, next_node_id="send")),
            node("send", send=pb.SendNode(channel=PUSH, template_id="t1", next_node_id="goal", is_marketing=True)),
            node(
                "goal",
                goal=pb.GoalNode(event=pb.SingleEventTrigger(event_type="deposit"), attribution_window_seconds=86400),
            ),
        ],
    )
    with campaign_service(tmp_path, database_url) as service:
        add_template(service, "t1")
        add_template(service, "t2")
        run_journey(service, graph, "j1")
        run_journey(service, wait_then_send(3600, "t2", entry_event="apply"), "j2")
        stays, erased, converted, stale, stopped = "a", "b", "c", "d", "e"
        service.engine.handle(
            [event("signup", u) for u in (stays, erased, converted, stale)] + [event("apply", stopped)]
        )
        assert service.engine.pending_timers() == 5
        service.engine.handle([event(ERASED, erased), event("deposit", converted, T0 + dt.timedelta(minutes=5))])
        with service.db.connection(write=True) as conn:
            service.engine.stop_journey(conn, "j2", "campaign over", service.clock.now())
            # A participant that ended while its timer row stayed (as a crash between two writers could leave it).
            i = service.t["instance"]
            conn.execute(sa.update(i).where(i.c.user_id == stale).values(status="done", exit_reason="test"))
        assert service.engine.pending_timers() == 2  # the erased, converted and stopped customers' timers went
        service.clock.advance(hours=1)
        assert service.engine.fire_due_timers().timers_fired == 2
        assert [(m.user.value, m.status) for m in messages(service)] == [(stays, pb.MESSAGE_STATUS_QUEUED)]
        with service.db.connection() as conn:
            i = service.t["instance"].c
            ended = dict(conn.execute(sa.select(i.user_id, i.exit_reason).where(i.status == "done")).all())
            waiting = conn.execute(sa.select(i.user_id, i.current_node).where(i.status == "waiting")).all()
        assert ended == {erased: "customer_erased", converted: "converted", stale: "test", stopped: ended[stopped]}
        assert ended[stopped].startswith("stopped:")
        assert [tuple(r) for r in waiting] == [(stays, "goal")]
        assert service.engine.pending_timers() == 1  # the attribution window of the one who got the push


CUSTOMERS = 3000


def _count(url: str) -> tuple[int, int, int]:
    """Pending timers, messages, customers with a message (read with a connection of the test's own)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            timers = conn.execute(sa.text("select count(*) from campaign_timer")).scalar_one()
            sent = conn.execute(sa.text("select count(*), count(distinct user_id) from campaign_message")).one()
    finally:
        engine.dispose()
    return timers, sent[0], sent[1]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_killed_while_draining_a_wave_of_timers_fires_each_once(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("database_url_postgresql") if backend == "postgresql" else None
    work = tmp_path / "campaign"
    # Customers entered an hour ago (the engine in-process, as the service would have): all due at once now.
    clock = ManualClock(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    with campaign_service(work / "data", url, clock=clock) as service:
        add_template(service, "t1", body="新基金开售，点击查看")
        run_journey(service, wait_then_send(3600))
        for start in range(0, CUSTOMERS, 500):
            batch = []
            for n in range(start, start + 500):
                one = event_pb2.Event(event_id=str(uuid.uuid4()), event_type="signup", user_id=f"w{n:05d}")
                one.occurred_at.FromDatetime(clock.now())
                batch.append(one)
            service.engine.handle(batch)
        url = url or str(service.db.engine.url)
    env = {
        "QIMING_CAMPAIGN_TIMER_BATCH_SIZE": "100",
        "QIMING_CAMPAIGN_TIMER_POLL_MILLIS": "50",
        "QIMING_CAMPAIGN_KEYRING_JSON": KEYRING,  # the keyring the in-process service above used
    }
    if backend == "postgresql":
        env["QIMING_CAMPAIGN_DATABASE_URL"] = url
    campaign = ServerProcess("campaign", work_dir=work, env=env).start()
    try:
        deadline = time.monotonic() + 60
        while _count(url)[0] == CUSTOMERS:
            assert time.monotonic() < deadline, "no timer fired"
            time.sleep(0.01)
        campaign.kill()  # SIGKILL while it drains: a batch is in flight
        left, sent, customers = _count(url)
        assert 0 < left < CUSTOMERS and sent == customers == CUSTOMERS - left  # whole batches only
        campaign.start()
        deadline = time.monotonic() + 120
        while _count(url)[0]:
            assert time.monotonic() < deadline, "timers left after the restart"
            time.sleep(0.1)
        assert _count(url) == (0, CUSTOMERS, CUSTOMERS)  # one message each: none lost, none twice
    finally:
        campaign.kill()


def test_a_change_held_for_the_batch_write_is_seen_by_a_later_entry_in_the_same_batch(tmp_path, database_url) -> None:
    """Participant changes wait to be written with the batch; an entry rule that reads the participations later in
    the same transaction must see them (c1 finishes and, re-entry allowed, enters again in one batch of events)."""
    graph = pb.JourneyGraph(
        entry_node_id="start",
        nodes=[
            node("start", trigger=pb.TriggerNode(trigger=on_event("signup"), next_node_id="wait")),
            node(
                "wait",
                wait=pb.WaitNode(
                    until_event=pb.WaitForEvent(event=pb.SingleEventTrigger(event_type="deposit"), timeout_seconds=600),
                    next_node_id="end",
                    timeout_node_id="end",
                ),
            ),
            node("end", exit=pb.ExitNode(reason="deposited")),
        ],
    )
    with campaign_service(tmp_path, database_url) as service:
        run_journey(service, graph, rules=pb.EntryRules(allow_reentry=True))
        service.engine.handle(
            [event("signup", "c1"), event("signup", "c2"), event("deposit", "c1"), event("signup", "c1")]
        )
        with service.db.connection() as conn:
            i = service.t["instance"].c
            rows = conn.execute(sa.select(i.user_id, i.status, i.exit_reason).order_by(i.user_id, i.entered_at)).all()
        assert sorted(tuple(r) for r in rows) == [
            ("c1", "done", "deposited"),
            ("c1", "waiting", ""),
            ("c2", "waiting", ""),
        ]
        service.clock.advance(minutes=11)
        assert service.engine.fire_due_timers().timers_fired == 2
        with service.db.connection() as conn:
            statuses_now = conn.execute(sa.select(i.status, sa.func.count()).group_by(i.status)).all()
        assert dict(statuses_now) == {"done": 3}
