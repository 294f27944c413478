"""Shared builders for svc_campaign tests: a service on a given database with a manual clock and in-memory
profiles, journey graphs, events and profiles."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from collect_helpers import KEYRING

from svc_campaign.clock import ManualClock
from svc_campaign.config import CampaignSettings
from svc_campaign.profiles import InMemoryProfiles
from svc_campaign.service import CampaignService
from svc_campaign.store import SCHEMA, tables
from svc_common.conditions import to_proto
from svc_common.config import load_settings
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import condition_pb2, event_pb2, types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2
from svc_common.runtime import ServiceRuntime

# Monday 2026-11-23 10:00 in Shanghai (02:00 UTC): outside the default quiet hours.
T0 = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
PUSH, SMS, EMAIL, IN_APP, WECOM, CALL = (
    pb.CHANNEL_TYPE_APP_PUSH,
    pb.CHANNEL_TYPE_SMS,
    pb.CHANNEL_TYPE_EMAIL,
    pb.CHANNEL_TYPE_IN_APP,
    pb.CHANNEL_TYPE_WECOM,
    pb.CHANNEL_TYPE_ADVISOR_CALL,
)


def campaign_settings(tmp_path: Path, database_url: str | None = None, **overrides: Any) -> CampaignSettings:
    # One keyring for every instance a test opens: two data dirs on one database are two hosts, and another keyring
    # there is refused (<service>_key_check).
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "journey_refresh_seconds": 0.01,
        "keyring_json": KEYRING,
        **overrides,
    }
    if database_url:
        values["database_url"] = database_url
    return load_settings(CampaignSettings, **values)


@contextlib.contextmanager
def campaign_service(
    tmp_path: Path,
    database_url: str | None = None,
    *,
    clock: ManualClock | None = None,
    profiles: Any = None,
    **kw: Any,
) -> Iterator[CampaignService]:
    settings = campaign_settings(tmp_path, database_url, **kw.pop("settings", {}))
    runtime = ServiceRuntime.open(SCHEMA, settings)
    service = CampaignService(
        settings,
        runtime.database,
        tables,
        clock=clock or ManualClock(T0),
        profiles=profiles or InMemoryProfiles(),
        **kw,
    )
    try:
        yield service
    finally:
        runtime.database.dispose()


def event(
    event_type: str, user_id: str = "c1", at: dt.datetime = T0, *, screen: str = "", **properties: Any
) -> event_pb2.Event:
    out = event_pb2.Event(event_id=str(uuid.uuid4()), event_type=event_type, user_id=user_id)
    out.occurred_at.FromDatetime(at)
    out.received_at.FromDatetime(at)
    if screen:
        out.context.screen = screen
    for name, value in properties.items():
        out.properties[name].CopyFrom(to_proto(value))
    return out


def profile(
    user_id: str = "c1", *, risk: str = "", segments: tuple[str, ...] = (), **attributes: Any
) -> profile_pb2.Profile:
    out = profile_pb2.Profile(profile_id=f"p-{user_id}", segment_ids=list(segments))
    if risk:
        out.attributes["risk_rating"].string_value = risk
    for name, value in attributes.items():
        out.attributes[name].CopyFrom(to_proto(value))
    return out


def equals(source: int, name: str, value: Any, node_id: str = "") -> condition_pb2.Condition:
    return condition_pb2.Condition(
        node_id=node_id,
        comparison=condition_pb2.Comparison(
            field=condition_pb2.FieldRef(source=source, name=name),
            operator=condition_pb2.OPERATOR_EQ,
            value=to_proto(value),
        ),
    )


def on_event(event_type: str, filter: condition_pb2.Condition | None = None) -> pb.Trigger:
    single = pb.SingleEventTrigger(event_type=event_type)
    if filter is not None:
        single.filter.CopyFrom(filter)
    return pb.Trigger(event=single)


def node(node_id: str, **kind: Any) -> pb.JourneyNode:
    return pb.JourneyNode(node_id=node_id, **kind)


def notice_graph() -> pb.JourneyGraph:
    """trigger → a send ``promo`` left at is_marketing = false (the proto3 default) → exit."""
    return pb.JourneyGraph(
        entry_node_id="start",
        nodes=[
            node("start", trigger=pb.TriggerNode(trigger=on_event("signup"), next_node_id="promo")),
            node("promo", send=pb.SendNode(channel=PUSH, template_id="t1", next_node_id="end")),
            node("end", exit=pb.ExitNode(reason="done")),
        ],
    )


def simple_graph(trigger: pb.Trigger, template_id: str = "t1", channel: int = PUSH, **send: Any) -> pb.JourneyGraph:
    """trigger → send → exit."""
    return pb.JourneyGraph(
        entry_node_id="start",
        nodes=[
            node("start", trigger=pb.TriggerNode(trigger=trigger, next_node_id="send")),
            node(
                "send",
                send=pb.SendNode(
                    channel=channel, template_id=template_id, next_node_id="end", is_marketing=True, **send
                ),
            ),
            node("end", exit=pb.ExitNode(reason="done")),
        ],
    )


def add_template(service: CampaignService, template_id: str = "t1", channel: int = 0, **fields: Any) -> pb.Template:
    fields.setdefault("body", "您好 {{attribute.nickname|客户}}，新基金开售，点击查看")
    return service.create_template(pb.Template(template_id=template_id, name=template_id, channel=channel, **fields))


def run_journey(
    service: CampaignService,
    graph: pb.JourneyGraph,
    journey_id: str = "j1",
    *,
    rules: pb.EntryRules | None = None,
    priority: int = 0,
) -> pb.Journey:
    now = service.clock.now()
    with service.db.connection(write=True) as conn:
        service.journeys.create(
            conn,
            pb.Journey(journey_id=journey_id, name=journey_id, draft=graph, entry_rules=rules, priority=priority),
            now,
        )
        service.journeys.publish(conn, journey_id, 0, now)
        return service.journeys.transition(conn, journey_id, "start", now)


def messages(service: CampaignService, user: str = "") -> list[pb.Message]:
    return list(
        reversed(
            service.list_messages(
                user=user,
                journey_id="",
                channels=[],
                start=None,
                end=None,
                suppressed=False,
                reasons=[],
                after=None,
                limit=1000,
            )
        )
    )


def statuses(service: CampaignService, user: str = "") -> list[tuple[str, str]]:
    return [
        (pb.MessageStatus.Name(m.status).removeprefix("MESSAGE_STATUS_"), m.suppression_reason)
        for m in messages(service, user)
    ]


class Gateway:
    """A channel gateway stand-in: records each request; answers from a script of status codes (then 200)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict]] = []
        self.script: list[int] = []
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                gateway.requests.append((self.headers["Idempotency-Key"], body))
                code = gateway.script.pop(0) if gateway.script else 200
                payload = json.dumps({"gateway_message_id": f"gw-{len(gateway.requests)}"}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/deliver"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def status(message: pb.Message) -> str:
    """A message's status without the enum prefix ("QUEUED", "SENT", ...)."""
    return pb.MessageStatus.Name(message.status).removeprefix("MESSAGE_STATUS_")


@contextlib.contextmanager
def running_gateway() -> Iterator[Gateway]:
    server = Gateway()
    try:
        yield server
    finally:
        server.close()


def deliver(service: CampaignService, timeout_seconds: float = 2.0) -> int:
    """One pass of the outbox dispatcher through the HTTP webhook at ``settings.gateway_url``."""
    import asyncio

    from svc_campaign.delivery import WebhookAdapter

    async def once() -> int:
        adapter = WebhookAdapter(service.settings.gateway_url, timeout_seconds)
        service.dispatcher.adapter = adapter
        try:
            return await service.dispatcher.run_once()
        finally:
            await adapter.close()

    return asyncio.run(once())


def wait_then_send(seconds: int = 3600, template_id: str = "t1", entry_event: str = "signup") -> pb.JourneyGraph:
    """``entry_event`` → wait ``seconds`` → a marketing push of ``template_id`` → exit."""
    return pb.JourneyGraph(
        entry_node_id="start",
        nodes=[
            node("start", trigger=pb.TriggerNode(trigger=on_event(entry_event), next_node_id="wait")),
            node("wait", wait=pb.WaitNode(duration_seconds=seconds, next_node_id="send")),
            node(
                "send", send=pb.SendNode(channel=PUSH, template_id=template_id, next_node_id="end", is_marketing=True)
            ),
            node("end", exit=pb.ExitNode(reason="done")),
        ],
    )


ATTRIBUTE = condition_pb2.FieldRef.SOURCE_ATTRIBUTE
EVENT_PROPERTY = condition_pb2.FieldRef.SOURCE_EVENT_PROPERTY
__all__ = ["ATTRIBUTE", "EVENT_PROPERTY", "types_pb2"]


class InProcessServer:
    """A grpc.aio server on a free port in this process (its own event loop in a thread): register(server) adds
    the servicers. For real services (svc_profile) and stand-ins (a channel gateway) over real gRPC."""

    def __init__(self, register: Any) -> None:
        import asyncio

        from grpc import aio

        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.address = ""

        from svc_common.server import ErrorInterceptor

        async def serve() -> None:
            self._server = aio.server(interceptors=[ErrorInterceptor()])
            register(self._server)
            port = self._server.add_insecure_port("127.0.0.1:0")
            await self._server.start()
            self.address = f"127.0.0.1:{port}"
            ready.set()

        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(serve(), self._loop).result(timeout=30)
        ready.wait(30)

    def close(self) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self._server.stop(None), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()


@contextlib.contextmanager
def profile_server(tmp_path: Path) -> Iterator[str]:
    """The real svc_profile (SQLite under tmp_path) serving ProfileService and SegmentService in this process."""
    from profile_helpers import profile_app, profile_settings

    from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc
    from svc_profile.server import ProfileServicer, SegmentServicer

    with profile_app(profile_settings(tmp_path / "profile")) as app:

        def register(server: Any) -> None:
            profile_pb2_grpc.add_ProfileServiceServicer_to_server(ProfileServicer(app), server)
            profile_pb2_grpc.add_SegmentServiceServicer_to_server(SegmentServicer(app), server)

        server = InProcessServer(register)
        try:
            yield server.address
        finally:
            server.close()
