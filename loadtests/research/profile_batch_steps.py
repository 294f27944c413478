"""Where a log batch's time goes: ``bench_profile.py --only consume``'s workload with timers around the store's
statements and the commit, per batch (wall ms and this thread's CPU ms), for the tree on PYTHONPATH.

    PYTHONPATH=<tree> .venv/bin/python <tree>/loadtests/research/profile_batch_steps.py [--events 40000]
        [--stored 0] [--database-url URL]

``--stored N``: N more events consumed first (untimed), so the retained-events table holds that many rows more
(its insert grows with it). Step times are measured inside ``BatchConsumer.handle`` (``submit`` where the tree has
it); "other" is the rest of the batch (Python: resolving, folding, evaluating, caching). With the consumer's
pipeline, the store's write methods only buffer their statements: "writes here" is where they run on the
consumer's thread (with any wait for the batch before), and "pipeline job" the commit (with, on PostgreSQL, the
writes) on the pipeline's thread, beside the next batch; "other" there is the batch less the steps listed but the
commit. Under "other", the ``py.*`` lines time the consumer's Python steps: resolving ids, folding the events into the
features, and evaluating lifecycle, tags and segments (``Engine.refresh``, its reads included).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "loadtests"), str(ROOT / "tests")]

import bench_profile  # noqa: E402

STEPS = (
    "insert_events",
    "add_days",
    "write_features",
    "upsert_tags",
    "delete_tags",
    "load_days",
    "load_persons",
    "tag_rows",
    "load_members",
    "save_cursor",
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--stored", type=int, default=0)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="profile-steps-"))
    try:
        measure(args, bench_profile.open_app(args.database_url, data_dir))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)  # its database: 100-300 MB a run


def measure(args: argparse.Namespace, app: Any) -> None:
    if args.stored:
        bench_profile.bench_consume(app, 20_000, args.stored)
    wall: dict[str, float] = defaultdict(float)
    cpu: dict[str, float] = defaultdict(float)
    state = {"on": False, "batches": 0}

    def timed(name, fn):
        def run(*a, **k):
            w, c = time.perf_counter(), time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                if state["on"]:
                    wall[name] += time.perf_counter() - w
                    cpu[name] += time.thread_time() - c

        return run

    def handle(events, cursor):  # only the timed batches (cursors c0, c1, ...; w… create the persons)
        state["on"] = cursor.startswith("c")
        state["batches"] += state["on"]
        return batch(events, cursor)

    store = app.core.store
    for name in STEPS:
        setattr(store, name, timed(name, getattr(store, name)))
    hot = app.core.hot
    for name in ("add_days", "day_rows", "store", "person_rows"):  # the hot cache's own work (where it exists)
        if hasattr(hot, name):
            setattr(hot, name, timed(f"hot.{name}", getattr(hot, name)))
    consumer = app.consumer  # the Python steps of the consumer's thread (inside "other" below)
    for owner, name, label in (
        (consumer.resolver, "resolve", "py.resolve"),
        (consumer.updater, "apply", "py.fold"),
        (app.core.engine, "refresh", "py.evaluate"),
    ):
        setattr(owner, name, timed(label, getattr(owner, name)))
    dialect = app.core.database.engine.dialect
    dialect.do_commit = timed("commit", dialect.do_commit)
    pipeline = getattr(app.core, "pipeline", None)
    if pipeline is not None:  # the commit (and on PostgreSQL the writes) on the pipeline's thread; the writes here
        from svc_profile import pipeline as module

        module.BatchConnection.now = timed("writes here", module.BatchConnection.now)
        # Handing the batch's writes to the pipeline: on SQLite their rows staged (store/_stage.py), on this thread.
        module.BatchConnection.commit_later = timed("py.hand_over", module.BatchConnection.commit_later)
        submit = pipeline.submit
        pipeline.submit = lambda job, opened=False: submit(timed("pipeline job", job), opened)
    entry = "submit" if hasattr(app.consumer, "submit") else "handle"  # submit: the commit on the pipeline's thread
    batch = timed("batch", getattr(app.consumer, entry))
    setattr(app.consumer, entry, handle)
    result = bench_profile.bench_consume(app, 20_000, args.events)
    batches = state["batches"]
    print(f"result {result}; per batch of {result['batch']} (ms wall / ms CPU), {batches} batches timed:")
    steps = [*STEPS, "commit", "writes here", *(n for n in wall if n.startswith("hot."))]
    python = [n for n in wall if n.startswith("py.")]  # inside "other" (py.evaluate holds some of the steps above)
    share = 1 / batches * 1000
    for name in steps:
        if wall[name]:
            print(f"  {name:15s} {wall[name] * share:7.1f} / {cpu[name] * share:7.1f}")
    inside = [n for n in steps if pipeline is None or n != "commit"]  # the commit: on the pipeline's thread
    other_w = wall["batch"] - sum(wall[n] for n in inside)
    other_c = cpu["batch"] - sum(cpu[n] for n in inside)
    print(f"  {'other':15s} {other_w * share:7.1f} / {other_c * share:7.1f}")
    for name in python:
        print(f"    {name:13s} {wall[name] * share:7.1f} / {cpu[name] * share:7.1f}")
    print(f"  {'batch':15s} {wall['batch'] * share:7.1f} / {cpu['batch'] * share:7.1f}")
    if wall["pipeline job"]:  # on its own thread, beside the next batch ("commit" above is part of it)
        print(f"  {'pipeline job':15s} {wall['pipeline job'] * share:7.1f} / {cpu['pipeline job'] * share:7.1f}")


if __name__ == "__main__":
    main()
