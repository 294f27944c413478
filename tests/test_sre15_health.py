"""gRPC health follows the services' dependencies (issue 4, failure drills of session 15): the server kit's dependency
probes, and svc_collect's database probe on PostgreSQL reached through a proxy the test cuts and restores (the NATS
probe is in test_sre15_nats_outage.py). Until then health stayed SERVING whatever the database did."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from collect_helpers import KEYRING, collect_settings, make_event, running_service
from conftest import POSTGRES_ADMIN_URL, free_port
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from test_sre15_nats_outage import COLLECT, NOT_SERVING, SERVING, collector, next_status, reason_of

from svc_common.config import ServerSettings, load_settings
from svc_common.errors import Unavailable
from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.runtime import ServiceRuntime
from svc_common.server import DependencyProbe, ServiceSpec, serve
from svc_common.suite import entry as suite_entry


def _spec(name: str, *probes: DependencyProbe) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        grpc_services=(f"qiming.{name}.v1.Service",),
        register=lambda server: None,
        dependency_probes=list(probes),
    )


async def _status(health: Any, name: str) -> int:
    return (await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)).status


def test_health_follows_each_services_probes() -> None:
    answers = {"db": True}
    hung = asyncio.Event()
    calls = {"hung": 0}

    async def database() -> None:
        if not answers["db"]:
            raise ConnectionRefusedError("connection refused")

    async def never_answers() -> None:
        calls["hung"] += 1
        await hung.wait()

    fast = DependencyProbe("database", database, interval_millis=100)
    slow = DependencyProbe("nats", never_answers, interval_millis=100)
    settings = ServerSettings(grpc_host="127.0.0.1", grpc_port=free_port())

    async def scenario() -> None:
        stop = asyncio.Event()
        server = asyncio.create_task(serve([_spec("one", fast), _spec("two")], settings, stop=stop))
        try:
            async with aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
                health = health_pb2_grpc.HealthStub(channel)
                one = health.Watch(health_pb2.HealthCheckRequest(service="qiming.one.v1.Service"))
                everything = health.Watch(health_pb2.HealthCheckRequest(service=""))
                for watch in (one, everything):
                    await next_status(watch, SERVING)
                answers["db"] = False
                for watch in (one, everything):
                    await next_status(watch, NOT_SERVING)
                assert await _status(health, "qiming.two.v1.Service") == SERVING  # its own probes only
                answers["db"] = True
                for watch in (one, everything):
                    await next_status(watch, SERVING)
                one.cancel()
                everything.cancel()
        finally:
            stop.set()
            await server

    async def hung_scenario() -> None:
        stop = asyncio.Event()
        server = asyncio.create_task(serve([_spec("three", slow)], settings, stop=stop))
        try:
            async with aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
                health = health_pb2_grpc.HealthStub(channel)
                watch = health.Watch(health_pb2.HealthCheckRequest(service="qiming.three.v1.Service"))
                await next_status(watch, NOT_SERVING)
                await asyncio.sleep(0.5)  # five intervals: the check still running is not started again
                assert calls["hung"] == 1
                hung.set()
                await next_status(watch, SERVING)
                watch.cancel()
        finally:
            stop.set()
            await server

    asyncio.run(scenario())
    asyncio.run(hung_scenario())


def test_a_check_that_raises_before_it_awaits_is_a_failed_probe() -> None:
    def refuses() -> Any:
        raise ConnectionRefusedError("refused at once")

    settings = ServerSettings(grpc_host="127.0.0.1", grpc_port=free_port())

    async def scenario() -> None:
        stop = asyncio.Event()
        probe = DependencyProbe("database", refuses, interval_millis=100)
        server = asyncio.create_task(serve([_spec("one", probe)], settings, stop=stop))
        try:
            async with aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
                health = health_pb2_grpc.HealthStub(channel)
                watch = health.Watch(health_pb2.HealthCheckRequest(service="qiming.one.v1.Service"))
                await next_status(watch, NOT_SERVING)
                watch.cancel()
        finally:
            stop.set()
            await server

    asyncio.run(scenario())


def test_a_failure_the_service_meets_turns_health_at_once() -> None:
    """Probes ten minutes apart: only ``failed()`` can turn health within the test."""

    async def answers() -> None:
        pass

    probe = DependencyProbe("database", answers, interval_millis=600_000)
    settings = ServerSettings(grpc_host="127.0.0.1", grpc_port=free_port())

    async def scenario() -> None:
        stop = asyncio.Event()
        server = asyncio.create_task(serve([_spec("one", probe)], settings, stop=stop))
        try:
            async with aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
                health = health_pb2_grpc.HealthStub(channel)
                watch = health.Watch(health_pb2.HealthCheckRequest(service="qiming.one.v1.Service"))
                await next_status(watch, SERVING)
                probe.failed("an ingest found it down")
                await next_status(watch, NOT_SERVING, seconds=10)
                watch.cancel()
        finally:
            stop.set()
            await server

    asyncio.run(scenario())


class _Proxy:
    """A TCP proxy to the local PostgreSQL that the test cuts (listener and connections closed) and restores."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        assert self._listener is not None
        for sock in [self._listener, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the threads blocked on it (close alone does not)
            sock.close()
        self._sockets = []

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def test_health_follows_postgresql(database_url_postgresql: str, tmp_path: Path) -> None:
    admin = sa.engine.make_url(POSTGRES_ADMIN_URL)
    proxy = _Proxy((admin.host or "127.0.0.1", admin.port or 5432))
    proxy.start()
    url = sa.engine.make_url(database_url_postgresql).set(host="127.0.0.1", port=proxy.port)
    settings = collect_settings(
        tmp_path,
        url.render_as_string(hide_password=False),
        grpc_host="127.0.0.1",
        grpc_port=free_port(),
        dependency_probe_interval_millis=200,
        shutdown_grace_seconds=5,
    )

    async def scenario() -> None:
        async with collector(settings) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            stub = collect_pb2_grpc.CollectServiceStub(channel)
            watches = [health.Watch(health_pb2.HealthCheckRequest(service=name)) for name in (COLLECT, "")]
            for watch in watches:
                await next_status(watch, SERVING)
            proxy.stop()
            for watch in watches:
                await next_status(watch, NOT_SERVING)
            try:
                await stub.Ingest(collect_pb2.IngestRequest(events=[make_event()]), timeout=10)
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
                assert reason_of(exc) == "DEPENDENCY_UNAVAILABLE"
            else:
                raise AssertionError("ingested with the database cut off")
            proxy.start()
            for watch in watches:
                await next_status(watch, SERVING)
            reply = await stub.Ingest(collect_pb2.IngestRequest(events=[make_event()]), timeout=10)
            assert reply.accepted_count == 1
            for watch in watches:
                watch.cancel()

    try:
        asyncio.run(scenario())
    finally:
        with contextlib.suppress(AssertionError):
            proxy.stop()


def test_only_a_store_that_is_down_turns_health_at_once(tmp_path: Path) -> None:
    """A write that lost a race with other collectors (LOG_CONTENDED) or met a SQLite file busy with another writer
    (DATABASE_BUSY) is retried by the client; the store is up."""
    told: list[str] = []

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path)) as (service, _):
            service.log_unavailable = told.append
            for reason in ("LOG_CONTENDED", "DATABASE_BUSY", "DEPENDENCY_UNAVAILABLE", "LOG_UNAVAILABLE"):

                async def refuse(batch: Any, reason: str = reason) -> Any:
                    raise Unavailable(f"refused: {reason}", reason=reason)

                service._committer.submit = refuse  # type: ignore[method-assign]
                with pytest.raises(Unavailable):
                    await service.ingest([make_event()])

    asyncio.run(scenario())
    assert told == ["refused: DEPENDENCY_UNAVAILABLE", "refused: LOG_UNAVAILABLE"]


@pytest.mark.parametrize("service", ["profile", "campaign", "modeling"])
def test_every_service_registers_a_probe_of_its_database(service: str, tmp_path: Path) -> None:
    """svc_profile's, svc_campaign's and svc_modeling's health follow their database too (one probe each)."""
    entry = suite_entry(service)
    settings = load_settings(entry.settings_class, data_dir=tmp_path, keyring_json=KEYRING)
    runtime = ServiceRuntime.open(entry.schema, settings)
    try:
        spec = entry.build_spec(runtime)
        assert [probe.name for probe in spec.dependency_probes] == ["database"]
    finally:
        runtime.database.dispose()
