"""The retained events' insert alone, through the service's own ``ProfileStore.insert_events`` and schema (the
tree on PYTHONPATH): STORED events first, then 10,000-event batches of random persons (of 20,000), times
random within a day (as ``bench_profile.py --only consume``), each batch its own transaction; prints the median
insert and commit ms (wall and this thread's CPU) over the batches.

    PYTHONPATH=<tree> .venv/bin/python <tree>/loadtests/research/profile_event_insert.py [--stored 200000]
        [--batches 8] [--database-url URL]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "loadtests"), str(ROOT / "tests")]

import bench_profile  # noqa: E402

TYPES = ["page_view"] * 9 + ["app_click"] * 5 + ["quote_view"] * 3 + ["fund_view", "login"]


def rows(n: int, rng: random.Random, persons: list[str], now: int) -> list[tuple]:
    out = []
    for _ in range(n):
        kind = rng.choice(TYPES)
        pid = rng.choice(persons)
        props = '{"product_category":["s","fund"]}' if kind == "fund_view" else "{}"
        out.append((str(uuid.uuid4()), pid, now - rng.randrange(86_400_000_000), kind, f"s-{pid[:4]}", kind, props))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stored", type=int, default=200_000)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    app = bench_profile.open_app(args.database_url, Path(tempfile.mkdtemp(prefix="profile-event-insert-")))
    store, database = app.core.store, app.core.database
    rng = random.Random(5)
    persons = [str(uuid.uuid4()) for _ in range(20_000)]
    now = time.time_ns() // 1000
    for _ in range(args.stored // 10_000):
        with database.connection(write=True) as conn:
            store.insert_events(conn, rows(10_000, rng, persons, now))
    timings = []
    for _ in range(args.batches):
        batch = rows(10_000, rng, persons, now)
        w0, c0 = time.perf_counter(), time.thread_time()
        with database.connection(write=True) as conn:
            store.insert_events(conn, batch)
            w1, c1 = time.perf_counter(), time.thread_time()
        w2, c2 = time.perf_counter(), time.thread_time()
        timings.append(((w1 - w0) * 1e3, (c1 - c0) * 1e3, (w2 - w1) * 1e3, (c2 - c1) * 1e3))
    med = [round(statistics.median(t[i] for t in timings), 1) for i in range(4)]
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"stored {args.stored}: insert {med[0]} ms ({med[1]} CPU), commit {med[2]} ms ({med[3]} CPU), load {load}")
    database.dispose()


if __name__ == "__main__":
    main()
