"""The outbox and the HTTP webhook adapter against a real local HTTP server: idempotency keys, retry with
backoff on 5xx and lost connections, no retry on 4xx, quiet-hours messages held until morning, paused journeys
held, receipts moving a message forward, and $message_* events published to the log."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator

import pytest
from campaign_helpers import (
    PUSH,
    SMS,
    Gateway,
    add_template,
    campaign_service,
    deliver,
    event,
    messages,
    on_event,
    run_journey,
    running_gateway,
    simple_graph,
    status,
)
from conftest import free_port

from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import types_pb2


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    with running_gateway() as server:
        yield server


def user(value: str) -> types_pb2.UserRef:
    return types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=value)


def test_webhook_retries_5xx_with_backoff_and_the_same_idempotency_key(
    tmp_path, database_url, gateway: Gateway
) -> None:
    settings = {"gateway_url": gateway.url, "delivery_initial_backoff_millis": 1000}
    with campaign_service(tmp_path, database_url, settings=settings) as service:
        add_template(service, "t1", title="{{attribute.nickname|您好}}")
        sent = service.send_message(
            pb.SendMessageRequest(user=user("c1"), channel=PUSH, template_id="t1", is_marketing=True)
        )
        gateway.script = [503, 502]
        assert deliver(service) == 1
        assert status(service.get_message(sent.message_id)) == "QUEUED"
        assert deliver(service) == 0  # backing off
        service.clock.advance(seconds=1)
        deliver(service)
        service.clock.advance(seconds=2)
        deliver(service)
        message = service.get_message(sent.message_id)
        assert (status(message), message.attempts) == ("SENT", 3)
        keys = {key for key, _ in gateway.requests}
        assert keys == {sent.idempotency_key} and len(gateway.requests) == 3
        assert gateway.requests[0][1]["channel"] == "app_push" and gateway.requests[0][1]["title"] == "您好"
        assert deliver(service) == 0  # sent once


def test_4xx_fails_at_once_and_a_dead_gateway_fails_after_the_attempts(
    tmp_path, database_url, gateway: Gateway
) -> None:
    with campaign_service(
        tmp_path, database_url, settings={"gateway_url": gateway.url, "delivery_max_attempts": 2}
    ) as service:
        add_template(service, "t1")
        first = service.send_message(
            pb.SendMessageRequest(user=user("c1"), channel=PUSH, template_id="t1", purpose="service")
        )
        gateway.script = [400]
        deliver(service)
        failed = service.get_message(first.message_id)
        assert (status(failed), failed.attempts) == ("FAILED", 1) and "HTTP 400" in failed.failure_reason
    dead = f"http://127.0.0.1:{free_port()}/deliver"
    with campaign_service(
        tmp_path / "dead", database_url, settings={"gateway_url": dead, "delivery_max_attempts": 2}
    ) as service:
        add_template(service, "t2")
        second = service.send_message(
            pb.SendMessageRequest(user=user("c1"), channel=PUSH, template_id="t2", purpose="service")
        )
        deliver(service)
        service.clock.advance(minutes=10)
        deliver(service)
        failed = service.get_message(second.message_id)
        assert (status(failed), failed.attempts) == ("FAILED", 2) and "ConnectError" in failed.failure_reason


def test_quiet_hours_message_goes_in_the_morning_and_paused_journeys_hold(
    tmp_path, database_url, gateway: Gateway
) -> None:
    night = dt.datetime(2026, 11, 23, 14, 30, tzinfo=dt.UTC)  # 22:30 in Shanghai
    with campaign_service(tmp_path, database_url, settings={"gateway_url": gateway.url}) as service:
        add_template(service, "t1")
        service.clock.set(night)
        run_journey(service, simple_graph(on_event("signup"), channel=SMS))
        service.engine.handle([event("signup", "c1", night)])
        assert deliver(service) == 0 and status(messages(service)[0]) == "DEFERRED"
        service.clock.set(dt.datetime(2026, 11, 24, 0, 0, 1, tzinfo=dt.UTC))
        with service.db.connection(write=True) as conn:
            service.journeys.transition(conn, "j1", "pause", service.clock.now())
        service.engine.handle([])  # the engine re-reads the journeys
        assert deliver(service) == 0  # held while paused
        with service.db.connection(write=True) as conn:
            service.journeys.transition(conn, "j1", "start", service.clock.now())
        service.engine.handle([])
        assert deliver(service) == 1 and status(messages(service)[0]) == "SENT"


def test_receipts_move_forward_only_and_are_published_as_events(tmp_path, database_url, gateway: Gateway) -> None:
    class FakeCollect:
        def __init__(self) -> None:
            self.events: list = []

        async def publish(self, events):
            self.events.extend(events)
            return collect_pb2.IngestResponse(
                results=[
                    collect_pb2.EventResult(index=i, event_id=e.event_id, status=collect_pb2.EVENT_STATUS_ACCEPTED)
                    for i, e in enumerate(events)
                ]
            )

        async def close(self) -> None:
            pass

    collect = FakeCollect()
    with campaign_service(tmp_path, database_url, settings={"gateway_url": gateway.url}, collect=collect) as service:
        add_template(service, "t1")
        sent = service.send_message(
            pb.SendMessageRequest(user=user("c1"), channel=PUSH, template_id="t1", purpose="service")
        )
        deliver(service)
        receipt = pb.ReportDeliveryReceiptRequest(message_id=sent.message_id, status=pb.MESSAGE_STATUS_DELIVERED)
        assert status(service.report_receipt(receipt)) == "DELIVERED"
        clicked = pb.ReportDeliveryReceiptRequest(message_id=sent.message_id, status=pb.MESSAGE_STATUS_CLICKED)
        assert status(service.report_receipt(clicked)) == "CLICKED"
        assert status(service.report_receipt(receipt)) == "CLICKED"  # a late DELIVERED does not go back
        assert status(service.report_receipt(clicked)) == "CLICKED"  # idempotent
        assert asyncio.run(service.publisher.run_once()) == 3
        assert asyncio.run(service.publisher.run_once()) == 0
        kinds = [e.event_type for e in collect.events]
        assert kinds == ["$message_sent", "$message_delivered", "$message_clicked"]
        assert {e.properties["message_id"].string_value for e in collect.events} == {sent.message_id}
        assert all(e.user_id == "c1" for e in collect.events)
        again = service.send_message(
            pb.SendMessageRequest(
                user=user("c2"), channel=PUSH, template_id="t1", purpose="service", idempotency_key="crm-42"
            )
        )
        assert (
            service.send_message(
                pb.SendMessageRequest(
                    user=user("c2"), channel=PUSH, template_id="t1", purpose="service", idempotency_key="crm-42"
                )
            ).message_id
            == again.message_id
        )


def test_consent_withdrawn_while_a_message_waits_suppresses_it(tmp_path, database_url, gateway: Gateway) -> None:
    night = dt.datetime(2026, 11, 23, 14, 30, tzinfo=dt.UTC)  # 22:30 in Shanghai: SMS waits for the morning
    with campaign_service(tmp_path, database_url, settings={"gateway_url": gateway.url}) as service:
        add_template(service, "t1")
        service.clock.set(night)
        waiting = service.send_message(
            pb.SendMessageRequest(user=user("c1"), channel=SMS, template_id="t1", is_marketing=True)
        )
        notice = service.send_message(
            pb.SendMessageRequest(user=user("c1"), channel=PUSH, template_id="t1", purpose="service")
        )
        assert status(waiting) == "DEFERRED"
        service.set_consent(pb.Consent(user=user("c1"), channel=0, purpose="*", granted=False, source="app_settings"))
        service.clock.set(dt.datetime(2026, 11, 24, 0, 1, tzinfo=dt.UTC))
        deliver(service)
        withdrawn = service.get_message(waiting.message_id)
        assert (status(withdrawn), withdrawn.suppression_reason) == ("SUPPRESSED", "consent_withdrawn")
        assert status(service.get_message(notice.message_id)) == "SENT"  # a service notice still goes
        assert [body["message_id"] for _, body in gateway.requests] == [notice.message_id]
