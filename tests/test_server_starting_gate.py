"""Session 14 (a failure drill): a service answers nothing but UNAVAILABLE (STARTING) until its own start hooks are
done, and health "" is NOT_SERVING until every service of the process is. svc_collect on JetStream with NATS slow
answered a valid cursor INVALID_ARGUMENT "not a cursor of this log" and Ingest INTERNAL in that window, and health ""
said SERVING (grpc's servicer starts so), which load balancers probe."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from svc_common.config import ServerSettings
from svc_common.peers import forget_local, peer_address
from svc_common.server import ServiceSpec, serve


def _spec(name: str, started: list[str], release: asyncio.Event | None) -> ServiceSpec:
    async def hello(request: bytes, context: aio.ServicerContext) -> bytes:
        return name.encode()

    def register(server: aio.Server) -> None:
        handler = grpc.unary_unary_rpc_method_handler(hello)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(f"t.{name}", {"Hello": handler}),))

    async def start() -> None:
        if release is not None:
            await release.wait()
        started.append(name)

    return ServiceSpec(name, (f"t.{name}",), register, on_start=[start])


def test_calls_wait_for_the_start_hooks_and_health_says_not_serving_meanwhile() -> None:
    async def scenario() -> None:
        release, stop, started = asyncio.Event(), asyncio.Event(), []
        specs = [_spec("First", started, None), _spec("Second", started, release)]
        settings = ServerSettings(grpc_host="127.0.0.1", grpc_port=0, shutdown_drain_seconds=0)
        server = asyncio.create_task(serve(specs, settings, stop=stop))
        try:
            while started != ["First"]:  # the port is open, Second's start hook waits
                await asyncio.sleep(0.01)
            address = peer_address("First")
            assert address
            async with aio.insecure_channel(address) as channel:
                health = health_pb2_grpc.HealthStub(channel)
                check = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
                assert check.status == health_pb2.HealthCheckResponse.NOT_SERVING
                assert await channel.unary_unary("/t.First/Hello")(b"", timeout=5) == b"First"  # its start is done
                with pytest.raises(aio.AioRpcError) as raised:
                    await channel.unary_unary("/t.Second/Hello")(b"", timeout=5)
                assert raised.value.code() is grpc.StatusCode.UNAVAILABLE
                assert raised.value.details() == "t.Second is starting and does not answer yet; retry with backoff"
                info = error_details_pb2.ErrorInfo()
                assert rpc_status.from_call(raised.value).details[0].Unpack(info) and info.reason == "STARTING"
                release.set()
                while started != ["First", "Second"]:
                    await asyncio.sleep(0.01)
                for _ in range(500):  # SERVING follows the last start hook
                    check = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
                    if check.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                    await asyncio.sleep(0.01)
                assert check.status == health_pb2.HealthCheckResponse.SERVING
                assert await channel.unary_unary("/t.Second/Hello")(b"", timeout=5) == b"Second"
        finally:
            release.set()
            stop.set()
            await server
            forget_local()

    asyncio.run(scenario())
