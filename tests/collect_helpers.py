"""Shared builders for svc_collect tests: events, and a CollectService on a given database."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit_helpers import ListAuditSink
from grpc import aio
from server_helpers import served_at

from svc_collect.config import CollectSettings
from svc_collect.server import build_service, build_spec
from svc_collect.service import CollectService
from svc_collect.store import SCHEMA, SqlCatalog
from svc_common.config import load_settings
from svc_common.pb.qiming.collect.v1 import collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import event_pb2
from svc_common.protection import generate_keyring
from svc_common.runtime import ServiceRuntime

KEYRING = generate_keyring().to_json()


def make_event(
    event_type: str = "page_view",
    user_id: str = "c1",
    *,
    event_id: str | None = None,
    occurred_at_us: int | None = None,
    **properties: Any,
) -> event_pb2.Event:
    event = event_pb2.Event(event_id=event_id or str(uuid.uuid4()), event_type=event_type, user_id=user_id)
    event.occurred_at.FromMicroseconds(occurred_at_us if occurred_at_us is not None else time.time_ns() // 1000)
    set_properties(event, properties)
    return event


def set_properties(event: event_pb2.Event, properties: dict[str, Any]) -> None:
    """Typed properties from Python values (bool, int, float, else string)."""
    for name, value in properties.items():
        slot = event.properties[name]
        if isinstance(value, bool):
            slot.bool_value = value
        elif isinstance(value, int):
            slot.int_value = value
        elif isinstance(value, float):
            slot.double_value = value
        else:
            slot.string_value = value


def collect_settings(tmp_path: Path, database_url: str | None = None, **overrides: Any) -> CollectSettings:
    values: dict[str, Any] = {"data_dir": tmp_path, "keyring_json": KEYRING, **overrides}
    if database_url:
        values["database_url"] = database_url
    return load_settings(CollectSettings, **values)


def jetstream_settings(tmp_path: Path, server: Any, name: str, **overrides: Any) -> CollectSettings:
    """svc_collect on JetStream at ``server`` (a test's nats-server), stream ``name`` with subjects of its own."""
    return collect_settings(
        tmp_path,
        log_backend="jetstream",
        nats_url=server.url,
        jetstream_stream=name,
        jetstream_subject_prefix=f"{name}.events",
        **overrides,
    )


@contextlib.asynccontextmanager
async def running_service(settings: CollectSettings) -> AsyncIterator[tuple[CollectService, SqlCatalog]]:
    runtime = await asyncio.to_thread(ServiceRuntime.open, SCHEMA, settings)
    service, catalog = build_service(runtime)
    await service.start()
    try:
        yield service, catalog
    finally:
        await service.stop()
        runtime.database.dispose()


async def ingest_when_back(service: CollectService, attempts: int = 60) -> Any:
    """One new event ingested once the log answers again (after an outage the collector reconnects by itself):
    retried on UNAVAILABLE every 0.25 s, at most ``attempts`` times; its result."""
    from svc_common.errors import Unavailable

    for _ in range(attempts - 1):
        try:
            (result,) = await service.ingest([make_event()])
            return result
        except Unavailable:
            await asyncio.sleep(0.25)
    (result,) = await service.ingest([make_event()])
    return result


async def resent_changed_and_bad(service: CollectService) -> tuple[event_pb2.Event, event_pb2.Event, event_pb2.Event]:
    """After ingesting one event: the same event again (a duplicate), the same id with another payload (a duplicate
    flagged as a mismatch), and an event without ``occurred_at`` (rejected)."""
    first = make_event(label="one")
    await service.ingest([first])
    same = event_pb2.Event()
    same.CopyFrom(first)
    other = event_pb2.Event()
    other.CopyFrom(first)
    other.properties["label"].string_value = "two"
    bad = make_event()
    bad.ClearField("occurred_at")
    return same, other, bad


@dataclass
class Serving:
    """svc_collect served in this process: its channel, address and the audit records of its calls."""

    channel: aio.Channel
    address: str
    audit: ListAuditSink

    @property
    def collect(self) -> collect_pb2_grpc.CollectServiceStub:
        return collect_pb2_grpc.CollectServiceStub(self.channel)

    @property
    def quarantine(self) -> collect_pb2_grpc.QuarantineServiceStub:
        return collect_pb2_grpc.QuarantineServiceStub(self.channel)


@contextlib.asynccontextmanager
async def serving_collect(tmp_path: Path, **overrides: Any) -> AsyncIterator[Serving]:
    """svc_collect as ``qiming serve collect`` builds it (its own spec), audited into a list."""
    settings = collect_settings(tmp_path, grpc_host="127.0.0.1", grpc_port=0, **overrides)
    runtime = await asyncio.to_thread(ServiceRuntime.open, SCHEMA, settings)
    audit = ListAuditSink()
    async with served_at(build_spec(runtime), settings, hooks=True, audit_sink=audit) as (channel, address):
        yield Serving(channel, address, audit)
