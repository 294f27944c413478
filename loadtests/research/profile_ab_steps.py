"""A/B of the CPU the log consumer's own thread spends on a batch: ``profile_batch_steps.py`` (this tree's script) run
against two source trees alternated (base, new, then new, base, ...), each in a process of its own with that tree on
PYTHONPATH; prints each run's per-batch lines and, at the end, the medians of the consumer thread's CPU per batch
("batch", the commit excluded where it runs on the pipeline's thread) and of its Python steps. On a shared machine
the thread's CPU time moves far less than the rate.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/profile_ab_steps.py --base /tmp/base-prof --new $PWD \
        [--rounds 4] [--events 100000] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

``--postgres``: an admin URL; each run gets a fresh database (``prof_steps_*``), dropped after it.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

SHOWN = ("batch", "writes here", "other", "hot.store")
KEYS = (*SHOWN, "pipeline job", "py.resolve", "py.fold", "py.evaluate", "hot.person_rows")
SCRIPT = Path(__file__).resolve().parent / "profile_batch_steps.py"
LINE = re.compile(r"^\s+(\S.*?)\s+([\d.]+) /\s+([\d.]+)$")


def run(tree: str, events: int, database_url: str) -> tuple[dict[str, float], str]:
    command = [sys.executable, str(SCRIPT), "--events", str(events)]
    if database_url:
        command += ["--database-url", database_url]
    env = {"PYTHONPATH": tree, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    cpu = {m.group(1): float(m.group(3)) for line in out.splitlines() if (m := LINE.match(line))}
    return cpu, out


@contextmanager
def database(admin_url: str, prefix: str = "prof_steps") -> Iterator[str]:
    """A fresh PostgreSQL database for one run ("" for SQLite: the script makes its own file)."""
    if not admin_url:
        yield ""
        return
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name}"))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--new", required=True)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--postgres", default="", help="an admin URL: each run gets a fresh database")
    parser.add_argument("--db-prefix", default="prof_steps", help="PostgreSQL: the fresh databases' name prefix")
    args = parser.parse_args()
    seen: dict[str, list[dict[str, float]]] = {"base": [], "new": []}
    for i in range(args.rounds):
        order = ("base", "new") if i % 2 == 0 else ("new", "base")
        for name in order:
            load = Path("/proc/loadavg").read_text().split()[0]
            with database(args.postgres, args.db_prefix) as url:
                cpu, out = run(getattr(args, name), args.events, url)
            seen[name].append(cpu)
            result = next(line for line in out.splitlines() if line.startswith("result"))
            print(f"round {i + 1} {name:4s} load {load}: {result}")
            print(
                "    consumer thread CPU ms / batch: "
                + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items() if k in SHOWN)
                + "; "
                + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items() if k.startswith("py."))
            )
    print("medians, CPU ms per batch of the consumer's thread (base -> new):")
    for key in KEYS:
        base = [c[key] for c in seen["base"] if key in c]
        new = [c[key] for c in seen["new"] if key in c]
        if base and new:
            b, n = statistics.median(base), statistics.median(new)
            print(f"  {key:16s} {b:7.1f} -> {n:7.1f}  ({n / b:.2f}x)")


if __name__ == "__main__":
    main()
