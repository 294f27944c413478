"""A/B of the log consumer's throughput: two source trees' ``bench_profile.py --only consume`` alternated (base,
new, then new, base, ...), each run in a process of its own with that tree first on PYTHONPATH, the load average
printed before each run (the machine is shared). PostgreSQL: a fresh database per run, dropped after.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/profile_ab_consume.py --base /tmp/base-prof --new $PWD \
        [--rounds 3] [--events 20000] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import uuid
from pathlib import Path

import sqlalchemy as sa


def run(tree: str, events: int, database_url: str) -> dict:
    command = [sys.executable, f"{tree}/loadtests/bench_profile.py", "--only", "consume", "--events", str(events)]
    if database_url:
        command += ["--database-url", database_url]
    env = {"PYTHONPATH": tree, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if "consume:" in line)
    return ast.literal_eval(line.partition("consume: ")[2])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--new", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--postgres", default="", help="an admin URL: each run gets a fresh database (prof_ab_*)")
    args = parser.parse_args()
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
                db = f"prof_ab_{uuid.uuid4().hex[:8]}"
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
                f"round {i + 1} {name:4s} load {load} -> {result['events_per_s']} events/s, "
                f"{result['cpu_ms_per_1000']} CPU ms / 1,000 events (load after {result['load']})",
                flush=True,
            )
        ratio = got["new"]["events_per_s"] / got["base"]["events_per_s"]
        cpu = got["base"]["cpu_ms_per_1000"] / got["new"]["cpu_ms_per_1000"]
        ratios.append((ratio, cpu))
        print(f"round {i + 1}: new / base {ratio:.2f}x events/s, base / new {cpu:.2f}x CPU per event", flush=True)
    print("ratios (events/s, CPU):", [(round(a, 2), round(b, 2)) for a, b in ratios])


if __name__ == "__main__":
    main()
