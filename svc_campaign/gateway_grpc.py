"""The gRPC channel-gateway adapter: ``qiming.campaign.gateway.v1.ChannelGatewayService.Deliver`` on the broker's
gateway, and the router that sends each channel through its adapter (webhook or gRPC).

Every attempt carries the message's idempotency key (the gateway sends a key once) and a deadline
(``gateway_timeout_seconds``). UNAVAILABLE, DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED are retried in the call
with an exponential backoff with jitter (``gateway_grpc_attempts`` tries); if they all fail the message goes back
to the outbox for the dispatcher's longer backoff (never lost). INVALID_ARGUMENT or ``accepted = false`` fails
the message at once; ALREADY_EXISTS is taken as "this key was already accepted". Other codes are retried by the
dispatcher. Receipts come back through ``DeliveryService.ReportDeliveryReceipt`` as for the webhook.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from typing import Any

import grpc
from grpc import aio

from svc_campaign.config import CampaignSettings
from svc_campaign.delivery import ChannelAdapter, Outcome, WebhookAdapter
from svc_common.pb.qiming.campaign.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import types_pb2

log = logging.getLogger("qiming.campaign.gateway")
TRANSIENT = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)


def deliver_request(message: Mapping[str, Any], attempt: int) -> gateway_pb2.DeliverRequest:
    request = gateway_pb2.DeliverRequest(
        message_id=message["message_id"],
        idempotency_key=message["idempotency_key"],
        channel=message["channel"],
        recipient=types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=message["user_id"]),
        title=message["title"],
        body=message["body"],
        link=message["link"],
        template_id=message["template_id"],
        journey_id=message["journey_id"],
        experiment_id=message["experiment_id"],
        variant=message["variant"],
        is_marketing=message["is_marketing"],
        attempt=attempt,
    )
    if message.get("created_at") is not None:
        request.created_at.FromDatetime(message["created_at"])
    return request


class GrpcGatewayAdapter:
    def __init__(
        self,
        address: str,
        *,
        timeout_seconds: float = 5.0,
        attempts: int = 3,
        initial_backoff_seconds: float = 0.1,
        max_backoff_seconds: float = 2.0,
    ) -> None:
        self.address = address
        self._timeout = timeout_seconds
        self._attempts = attempts
        self._initial = initial_backoff_seconds
        self._max = max_backoff_seconds
        self._channel: aio.Channel | None = None
        self._stub: gateway_pb2_grpc.ChannelGatewayServiceStub | None = None

    def _connect(self) -> gateway_pb2_grpc.ChannelGatewayServiceStub:
        # Made on first use, on the dispatcher's event loop (an aio channel belongs to the loop it was made on).
        if self._stub is None:
            self._channel = aio.insecure_channel(self.address)
            self._stub = gateway_pb2_grpc.ChannelGatewayServiceStub(self._channel)
        return self._stub

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
        self._channel, self._stub = None, None

    def backoff(self, retry: int) -> float:
        ceiling = min(self._max, self._initial * 2**retry)
        return ceiling / 2 + random.random() * ceiling / 2

    async def deliver(self, message: dict[str, Any]) -> Outcome:
        stub = self._connect()
        first = message.get("attempts", 0) * self._attempts + 1
        error = ""
        for retry in range(self._attempts):
            if retry:
                await asyncio.sleep(self.backoff(retry - 1))
            try:
                answer = await stub.Deliver(deliver_request(message, first + retry), timeout=self._timeout)
            except aio.AioRpcError as exc:
                code, error = exc.code(), f"gRPC {exc.code().name}: {exc.details()}"[:500]
                if code == grpc.StatusCode.ALREADY_EXISTS:
                    return Outcome(True)  # the gateway already took this key
                if code == grpc.StatusCode.INVALID_ARGUMENT:
                    return Outcome(False, retryable=False, error=error)
                if code in TRANSIENT:
                    continue
                return Outcome(False, retryable=True, error=error)
            if answer.accepted:
                return Outcome(True, gateway_message_id=answer.provider_message_id)
            return Outcome(False, retryable=False, error=f"refused by the gateway: {answer.reason}"[:500])
        return Outcome(False, retryable=True, error=error)


class ChannelRouter:
    """Each channel through its adapter: ``routes`` by channel number, else ``default`` (None: left QUEUED)."""

    def __init__(self, routes: Mapping[int, ChannelAdapter], default: ChannelAdapter | None) -> None:
        self.routes = dict(routes)
        self.default = default

    @property
    def channels(self) -> frozenset[int] | None:
        """The channels some adapter serves (None: every channel). The dispatcher claims only these, so a message
        on a channel with no gateway stays QUEUED, its attempts untouched, until one is configured."""
        return None if self.default is not None else frozenset(self.routes)

    async def deliver(self, message: dict[str, Any]) -> Outcome:
        adapter = self.routes.get(message["channel"], self.default)
        if adapter is None:  # not claimed as a rule (``channels``); if it comes anyway, it goes back QUEUED
            name = pb.ChannelType.Name(message["channel"])
            return Outcome(False, error=f"no gateway configured for {name}", not_configured=True)
        return await adapter.deliver(message)

    async def close(self) -> None:
        for adapter in {id(a): a for a in [*self.routes.values(), self.default] if a is not None}.values():
            await adapter.close()


def build_adapter(settings: CampaignSettings) -> ChannelAdapter | None:
    """The adapter the settings describe: the webhook, the gRPC gateway, or each channel to its own."""
    webhook = WebhookAdapter(settings.gateway_url, settings.gateway_timeout_seconds) if settings.gateway_url else None
    if not settings.gateway_grpc_address:
        return webhook
    over_grpc = GrpcGatewayAdapter(
        settings.gateway_grpc_address,
        timeout_seconds=settings.gateway_timeout_seconds,
        attempts=settings.gateway_grpc_attempts,
        initial_backoff_seconds=settings.gateway_grpc_initial_backoff_millis / 1000,
        max_backoff_seconds=settings.gateway_grpc_max_backoff_millis / 1000,
    )
    names = settings.grpc_channels or (["*"] if webhook is None else [])
    if "*" in names:
        return over_grpc
    return ChannelRouter({channel_number(n): over_grpc for n in names}, webhook)


def channel_number(name: str) -> int:
    """``sms`` / ``SMS`` / ``CHANNEL_TYPE_SMS`` → its ChannelType number; ValueError naming the choices."""
    key = name.strip().upper()
    key = key if key.startswith("CHANNEL_TYPE_") else f"CHANNEL_TYPE_{key}"
    if key not in pb.ChannelType.DESCRIPTOR.values_by_name or key == "CHANNEL_TYPE_UNSPECIFIED":
        choices = ", ".join(k.removeprefix("CHANNEL_TYPE_").lower() for k in pb.ChannelType.keys()[1:])
        raise ValueError(f"unknown channel {name!r}: one of {choices}, or *")
    return pb.ChannelType.Value(key)
