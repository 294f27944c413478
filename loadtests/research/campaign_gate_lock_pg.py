"""The policy gate's per-customer lock on PostgreSQL: the advisory lock (PostgreSQL's path) against the bucket rows
of ``campaign_gate_lock`` (the openGauss and Dameng path, forced here), A/B alternated in the same minutes.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/campaign_gate_lock_pg.py [--batch 200] [--batches 200]
        [--rounds 5]

Each batch is one transaction that locks ``--batch`` distinct random customers, inserts one row (as a batch of
sends writes: its commit waits for the WAL flush on every path) and commits; "none" is the same transaction
without the lock. Prints, per path and round, the wall and client
CPU milliseconds per batch and the WAL bytes per batch (the row lock marks each row it locks: WAL and dirty pages).
Uses its own database ``lock_gate_bench`` (dropped at the end).

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/campaign_gate_lock_pg.py drain [--timers 20000]
        [--batch-size 500] [--rounds 3]

The timer drain of ``bench_campaign_timers`` end to end (every timer sends a marketing push through the whole
gate), in process, on a fresh copy of one prepared template database (``lock_gate_tpl_<N>``) per run, A/B between
the two lock paths: wall seconds, this process's CPU seconds and every ``postgres`` process's CPU seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from svc_campaign import policy
from svc_campaign.policy import PolicyGate
from svc_campaign.store import SCHEMA, tables

ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
NAME = "lock_gate_bench"
PATHS = {"none": ([], []), "advisory": (["postgresql"], []), "rows": ([], ["postgresql"])}


def admin(sql: str) -> None:
    engine = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(sql))
    finally:
        engine.dispose()


def run(engine: sa.Engine, gate: PolicyGate, path: str, batch: int, batches: int) -> tuple[float, float, float]:
    policy.ADVISORY_LOCK_DIALECTS, policy.ROW_LOCK_DIALECTS = PATHS[path]
    customers = [[f"C{uuid.uuid4().hex[:12]}" for _ in range(batch)] for _ in range(batches)]
    with engine.connect() as conn:
        wal_before = conn.execute(sa.text("SELECT pg_current_wal_lsn()")).scalar()
    wall, cpu = time.perf_counter(), time.process_time()
    for users in customers:
        with engine.begin() as conn:
            gate.lock_customers(conn, users)
            conn.execute(sa.text("INSERT INTO lock_bench_write (n) VALUES (1)"))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    with engine.connect() as conn:
        wal = conn.execute(sa.text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), :b)"), {"b": wal_before}).scalar()
    return wall * 1000 / batches, cpu * 1000 / batches, float(wal) / batches


def drain(count: int, batch_size: int, rounds: int) -> None:
    sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1])]  # the drain's helpers
    import campaign_timers_pg_ab as ab

    template, run_name = f"lock_gate_tpl_{count}", "lock_gate_run"
    admin(f"DROP DATABASE IF EXISTS {template} WITH (FORCE)")
    admin(f"CREATE DATABASE {template}")
    url_of = ab.url_of
    service_of = ab.timers._service
    ab.timers._service = lambda data_dir, clock, **kw: service_of(data_dir, clock, database_url=url_of(template), **kw)
    print(f"prepare {count}: {ab.timers.prepare(Path(tempfile.mkdtemp(prefix='lock-gate-')), count):.1f} s")
    ab.timers._service = service_of
    admin(f"ALTER DATABASE {template} IS_TEMPLATE true")
    try:
        for round_no in range(rounds):
            for path in ("advisory", "rows"):
                policy.ADVISORY_LOCK_DIALECTS, policy.ROW_LOCK_DIALECTS = PATHS[path]
                admin(f"DROP DATABASE IF EXISTS {run_name} WITH (FORCE)")
                admin(f"CREATE DATABASE {run_name} TEMPLATE {template}")
                service, runtime = service_of(
                    Path(tempfile.mkdtemp(prefix="lock-gate-")),
                    ab.timers.SystemClock(),
                    database_url=url_of(run_name),
                    timer_batch_size=batch_size,
                )
                load = os.getloadavg()[0]
                wall, cpu, db_cpu, fired = time.perf_counter(), time.process_time(), ab.database_cpu(), 0
                while n := service.engine.fire_due_timers().timers_fired:
                    fired += n
                wall, cpu, db_cpu = time.perf_counter() - wall, time.process_time() - cpu, ab.database_cpu() - db_cpu
                runtime.database.dispose()
                print(
                    f"round {round_no} {path:8s} fired {fired} in {wall:5.1f} s wall, {cpu:5.1f} s CPU here, "
                    f"{db_cpu:5.1f} s postgres CPU (load {load:.2f} before)",
                    flush=True,
                )
    finally:
        admin(f"DROP DATABASE IF EXISTS {run_name} WITH (FORCE)")
        admin(f"ALTER DATABASE {template} IS_TEMPLATE false")
        admin(f"DROP DATABASE IF EXISTS {template} WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", nargs="?", choices=["statement", "drain"], default="statement")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--timers", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    if args.mode == "drain":
        drain(args.timers, args.batch_size, args.rounds)
        return
    admin(f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")
    admin(f"CREATE DATABASE {NAME}")
    engine = sa.create_engine(sa.engine.make_url(ADMIN).set(database=NAME))
    try:
        SCHEMA.migrations.upgrade(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE lock_bench_write (n INTEGER)"))
        gate = PolicyGate(tables, default_zone="Asia/Shanghai", requires_opt_in=False, sensitive=[])
        for path in PATHS:  # warm up: connections, statement caches, the table's pages
            run(engine, gate, path, args.batch, 20)
        print(f"load average before: {os.getloadavg()}")
        results: dict[str, list[tuple[float, float, float]]] = {path: [] for path in PATHS}
        for round_no in range(args.rounds):
            for path in PATHS:
                results[path].append(run(engine, gate, path, args.batch, args.batches))
                wall, cpu, wal = results[path][-1]
                print(f"round {round_no} {path:8s} {wall:6.2f} ms/batch wall {cpu:6.2f} ms client CPU {wal:8.0f} B WAL")
        print(f"load average after: {os.getloadavg()}")
        for path, rows in results.items():
            print(
                f"median {path:8s} {statistics.median(r[0] for r in rows):6.2f} ms wall "
                f"{statistics.median(r[1] for r in rows):6.2f} ms client CPU "
                f"{statistics.median(r[2] for r in rows):8.0f} B WAL per batch of {args.batch}"
            )
    finally:
        engine.dispose()
        admin(f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")


if __name__ == "__main__":
    main()
