"""A/B of the log consumer's throughput: two source trees' ``bench_profile.py --only consume`` workload alternated
(base, new, then new, base, ...), each run in a process of its own with that tree first on PYTHONPATH, the load average
printed before each run (the machine is shared). PostgreSQL: a fresh database per run, dropped after.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/profile_ab_consume.py --base /tmp/base-prof --new $PWD \
        [--rounds 3] [--events 20000] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Besides the events/s and the process's CPU per 1,000 events (what the tree's ``bench_profile.py`` prints), each run
reports the CPU per 1,000 events of the consumer's thread (its ``submit`` of the timed batches and the last
``drain``) and of the pipeline's thread (the jobs handed to ``Pipeline.submit``: the commit, and the writes that run
with it): this script runs each tree's ``bench_consume`` in a child process (``--child``) with those two wrapped, so
the base tree needs no change. With a core free for each, the longer of the two threads sets the rate.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa


def child(tree: str, events: int, database_url: str) -> None:
    """In this process: ``tree``'s ``bench_consume`` with the two threads' CPU counted (printed as a dict)."""
    spec = importlib.util.spec_from_file_location("bench_profile", f"{tree}/loadtests/bench_profile.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    app = bench.open_app(database_url, Path(tempfile.mkdtemp(prefix="profile-ab-")))
    consumer, pipeline = app.consumer, app.core.pipeline
    cpu = {"consumer": 0.0, "pipeline": 0.0}
    lock = threading.Lock()
    timed = {"on": False}

    def counted(name, fn):
        def run(*args, **kwargs):
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                if timed["on"]:
                    with lock:
                        cpu[name] += time.thread_time() - start

        return run

    submit, drain, pipeline_submit = consumer.submit, consumer.drain, pipeline.submit

    def submit_timed(events, cursor):
        timed["on"] = cursor.startswith("c")  # the timed batches (w…: the untimed pass that creates the persons)
        return counted("consumer", submit)(events, cursor)

    consumer.submit = submit_timed
    consumer.drain = counted("consumer", drain)
    pipeline.submit = lambda job, opened=False: pipeline_submit(counted("pipeline", job), opened)
    result = bench.bench_consume(app, 20_000, events)
    n = result["events"]
    result["consumer_cpu_ms_per_1000"] = round(cpu["consumer"] * 1e6 / n, 1)
    result["pipeline_cpu_ms_per_1000"] = round(cpu["pipeline"] * 1e6 / n, 1)
    app.core.database.dispose()
    print(f"consume: {result}", flush=True)


def run(tree: str, events: int, database_url: str) -> dict:
    command = [sys.executable, __file__, "--child", tree, "--events", str(events)]
    if database_url:
        command += ["--database-url", database_url]
    env = {"PYTHONPATH": tree, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if "consume:" in line)
    return ast.literal_eval(line.partition("consume: ")[2])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base")
    parser.add_argument("--new")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--postgres", default="", help="an admin URL: each run gets a fresh database (PREFIX_*)")
    parser.add_argument("--db-prefix", default="prof_ab", help="PostgreSQL: the fresh databases' name prefix")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.events, args.database_url)
        return
    if not args.base or not args.new:
        parser.error("--base and --new are required")
    ratios = []
    for i in range(args.rounds):
        order = [("base", args.base), ("new", args.new)]
        if i % 2:
            order.reverse()
        got = {}
        for name, tree in order:
            load = Path("/proc/loadavg").read_text().split()[0]
            url, admin, db = "", None, ""
            if args.postgres:
                admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
                db = f"{args.db_prefix}_{uuid.uuid4().hex[:8]}"
                with admin.connect() as conn:
                    conn.execute(sa.text(f"CREATE DATABASE {db}"))
                url = sa.engine.make_url(args.postgres).set(database=db).render_as_string(hide_password=False)
            try:
                result = run(tree, args.events, url)
            finally:
                if admin is not None:
                    with admin.connect() as conn:
                        conn.execute(sa.text(f"DROP DATABASE {db}"))
                    admin.dispose()
            got[name] = result
            print(
                f"round {i + 1} {name:4s} load {load} -> {result['events_per_s']} events/s; CPU ms / 1,000 events: "
                f"process {result['cpu_ms_per_1000']}, consumer thread {result['consumer_cpu_ms_per_1000']}, "
                f"pipeline thread {result['pipeline_cpu_ms_per_1000']} (load after {result['load']})",
                flush=True,
            )
        b, n = got["base"], got["new"]
        ratio = (
            n["events_per_s"] / b["events_per_s"],
            b["cpu_ms_per_1000"] / n["cpu_ms_per_1000"],
            b["consumer_cpu_ms_per_1000"] / n["consumer_cpu_ms_per_1000"],
        )
        ratios.append(ratio)
        print(
            f"round {i + 1}: new / base {ratio[0]:.2f}x events/s; base / new {ratio[1]:.2f}x process CPU, "
            f"{ratio[2]:.2f}x consumer-thread CPU per event",
            flush=True,
        )
    print("ratios (events/s, process CPU, consumer-thread CPU):", [tuple(round(x, 2) for x in r) for r in ratios])
    print("medians:", tuple(round(statistics.median(r[k] for r in ratios), 2) for k in range(3)))


if __name__ == "__main__":
    main()
