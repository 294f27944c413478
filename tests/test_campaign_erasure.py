"""A customer erased while waiting in a journey (issue 6, bad input): on ``$profile_erased`` they leave every
journey, their timers and trigger state go, unsent messages are suppressed and every message's text is blanked;
nothing is sent to them afterwards, and other customers are untouched."""

from __future__ import annotations

import datetime as dt

from campaign_helpers import (
    SMS,
    add_template,
    campaign_service,
    event,
    messages,
    on_event,
    run_journey,
    simple_graph,
    wait_then_send,
)
from sqlalchemy import select

from svc_campaign.erasure import ERASED
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb


def three_views() -> pb.Trigger:
    return pb.Trigger(repeated_event=pb.RepeatedEventTrigger(event_type="fund_view", count=3, window_seconds=600))


def test_an_erased_customer_leaves_every_journey_and_gets_nothing_more(tmp_path, database_url) -> None:
    night = dt.datetime(2026, 11, 23, 14, 30, tzinfo=dt.UTC)  # 22:30 in Shanghai: an SMS waits for 08:00
    with campaign_service(tmp_path, database_url) as service:
        add_template(service, "t1")
        add_template(service, "sms", channel=SMS)
        service.clock.set(night)
        run_journey(service, wait_then_send(), "waiting")
        run_journey(service, simple_graph(on_event("deposit_attempt"), "sms", channel=SMS), "night_sms")
        run_journey(service, simple_graph(three_views()), "fund_interest")
        service.engine.handle(
            [
                event("signup", "c1", night),
                event("signup", "c2", night),
                event("deposit_attempt", "c1", night),
                event("fund_view", "c1", night),
                event("fund_view", "c1", night),
            ]
        )
        assert [(m.user.value, m.status) for m in messages(service)] == [("c1", pb.MESSAGE_STATUS_DEFERRED)]
        assert service.engine.pending_timers() >= 2

        service.engine.handle([event(ERASED, "c1", night)])

        deferred = messages(service, "c1")
        assert [(m.status, m.suppression_reason) for m in deferred] == [
            (pb.MESSAGE_STATUS_SUPPRESSED, "customer_erased")
        ]
        assert deferred[0].body == "" and deferred[0].title == ""
        service.engine.handle([event("fund_view", "c1", night)])  # a third view: the old two are gone with the state
        service.clock.set(night + dt.timedelta(hours=12))  # 10:30 the next morning
        service.engine.fire_due_timers()
        assert [(m.user.value, m.template_id) for m in messages(service) if m.status == pb.MESSAGE_STATUS_QUEUED] == [
            ("c2", "t1")
        ]
        with service.db.connection() as conn:
            report = service.journeys.report(conn, "waiting", None, None)
            i = service.t["instance"].c
            exits = conn.execute(
                select(i.journey_id, i.exit_reason).where(i.user_id == "c1").order_by(i.journey_id)
            ).all()
        # the SMS journey had ended at its send (the message waited in the outbox); the wait was cut short
        assert [tuple(r) for r in exits] == [("night_sms", "done"), ("waiting", "customer_erased")]
        assert report.in_progress == 0 and service.engine.pending_timers() == 0
