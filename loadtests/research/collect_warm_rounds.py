"""How a fresh collector's rate moves over its first events: rounds of 1,000-event batches sent one after another to
one collector (``bench_collect.drive``, 8 in flight), each round's events/s and the collector's CPU µs per event.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/collect_warm_rounds.py [--backend SQLite] [--rounds 8]
        [--batches 40]

Why ``make bench``'s (c) is warmed up before its timed run (docs/benchmarks.md, "Session 25").
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_collect as bench  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="SQLite", choices=sorted(bench.DATABASE_SERVERS))
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--batches", type=int, default=40)
    args = parser.parse_args()
    with bench.backend_env(args.backend) as env, bench.collector(env) as server:
        for i in range(args.rounds):
            batches = bench.make_batches(args.batches, 1000, seed=random.randrange(1 << 30))
            meter = bench.CpuMeter(server.process.pid, bench.DATABASE_SERVERS[args.backend])
            meter.start()
            rate, events = asyncio.run(bench.drive(server.address, batches))
            used = meter.stop()
            print(f"{args.backend} round {i}: {rate:,.0f} events/s, service {used['service'] / events * 1e6:.1f} µs/event")


if __name__ == "__main__":
    main()
