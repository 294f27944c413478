"""A second review (2026-12-05) of the day's svc_campaign fixes found three more holes, each pinned here by a test
that fails without its fix: a preemption racing a delivery round, an erasure racing a scheduled run's entering
batch, and the suppression list keeping the time an erasure was read instead of the time it happened."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from campaign_helpers import T0, add_template, campaign_service, event, messages, on_event, run_journey, simple_graph
from campaign_helpers import status as status_of
from test_campaign_delivery_fixes import ScriptedGateway, dispatch
from test_campaign_review_fixes import _Members

import svc_campaign.sending as sending
from svc_campaign.delivery import Outcome
from svc_campaign.erasure import ERASED
from svc_campaign.journey_walk import Walker
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb


def _final(service) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    return sorted((m.template_id, status_of(m), m.suppression_reason) for m in messages(service, "c1"))


def test_a_preempted_message_claimed_by_a_delivery_round_meanwhile_keeps_the_cap(
    tmp_path, database_url_postgresql, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate picks "low" (unsent, not leased when it read it) to make room for "high"; a delivery round in
    another transaction claims "low" before the batch suppresses it. "high" must then wait out the cap: one push a
    day, and "low" is at the gateway."""
    with campaign_service(tmp_path, database_url_postgresql, adapter=ScriptedGateway()) as service:
        add_template(service, "low")
        add_template(service, "high")
        run_journey(service, simple_graph(on_event("signup"), "low"), "low", priority=1)
        run_journey(service, simple_graph(on_event("deposit"), "high"), "high", priority=9)
        service.engine.handle([event("signup", "c1")])
        original, claimed = sending.insert_message, []

        def racing(conn, tables, row, preempt, now=None):  # type: ignore[no-untyped-def]
            if preempt and not claimed:
                other = threading.Thread(target=lambda: claimed.append(service.dispatcher.claim()))
                other.start()
                other.join()
            return original(conn, tables, row, preempt, now)

        monkeypatch.setattr(sending, "insert_message", racing)
        service.engine.handle([event("deposit", "c1")])
        assert [r["template_id"] for r in claimed[0]] == ["low"]
        service.dispatcher.record(claimed[0][0], Outcome(True, gateway_message_id="gw"))
        service.clock.advance(seconds=1)
        dispatch(service, ScriptedGateway())
        assert _final(service) == [("high", "SUPPRESSED", "channel_cap"), ("low", "SENT", "preempted_by_priority")]


def test_an_erasure_committed_while_a_scheduled_batch_enters_keeps_the_customer_out(
    tmp_path, database_url_postgresql, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = _Members([("p1", "c1"), ("p2", "c2")])
    with campaign_service(tmp_path, database_url_postgresql, members=members) as service:
        add_template(service, "t1", body="新基金开售")
        run_journey(service, simple_graph(pb.Trigger(scheduled=pb.ScheduledTrigger(segment_id="s1"))))
        service.scheduler.run_once()  # planned and exported
        original, done = Walker.prefetch, []

        def racing(self, conn, users, now, **kw):  # type: ignore[no-untyped-def]
            if not done and threading.current_thread() is threading.main_thread():
                # The member page is read; the erasure of c1 commits in the follower's transaction meanwhile.
                other = threading.Thread(target=lambda: done.append(service.engine.handle([event(ERASED, "c1")])))
                other.start()
                other.join(timeout=20)
            return original(self, conn, users, now, **kw)

        monkeypatch.setattr(Walker, "prefetch", racing)
        for _ in range(3):
            service.scheduler.run_once()
        assert done
        assert messages(service, "c1") == [] and [status_of(m) for m in messages(service, "c2")] == ["QUEUED"]


def test_the_suppression_list_keeps_when_the_erasure_happened_not_when_it_was_read(tmp_path, database_url) -> None:
    """The follower reads the erasure an hour late; the customer re-opened an account 30 minutes after it: that
    signup is a new relationship and enters, while an event from before the erasure still does not."""
    with campaign_service(tmp_path, database_url) as service:
        add_template(service, "t1")
        run_journey(service, simple_graph(on_event("signup")))
        service.clock.advance(hours=1)
        service.engine.handle([event(ERASED, "c1", at=T0)])
        service.engine.handle([event("signup", "c1", at=T0 - dt.timedelta(minutes=1))])
        assert messages(service, "c1") == []
        service.engine.handle([event("signup", "c1", at=T0 + dt.timedelta(minutes=30))])
        assert [status_of(m) for m in messages(service, "c1")] == ["QUEUED"]
        service.engine.handle([event(ERASED, "c1", at=T0 - dt.timedelta(days=1))])  # an older erasure replayed
        with service.db.connection() as conn:
            kept = conn.execute(sa.select(service.t["erased"].c.erased_at)).scalars().all()
        assert kept == [T0]  # the later erasure stays the one events are judged against
