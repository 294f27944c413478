"""What the server kit adds to one unary call (docs/benchmarks.md, "Session 18"), against a bare ``grpc.aio`` server
and one with only OpenTelemetry's interceptor: a method that parses a 100-event ``IngestRequest`` and answers its
count, served in this process; a client in a child process sends ``--calls`` calls, ``--in-flight`` at once, then
300 lone ones 20 ms apart. Prints the server's CPU per call and the lone calls' p50/p90 latency. The kit's method
is self-checked, as svc_collect's ingest is (the request text is not walked for U+0000).

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/server_kit_call.py --mode bare|otel|kit [--calls 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import grpc
from grpc import aio

sys.path.insert(0, str(Path(__file__).parents[1]))

SERVICE = "qiming.bench.v1.Bench"
METHOD = f"/{SERVICE}/Ping"


async def client(address: str, calls: int, in_flight: int) -> None:
    import bench_collect

    data = bench_collect.make_batches(1, 100)[0]
    async with aio.insecure_channel(address) as channel:
        call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        for _ in range(200):
            await call(data)
        queue = list(range(calls))

        async def worker() -> None:
            while queue:
                queue.pop()
                await call(data)

        print("ready", flush=True)
        sys.stdin.readline()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        rate = calls / (time.perf_counter() - started)
        print(f"{rate:.1f}", flush=True)
        lone = []
        for _ in range(300):
            sent = time.perf_counter()
            await call(data)
            lone.append((time.perf_counter() - sent) * 1000)
            await asyncio.sleep(0.02)
        lone.sort()
        print(f"{lone[150]:.2f} {lone[270]:.2f}", flush=True)


async def serve(mode: str, calls: int, in_flight: int) -> None:
    from svc_common.pb.qiming.collect.v1 import collect_pb2

    async def ping(request: collect_pb2.IngestRequest, context: object) -> bytes:
        return collect_pb2.IngestResponse(accepted_count=len(request.events)).SerializeToString()

    def register(server: aio.Server) -> None:
        handler = grpc.unary_unary_rpc_method_handler(ping, request_deserializer=collect_pb2.IngestRequest.FromString)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Ping": handler}),))

    if mode == "kit":
        from svc_common.config import ServerSettings
        from svc_common.server import ServiceSpec, build_server

        spec = ServiceSpec("bench", (SERVICE,), register, self_checked_methods=(METHOD,))
        running = build_server([spec], ServerSettings(grpc_port=0))
        server, port = running.server, running.port
    else:
        from opentelemetry.instrumentation.grpc import aio_server_interceptor

        server = aio.server(interceptors=[aio_server_interceptor()] if mode == "otel" else None)
        register(server)
        port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--client", f"127.0.0.1:{port}", "--calls", str(calls), "--in-flight", str(in_flight),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    assert (await child.stdout.readline()).startswith(b"ready")
    cpu = time.process_time()
    child.stdin.write(b"\n")
    await child.stdin.drain()
    rate = float(await child.stdout.readline())
    cpu = time.process_time() - cpu
    p50, p90 = (await child.stdout.readline()).split()
    await child.wait()
    await server.stop(0)
    print(
        f"{mode}: {rate:,.0f} calls/s, server CPU {cpu / calls * 1e6:,.0f} µs per call; "
        f"lone calls p50 {float(p50):.2f} ms, p90 {float(p90):.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("bare", "otel", "kit"), default="kit")
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        asyncio.run(client(args.client, args.calls, args.in_flight))
    else:
        asyncio.run(serve(args.mode, args.calls, args.in_flight))


if __name__ == "__main__":
    main()
