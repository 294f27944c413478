"""Shared builders for svc_profile tests: settings, an in-process app on a given database, a real collector,
events, refs, and gRPC stubs of a running profile process."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from collect_helpers import KEYRING, set_properties
from conftest import free_port

from svc_common.config import load_settings
from svc_common.logclient import CollectClient
from svc_common.pb.qiming.common.v1 import event_pb2, types_pb2
from svc_common.process import ServerProcess
from svc_common.runtime import ServiceRuntime
from svc_profile.app import ProfileApp
from svc_profile.config import ProfileSettings
from svc_profile.server import build_app
from svc_profile.store import SCHEMA

CUSTOMER = types_pb2.ID_TYPE_CUSTOMER
ANONYMOUS = types_pb2.ID_TYPE_ANONYMOUS
CANONICAL = types_pb2.ID_TYPE_CANONICAL
DAY = 86_400_000_000


def ref(value: str, id_type: int = CUSTOMER) -> types_pb2.UserRef:
    return types_pb2.UserRef(type=id_type, value=value)


def event(
    event_type: str,
    user_id: str = "",
    anonymous_id: str = "",
    *,
    at_us: int | None = None,
    session_id: str = "",
    screen: str = "",
    event_id: str | None = None,
    **properties: Any,
) -> event_pb2.Event:
    e = event_pb2.Event(
        event_id=event_id or str(uuid.uuid4()),
        event_type=event_type,
        user_id=user_id,
        anonymous_id=anonymous_id,
        session_id=session_id,
        channel=types_pb2.CHANNEL_APP,
    )
    e.occurred_at.FromMicroseconds(at_us if at_us is not None else time.time_ns() // 1000)
    if screen:
        e.context.screen = screen
    set_properties(e, properties)
    return e


def profile_settings(tmp_path: Path, database_url: str | None = None, **overrides: Any) -> ProfileSettings:
    values: dict[str, Any] = {"data_dir": tmp_path, "keyring_json": KEYRING, **overrides}
    if database_url:
        values["database_url"] = database_url
    return load_settings(ProfileSettings, **values)


@contextlib.contextmanager
def profile_app(settings: ProfileSettings) -> Iterator[ProfileApp]:
    """The domain in-process (no consumer task): tests drive batches through ``app.consumer.handle``."""
    runtime = ServiceRuntime.open(SCHEMA, settings)
    app = build_app(runtime)
    app.definitions.load()
    if settings.finance_pack:
        app.definitions.install_pack()
    try:
        yield app
    finally:
        runtime.database.dispose()


@contextlib.contextmanager
def second_database(tmp_path: Path, database_url: str) -> Iterator[str]:
    """Another empty database of the same kind: a file on SQLite, a schema of its own on PostgreSQL."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / f'second-{uuid.uuid4().hex[:8]}.db'}"
        return
    url = sa.engine.make_url(database_url)
    schema = f"t_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(url.set(query={}))
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def collector(tmp_path: Path) -> ServerProcess:
    env = {"QIMING_COLLECT_KEYRING_JSON": KEYRING, "QIMING_COLLECT_GRPC_PORT": str(free_port())}
    return ServerProcess("collect", work_dir=tmp_path / "collect", env=env)


def publish(address: str, events: list[event_pb2.Event]) -> None:
    async def go() -> None:
        client = CollectClient(address)
        try:
            reply = await client.publish(events)
            assert reply.rejected_count == 0, reply
        finally:
            await client.close()

    asyncio.run(go())


def read_batches(address: str, after: str = "", batch_size: int = 1000) -> list[tuple[list[event_pb2.Event], str]]:
    async def go() -> list[tuple[list[event_pb2.Event], str]]:
        client = CollectClient(address)
        try:
            return [b async for b in client.read(after, batch_size=batch_size)]
        finally:
            await client.close()

    return asyncio.run(go())


def profile_process(tmp_path: Path, collect_address: str = "", database_url: str = "", **env: str) -> ServerProcess:
    values = {"QIMING_PROFILE_KEYRING_JSON": KEYRING, "QIMING_PROFILE_SWEEP_INTERVAL_SECONDS": "3600", **env}
    if collect_address:
        values["QIMING_PROFILE_COLLECT_ADDRESS"] = collect_address
    if database_url:
        values["QIMING_PROFILE_DATABASE_URL"] = database_url
    return ServerProcess("profile", work_dir=tmp_path / "profile", env=values)


@contextlib.contextmanager
def collect_and_profile(work: Path, events: list[event_pb2.Event]) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """svc_collect and svc_profile processes, the collector's log holding ``events`` (up to 400 days old)."""
    env = {
        "QIMING_COLLECT_KEYRING_JSON": KEYRING,
        "QIMING_COLLECT_GRPC_PORT": str(free_port()),
        "QIMING_COLLECT_MAX_EVENT_AGE_SECONDS": str(400 * 86_400),
    }
    with (
        ServerProcess("collect", work_dir=work / "collect", env=env) as collect,
        profile_process(work, collect.address) as profile,
    ):
        for start in range(0, len(events), 500):
            publish(collect.address, events[start : start + 500])
        yield collect, profile


def wait_for(predicate: Any, timeout: float = 30.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(interval)
