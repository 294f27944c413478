"""CPU per event of each thread of the served collector (and of its worker processes) during a (c) run of the
bench, from /proc: which thread the CPU goes to (the gRPC event loop, the group committer's worker threads, the
JetStream log's nats-py loop), with voluntary / involuntary context switches per 1,000 events.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/collect_s14_threads.py [JetStream,PostgreSQL]
    WORKERS=2 IN_FLIGHT=16 PYTHONPATH=$PWD .venv/bin/python loadtests/research/collect_s14_threads.py JetStream

Threads are told apart by their CPU (CPython 3.11 does not name OS threads): the gRPC loop is the first thread of
a process, the nats-py loop the busiest other one. 20 batches warm the collector up; 200 are measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

import bench_collect as bench

TICK = os.sysconf("SC_CLK_TCK")


def _process_tree(pid: int) -> list[int]:
    children: list[str] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile
            children += Path(f"/proc/{pid}/task/{task}/children").read_text().split()
    return [pid] + [p for child in children for p in _process_tree(int(child))]


def _threads(root: int) -> dict[str, tuple[str, int, int, int, int]]:
    """pid/tid -> (name, CPU ticks, system ticks, voluntary and involuntary context switches)."""
    out = {}
    for pid in _process_tree(root):
        for tid in os.listdir(f"/proc/{pid}/task"):
            base = f"/proc/{pid}/task/{tid}"
            try:
                stat = Path(f"{base}/stat").read_text().rsplit(")", 1)[1].split()
                status = dict(
                    line.split(":\t", 1) for line in Path(f"{base}/status").read_text().splitlines() if ":\t" in line
                )
                name = Path(f"{base}/comm").read_text().strip()
            except FileNotFoundError:
                continue
            out[f"{pid}/{tid}"] = (
                name,
                int(stat[11]) + int(stat[12]),
                int(stat[12]),
                int(status["voluntary_ctxt_switches"]),
                int(status["nonvoluntary_ctxt_switches"]),
            )
    return out


def main() -> None:
    bench.WORKERS = int(os.environ.get("WORKERS", "1"))
    bench.IN_FLIGHT = int(os.environ.get("IN_FLIGHT", "8"))
    if bench.WORKERS > 1:
        bench.COLLECTOR_SETTINGS["QIMING_COLLECT_WORKERS"] = str(bench.WORKERS)
    backends = sys.argv[1].split(",") if len(sys.argv) > 1 else ["JetStream", "PostgreSQL"]
    for backend in backends:
        with bench.backend_env(backend) as env, bench.collector(env) as server:
            assert server.process is not None
            pid = server.process.pid
            asyncio.run(bench.drive(server.address, bench.make_batches(20, 1000, seed=1)))
            batches = bench.make_batches(200, 1000, seed=random.randrange(1 << 30))
            before = _threads(pid)
            rate, events = asyncio.run(bench.drive(server.address, batches))
            after = _threads(pid)
            print(f"{backend}: {rate:,.0f} events/s")
            total = 0.0
            for key, (name, cpu, system, voluntary, involuntary) in sorted(after.items(), key=lambda kv: -kv[1][1]):
                _, cpu0, system0, voluntary0, involuntary0 = before.get(key, (name, 0, 0, 0, 0))
                micros = (cpu - cpu0) / TICK / events * 1e6
                total += micros
                if micros >= 0.1:
                    system_micros = (system - system0) / TICK / events * 1e6
                    print(
                        f"  {key:>14} {name:<14} {micros:5.1f} µs/event (system {system_micros:.1f});"
                        f" context switches per 1,000 events: {(voluntary - voluntary0) / events * 1000:.1f} voluntary,"
                        f" {(involuntary - involuntary0) / events * 1000:.1f} involuntary"
                    )
            print(f"  all threads: {total:.1f} µs/event")


if __name__ == "__main__":
    main()
