"""The gRPC channel-gateway adapter against a real stand-in ChannelGatewayService over gRPC that fails, hangs and
then succeeds: every attempt carries the message's idempotency key and a deadline, UNAVAILABLE /
DEADLINE_EXCEEDED / RESOURCE_EXHAUSTED are retried with backoff, INVALID_ARGUMENT fails at once; from the
gateway's point of view each message is sent exactly once, and none is lost. Channels are routed per
configuration (gRPC or webhook)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import grpc
import pytest
from campaign_helpers import PUSH, SMS, Gateway, InProcessServer, add_template, campaign_service, status
from conftest import free_port

from svc_campaign.config import CampaignSettings
from svc_campaign.delivery import WebhookAdapter
from svc_campaign.gateway_grpc import ChannelRouter, GrpcGatewayAdapter, build_adapter
from svc_common.config import load_settings
from svc_common.errors import ConfigError
from svc_common.pb.qiming.campaign.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import types_pb2

DEADLINE = 1.0


class StandInGateway(gateway_pb2_grpc.ChannelGatewayServiceServicer):
    """Answers from a script ("unavailable", "exhausted", "hang", "invalid", "refuse"; then "ok"). A "hang" takes
    the message (sends it to the customer) and then answers too late; a repeated key is not sent again."""

    def __init__(self) -> None:
        self.script: list[str] = []
        self.requests: list[gateway_pb2.DeliverRequest] = []
        self.sent: dict[str, str] = {}  # idempotency key → provider id: what customers got
        self.sends = 0

    def _send(self, request: gateway_pb2.DeliverRequest) -> str:
        if request.idempotency_key not in self.sent:
            self.sends += 1
            self.sent[request.idempotency_key] = f"prov-{self.sends}"
        return self.sent[request.idempotency_key]

    async def Deliver(self, request, context):
        self.requests.append(request)
        step = self.script.pop(0) if self.script else "ok"
        if step == "unavailable":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "provider link down")
        if step == "exhausted":
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "rate limited")
        if step == "invalid":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "recipient has no phone on file")
        if step == "refuse":
            return gateway_pb2.DeliverResponse(accepted=False, reason="blacklisted number")
        provider_id = self._send(request)
        if step == "hang":
            await asyncio.sleep(DEADLINE * 2.5)
        return gateway_pb2.DeliverResponse(accepted=True, provider_message_id=provider_id)


@pytest.fixture
def stand_in() -> Iterator[tuple[str, StandInGateway]]:
    gateway = StandInGateway()
    server = InProcessServer(lambda s: gateway_pb2_grpc.add_ChannelGatewayServiceServicer_to_server(gateway, s))
    yield server.address, gateway
    server.close()


def user(value: str) -> types_pb2.UserRef:
    return types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=value)


def deliver(service) -> int:
    async def go() -> int:
        service.dispatcher.adapter = build_adapter(service.settings)  # on this loop
        try:
            return await service.dispatcher.run_once()
        finally:
            await service.dispatcher.adapter.close()

    return asyncio.run(go())


def provider_id(service, message_id: str) -> str:
    from sqlalchemy import select

    m = service.t["message"].c
    with service.db.connection() as conn:
        return conn.execute(select(m.gateway_message_id).where(m.message_id == message_id)).scalar_one()


def grpc_settings(address: str, **more) -> dict:
    return {
        "gateway_grpc_address": address,
        "gateway_timeout_seconds": DEADLINE,
        "gateway_grpc_initial_backoff_millis": 10,
        "delivery_initial_backoff_millis": 1000,
        **more,
    }


def test_fails_hangs_then_succeeds_and_is_sent_exactly_once(tmp_path, database_url, stand_in) -> None:
    address, gateway = stand_in
    with campaign_service(tmp_path, database_url, settings=grpc_settings(address)) as service:
        add_template(service, "t1", title="{{attribute.nickname|您好}}")
        sent = service.send_message(
            pb.SendMessageRequest(user=user("c1"), channel=SMS, template_id="t1", purpose="service")
        )
        # Round 1: unavailable, then the gateway takes it but answers after the deadline, then rate limited.
        gateway.script = ["unavailable", "hang", "exhausted"]
        assert deliver(service) == 1
        message = service.get_message(sent.message_id)
        assert (status(message), message.attempts) == ("QUEUED", 1)
        assert "RESOURCE_EXHAUSTED" in message.failure_reason
        assert deliver(service) == 0  # backing off in the outbox: not lost, not hammered
        service.clock.advance(seconds=1)
        assert deliver(service) == 1  # round 2: the gateway answers for the key it already took
        message = service.get_message(sent.message_id)
        assert (status(message), message.attempts, provider_id(service, sent.message_id)) == ("SENT", 2, "prov-1")
        assert gateway.sends == 1 and list(gateway.sent) == [sent.idempotency_key]
        assert [r.idempotency_key for r in gateway.requests] == [sent.idempotency_key] * 4
        assert [r.attempt for r in gateway.requests] == [1, 2, 3, 4]
        first = gateway.requests[0]
        assert (first.message_id, first.recipient.value, first.channel) == (sent.message_id, "c1", SMS)
        assert first.title == "您好" and first.body
        assert deliver(service) == 0


def test_invalid_argument_and_refusals_fail_at_once(tmp_path, stand_in) -> None:
    address, gateway = stand_in
    with campaign_service(tmp_path, settings=grpc_settings(address)) as service:
        add_template(service, "t1")
        add_template(service, "t2", body="第二条消息")
        first = service.send_message(
            pb.SendMessageRequest(user=user("c1"), channel=SMS, template_id="t1", purpose="service")
        )
        second = service.send_message(
            pb.SendMessageRequest(user=user("c2"), channel=SMS, template_id="t2", purpose="service")
        )
        gateway.script = ["invalid", "refuse"]
        assert deliver(service) == 2
        failed = [service.get_message(m.message_id) for m in (first, second)]
        assert [(status(m), m.attempts) for m in failed] == [("FAILED", 1)] * 2
        reasons = sorted(m.failure_reason for m in failed)
        assert "INVALID_ARGUMENT" in reasons[0] and "no phone" in reasons[0]
        assert "blacklisted" in reasons[1]
        assert len(gateway.requests) == 2 and gateway.sends == 0


def test_a_gateway_that_is_down_keeps_the_message_until_the_attempts_run_out(tmp_path) -> None:
    settings = grpc_settings(f"127.0.0.1:{free_port()}", delivery_max_attempts=2, gateway_grpc_attempts=2)
    with campaign_service(tmp_path, settings=settings) as service:
        add_template(service, "t1")
        sent = service.send_message(
            pb.SendMessageRequest(user=user("c1"), channel=SMS, template_id="t1", purpose="service")
        )
        deliver(service)
        assert status(service.get_message(sent.message_id)) == "QUEUED"
        service.clock.advance(minutes=5)
        deliver(service)
        failed = service.get_message(sent.message_id)
        assert (status(failed), failed.attempts) == ("FAILED", 2) and "UNAVAILABLE" in failed.failure_reason


def test_each_channel_goes_through_its_configured_gateway(tmp_path, stand_in) -> None:
    address, gateway = stand_in
    webhook = Gateway()
    try:
        settings = grpc_settings(address, gateway_url=webhook.url, grpc_channels=["sms"])
        with campaign_service(tmp_path, settings=settings) as service:
            router = build_adapter(service.settings)
            assert isinstance(router, ChannelRouter) and isinstance(router.default, WebhookAdapter)
            assert isinstance(router.routes[SMS], GrpcGatewayAdapter) and PUSH not in router.routes
            asyncio.run(router.close())
            add_template(service, "t1")
            add_template(service, "t2", body="另一条消息")
            by_sms = service.send_message(
                pb.SendMessageRequest(user=user("c1"), channel=SMS, template_id="t1", purpose="service")
            )
            by_push = service.send_message(
                pb.SendMessageRequest(user=user("c1"), channel=PUSH, template_id="t2", purpose="service")
            )
            assert deliver(service) == 2
            assert [r.message_id for r in gateway.requests] == [by_sms.message_id]
            assert [body["message_id"] for _, body in webhook.requests] == [by_push.message_id]
            assert {status(service.get_message(m.message_id)) for m in (by_sms, by_push)} == {"SENT"}
    finally:
        webhook.close()


def test_settings_name_known_channels() -> None:
    assert load_settings(CampaignSettings, grpc_channels=["sms", "APP_PUSH", "*"]).grpc_channels
    with pytest.raises(ConfigError, match="unknown channel 'fax'"):
        load_settings(CampaignSettings, grpc_channels=["fax"])
