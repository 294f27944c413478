"""svc_collect on JetStream while its NATS is down (issue 4, failure drills of session 15): Ingest answers UNAVAILABLE
at once instead of after twice the publish timeout, a batch in flight when the connection drops is answered
unacknowledged and lands once on its retry, ingest resumes by itself, and gRPC health follows NATS.

Every test starts a nats-server of its own and kills it; the collector runs in this process under ``serve``, on a
real port, and is called over gRPC."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from collect_helpers import jetstream_settings, make_event
from conftest import NatsServer, free_port
from google.rpc import error_details_pb2
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from svc_collect.server import build_spec
from svc_collect.service import ACCEPTED, DUPLICATE
from svc_collect.store import SCHEMA
from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.runtime import ServiceRuntime
from svc_common.server import serve

PUBLISH_TIMEOUT_MILLIS = 30_000  # far above every deadline below: an answer within one cannot come from the timeout
CALL_DEADLINE = 5.0
COLLECT = "qiming.collect.v1.CollectService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@contextlib.asynccontextmanager
async def serving(settings: Any) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """svc_collect served by ``serve`` on ``settings.grpc_port`` until the end, or until the function it yields (the
    graceful stop, as on SIGTERM) returns."""
    runtime = await asyncio.to_thread(ServiceRuntime.open, SCHEMA, settings)
    stop = asyncio.Event()
    server = asyncio.create_task(serve([build_spec(runtime)], settings, stop=stop))

    async def stopped() -> None:
        stop.set()
        await server

    try:
        async with aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for _ in range(600):
                with contextlib.suppress(grpc.RpcError):
                    reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                    if reply.status == SERVING:
                        break
                assert not server.done(), server
                await asyncio.sleep(0.05)
        yield stopped
    finally:
        await stopped()


@contextlib.asynccontextmanager
async def collector(settings: Any) -> AsyncIterator[aio.Channel]:
    """:func:`serving`, and a channel to it."""
    async with serving(settings), aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
        yield channel


def settings_for(tmp_path: Path, nats: NatsServer, name: str, **overrides: Any) -> Any:
    return jetstream_settings(
        tmp_path,
        nats,
        name,
        grpc_host="127.0.0.1",
        grpc_port=free_port(),
        jetstream_publish_timeout_millis=PUBLISH_TIMEOUT_MILLIS,
        shutdown_grace_seconds=5,
        **overrides,
    )


def reason_of(error: grpc.RpcError) -> str:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, error
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""


async def ingest(stub: collect_pb2_grpc.CollectServiceStub, events: list) -> collect_pb2.IngestResponse:
    return await stub.Ingest(collect_pb2.IngestRequest(events=events), timeout=CALL_DEADLINE)


async def ingest_until_answered(stub: collect_pb2_grpc.CollectServiceStub, events: list) -> collect_pb2.IngestResponse:
    """A client's retry of ``events`` on UNAVAILABLE, for up to 60 s (the collector reconnects by itself)."""
    for _ in range(240):
        try:
            return await ingest(stub, events)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
            await asyncio.sleep(0.25)
    return await ingest(stub, events)


async def logged_ids(stub: collect_pb2_grpc.CollectServiceStub) -> list[str]:
    ids: list[str] = []
    async for page in stub.ReadEvents(collect_pb2.ReadEventsRequest(), timeout=30):
        ids.extend(e.event_id for e in page.events)
    return ids


async def refused_at_once(stub: collect_pb2_grpc.CollectServiceStub, events: list) -> grpc.RpcError:
    """The call's error; UNAVAILABLE (LOG_UNAVAILABLE) within the deadline, long before the publish timeout."""
    started = time.monotonic()
    try:
        await ingest(stub, events)
    except grpc.RpcError as exc:
        error = exc
    else:
        raise AssertionError("ingest succeeded with NATS down")
    assert error.code() == grpc.StatusCode.UNAVAILABLE, (error.code(), error.details())
    assert reason_of(error) == "LOG_UNAVAILABLE"
    assert time.monotonic() - started < CALL_DEADLINE < PUBLISH_TIMEOUT_MILLIS / 1000
    return error


async def unacknowledged(call: Awaitable[Any], started: float) -> None:
    """``call`` is answered UNAVAILABLE (LOG_UNAVAILABLE), within the deadline of a call started at ``started``."""
    try:
        await call
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.UNAVAILABLE, (exc.code(), exc.details())
        assert reason_of(exc) == "LOG_UNAVAILABLE"
    else:
        raise AssertionError("acknowledged although NATS never answered")
    assert time.monotonic() - started < CALL_DEADLINE


def test_ingest_is_unavailable_at_once_while_nats_is_down_and_resumes_by_itself(tmp_path: Path) -> None:
    """Before: each Ingest waited out the publish and then the look for the pack: 2 x 30 s here, past the deadline
    (DEADLINE_EXCEEDED)."""
    nats = NatsServer(tmp_path / "nats", free_port()).start()
    settings = settings_for(tmp_path, nats, "sre15down")

    async def scenario() -> None:
        async with collector(settings) as channel:
            stub = collect_pb2_grpc.CollectServiceStub(channel)
            acknowledged: list[str] = []
            first = [make_event(user_id=f"c{i}") for i in range(20)]
            assert (await ingest(stub, first)).accepted_count == 20
            acknowledged += [e.event_id for e in first]

            nats.kill()
            refused = [make_event(user_id=f"d{i}") for i in range(20)]
            error = await refused_at_once(stub, refused)
            assert "retry" in (error.details() or "")
            for _ in range(3):  # every call while it is down, not just the first
                await refused_at_once(stub, [make_event()])

            nats.start()  # same port and store
            again = await ingest_until_answered(stub, refused)
            assert [r.status for r in again.results] == [ACCEPTED] * 20
            acknowledged += [e.event_id for e in refused]
            later = [make_event() for _ in range(5)]
            assert (await ingest(stub, later)).accepted_count == 5
            acknowledged += [e.event_id for e in later]

            assert await logged_ids(stub) == acknowledged  # none lost, none doubled, nothing unacknowledged

    try:
        asyncio.run(scenario())
    finally:
        nats.stop()


def test_a_batch_in_flight_when_the_connection_drops_is_unacknowledged_and_lands_once(tmp_path: Path) -> None:
    """NATS stops answering (SIGSTOP) while a batch is published, then dies: the batch is answered UNAVAILABLE as
    soon as the connection drops, not at the publish timeout; the client's retry stores it once."""
    nats = NatsServer(tmp_path / "nats", free_port()).start()
    settings = settings_for(tmp_path, nats, "sre15flight")

    async def scenario() -> None:
        async with collector(settings) as channel:
            stub = collect_pb2_grpc.CollectServiceStub(channel)
            first = [make_event() for _ in range(10)]
            assert (await ingest(stub, first)).accepted_count == 10

            assert nats.process is not None
            nats.process.send_signal(signal.SIGSTOP)
            batch = [make_event(user_id=f"f{i}") for i in range(50)]
            started = time.monotonic()
            call = asyncio.create_task(ingest(stub, batch))
            await asyncio.sleep(1.0)  # published; JetStream does not answer
            assert not call.done()
            nats.kill()  # SIGKILL ends a stopped process too: the connection drops
            await unacknowledged(call, started)

            nats.start()
            again = await ingest_until_answered(stub, batch)
            # ACCEPTED if the pack was lost with the server, DUPLICATE if it got there after all: once either way.
            assert {r.status for r in again.results} <= {ACCEPTED, DUPLICATE}
            ids = await logged_ids(stub)
            assert ids == [e.event_id for e in first + batch]

    try:
        asyncio.run(scenario())
    finally:
        nats.stop()


async def next_status(watch: Any, wanted: int, seconds: float = 20.0) -> None:
    async def read() -> None:
        while True:
            reply = await watch.read()
            assert reply is not aio.EOF
            if reply.status == wanted:
                return

    await asyncio.wait_for(read(), seconds)


def test_health_follows_nats(tmp_path: Path) -> None:
    nats = NatsServer(tmp_path / "nats", free_port()).start()
    settings = settings_for(tmp_path, nats, "sre15health", dependency_probe_interval_millis=200)

    async def scenario() -> None:
        async with collector(settings) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            watches = [health.Watch(health_pb2.HealthCheckRequest(service=name)) for name in (COLLECT, "")]
            for watch in watches:
                await next_status(watch, SERVING)
            nats.kill()
            for watch in watches:
                await next_status(watch, NOT_SERVING)
            nats.start()
            for watch in watches:
                await next_status(watch, SERVING)
            stub = collect_pb2_grpc.CollectServiceStub(channel)
            assert (await ingest(stub, [make_event()])).accepted_count == 1
            for watch in watches:
                watch.cancel()

    try:
        asyncio.run(scenario())
    finally:
        nats.stop()


def test_an_ingest_that_finds_nats_down_turns_health_at_once(tmp_path: Path) -> None:
    """With probes 10 minutes apart, only the failed ingest can turn health NOT_SERVING within the test."""
    nats = NatsServer(tmp_path / "nats", free_port()).start()
    settings = settings_for(tmp_path, nats, "sre15flip", dependency_probe_interval_millis=600_000)

    async def scenario() -> None:
        async with collector(settings) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            watch = health.Watch(health_pb2.HealthCheckRequest(service=COLLECT))
            await next_status(watch, SERVING)
            nats.kill()
            stub = collect_pb2_grpc.CollectServiceStub(channel)
            await refused_at_once(stub, [make_event()])
            await next_status(watch, NOT_SERVING, seconds=10)
            watch.cancel()

    try:
        asyncio.run(scenario())
    finally:
        nats.stop()


def test_a_hung_nats_is_dropped_after_two_unanswered_pings_and_ingest_answers_within_the_deadline(
    tmp_path: Path,
) -> None:
    """NATS stops answering without closing the socket (SIGSTOP: a hung process, a black-holed network): the
    collector's pings (``nats_ping_interval_seconds``) find it, the batch in flight is answered UNAVAILABLE within the
    call's deadline instead of after twice the 30 s publish timeout, and once NATS answers the retry lands once."""
    nats = NatsServer(tmp_path / "nats", free_port()).start()
    settings = settings_for(tmp_path, nats, "sre15hung", nats_ping_interval_seconds=0.5)

    async def scenario() -> None:
        async with collector(settings) as channel:
            stub = collect_pb2_grpc.CollectServiceStub(channel)
            first = [make_event() for _ in range(10)]
            assert (await ingest(stub, first)).accepted_count == 10
            assert nats.process is not None
            nats.process.send_signal(signal.SIGSTOP)
            batch = [make_event(user_id=f"h{i}") for i in range(20)]
            started = time.monotonic()
            await unacknowledged(ingest(stub, batch), started)
            nats.process.send_signal(signal.SIGCONT)
            again = await ingest_until_answered(stub, batch)
            assert {r.status for r in again.results} <= {ACCEPTED, DUPLICATE}
            assert await logged_ids(stub) == [e.event_id for e in first + batch]

    try:
        asyncio.run(scenario())
    finally:
        if nats.process is not None:
            nats.process.send_signal(signal.SIGCONT)
        nats.stop()
