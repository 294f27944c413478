"""The collector's CPU per Ingest call for small batches (docs/benchmarks.md, "Session 18"): ``qiming serve collect``
on SQLite (or another backend), ``--calls`` batches of ``--size`` events sent with ``--in-flight`` calls in flight
on one connection, after 200 to warm up; prints calls/s, events/s and the collector's and the client's CPU per call.
``--py-spy FILE`` also records the collector (``--gil``: what holds the GIL) as raw collapsed stacks.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/collect_call_cost.py --size 1 --calls 3000
    PYTHONPATH=$PWD .venv/bin/python loadtests/research/collect_call_cost.py --size 100 --calls 1000
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

import bench_collect  # noqa: E402
import grpc  # noqa: E402
from cpu_account import CpuMeter  # noqa: E402


async def drive(address: str, batches: list[bytes], in_flight: int) -> float:
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(bench_collect.INGEST, request_serializer=None, response_deserializer=None)
        queue = list(batches)

        async def worker() -> None:
            while queue:
                await call(queue.pop(), timeout=60)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1, help="events per call")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--backend", default="SQLite", choices=bench_collect.BACKENDS)
    parser.add_argument("--py-spy", metavar="FILE")
    args = parser.parse_args()
    with bench_collect.backend_env(args.backend) as env, bench_collect.collector(env) as server:
        asyncio.run(drive(server.address, bench_collect.make_batches(200, args.size, seed=1), args.in_flight))
        batches = bench_collect.make_batches(args.calls, args.size, seed=2)
        spy = None
        if args.py_spy:
            py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
            command = [py_spy, "record", "--gil", "-r", "200", "-f", "raw", "-o", args.py_spy]
            spy = subprocess.Popen(
                [*command, "--pid", str(server.process.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            time.sleep(1)
        meter = CpuMeter(server.process.pid, ())
        meter.start()
        seconds = asyncio.run(drive(server.address, batches, args.in_flight))
        used = meter.stop()
        if spy is not None:
            spy.send_signal(2)
            spy.wait()
    print(
        ("with py-spy attached (it slows the collector): " if args.py_spy else "")
        + f"{args.size}-event calls on {args.backend}: {args.calls / seconds:,.0f} calls/s, "
        f"{args.calls * args.size / seconds:,.0f} events/s; CPU per call: collector "
        f"{used['service'] / args.calls * 1e6:,.0f} µs, client {used['client'] / args.calls * 1e6:,.0f} µs"
    )


if __name__ == "__main__":
    main()
