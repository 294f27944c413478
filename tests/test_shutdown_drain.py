"""Shutdown with a drain period: health answers NOT_SERVING while the server still listens, so that a load balancer
probing health sees it (without a drain the listener closes at once and probes see the connection refused)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from svc_common.config import ServerSettings, load_settings
from svc_common.server import ServiceSpec, peer_address, serve


def _statuses_seen_after_stop(drain_seconds: float) -> list[str]:
    seen: list[str] = []
    stop = asyncio.Event()

    async def probe() -> None:
        address = peer_address("collect")
        async with grpc.aio.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            first = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            seen.append(health_pb2.HealthCheckResponse.ServingStatus.Name(first.status))
            stop.set()
            for _ in range(40):  # 2 s of probes, every 50 ms
                await asyncio.sleep(0.05)
                try:
                    answer = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                    seen.append(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))
                except grpc.aio.AioRpcError as exc:
                    seen.append(exc.code().name)

    async def on_start() -> None:
        asyncio.get_running_loop().call_soon(lambda: tasks.append(asyncio.ensure_future(probe())))

    tasks: list[asyncio.Future] = []
    spec = ServiceSpec(name="collect", grpc_services=(), register=lambda server: None, on_start=[on_start])
    settings = load_settings(
        ServerSettings, grpc_port=0, shutdown_drain_seconds=drain_seconds, shutdown_grace_seconds=0.5
    )

    async def main() -> None:
        await serve([spec], settings, stop=stop)
        await asyncio.gather(*tasks)

    asyncio.run(main())
    return seen


def test_health_is_not_serving_for_the_drain_period_before_the_listener_closes() -> None:
    seen = _statuses_seen_after_stop(1.0)
    assert seen[0] == "SERVING"
    drained = seen[1:]
    # About 1 s of NOT_SERVING answers (20 probes at most), then the listener is gone.
    assert drained.count("NOT_SERVING") >= 8, seen
    assert drained[: drained.count("NOT_SERVING")] == ["NOT_SERVING"] * drained.count("NOT_SERVING"), seen
    assert drained[-1] == "UNAVAILABLE", seen


def test_without_a_drain_probes_find_the_listener_closed() -> None:
    seen = _statuses_seen_after_stop(0.0)
    assert seen[0] == "SERVING"
    assert seen[1:].count("NOT_SERVING") <= 1, seen
    assert seen[-1] == "UNAVAILABLE", seen


def test_a_failed_start_closes_the_listener_and_prints_nothing_after_the_error() -> None:
    code = (
        "import asyncio, sys\n"
        "from svc_common.config import ServerSettings, load_settings\n"
        "from svc_common.errors import ConfigError\n"
        "from svc_common.server import ServiceSpec, serve\n"
        "async def on_start():\n"
        "    raise ConfigError('bad stream')\n"
        "spec = ServiceSpec(name='collect', grpc_services=(), register=lambda server: None, on_start=[on_start])\n"
        "try:\n"
        "    asyncio.run(serve([spec], load_settings(ServerSettings, grpc_port=0)))\n"
        "except ConfigError as exc:\n"
        "    print('qiming: error:', exc, file=sys.stderr)\n"
        "    sys.exit(2)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("QIMING_")}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == "qiming: error: bad stream", result.stderr
