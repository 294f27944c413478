"""Seconds the collector spends in Python's cyclic garbage collector while it ingests a JetStream (c) run of the
bench, with the served default (``gc_young_threshold`` 10,000) and with Python's own 700.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/collect_gc_time.py [--events 200000]

The collector process loads a ``sitecustomize`` that times every collection (``gc.callbacks``) and writes the total
when it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

import bench_collect  # noqa: E402

SITECUSTOMIZE = """
import atexit, gc, os, sys, time
if "serve" in sys.argv:
    spent = [0.0, 0, 0.0]
    def _timed(phase, info):
        if phase == "start":
            spent[2] = time.perf_counter()
        else:
            spent[0] += time.perf_counter() - spent[2]
            spent[1] += 1
    gc.callbacks.append(_timed)
    atexit.register(lambda: open(os.environ["GC_TIME_FILE"], "w").write(f"{spent[0]:.3f} {spent[1]}"))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=200_000)
    events = parser.parse_args().events
    site = Path(tempfile.mkdtemp(prefix="qiming-gc-"))
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    os.environ["PYTHONPATH"] = f"{os.environ.get('PYTHONPATH', '')}{os.pathsep}{site}"
    for threshold in (700, 10_000, 700, 10_000):
        os.environ["GC_TIME_FILE"] = str(site / "spent")
        bench_collect.COLLECTOR_SETTINGS["QIMING_COLLECT_GC_YOUNG_THRESHOLD"] = str(threshold)
        with bench_collect.backend_env("JetStream") as env, bench_collect.collector(env) as server:
            batches = bench_collect.make_batches(events // 1000, 1000, seed=random.randrange(1 << 30))
            rate = asyncio.run(bench_collect.drive(server.address, batches))[0]
        seconds, collections = (site / "spent").read_text().split()
        print(f"gc_young_threshold {threshold:>6}: {rate:>8,.0f} events/s, {seconds} s in {collections} collections")


if __name__ == "__main__":
    main()
