"""Where the PostgreSQL acknowledgement tail comes from (issue 4: p99 < 20 ms for 100-event batches at 10,000/s).

Runs bench_collect's latency part on a fresh PostgreSQL database whose slow statements (> --slow-ms) the server
logs, prints each batch slower than --slow-ms with its time into the run, and the server's slow-statement lines
for that database (with their times), so a spike can be matched to a statement (COMMIT, a lookup, COPY).

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/collect_pg_latency_tail.py [--seconds 10] [--slow-ms 15]
        [--pgoptions "-c jit=off"]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench_collect  # noqa: E402

PG_LOG = Path("/var/log/postgresql/postgresql-15-main.log")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--slow-ms", type=int, default=15)
    parser.add_argument("--pgoptions", default="", help="PGOPTIONS for the collector's connections")
    args = parser.parse_args()
    if args.pgoptions:
        os.environ["PGOPTIONS"] = args.pgoptions
    log_start = PG_LOG.stat().st_size if PG_LOG.exists() else 0
    with bench_collect.postgres_database() as url:
        name = sa.engine.make_url(url).database
        admin = sa.create_engine(bench_collect.POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" SET log_min_duration_statement = {args.slow_ms}'))
        admin.dispose()
        with bench_collect.collector({"QIMING_COLLECT_DATABASE_URL": url}) as server:
            started = time.time()
            batches = bench_collect.make_batches(100 * args.seconds, 100)
            samples = asyncio.run(bench_collect.steady_latency_timeline(server.address, batches, 100))
    latencies = sorted(ms for _, ms in samples)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"{len(samples)} batches: p50 {statistics.median(latencies):.1f} ms, p99 {p99:.1f} ms, PGOPTIONS={args.pgoptions!r}")
    for at, ms in samples:
        if ms > args.slow_ms:
            print(f"  slow ack at {at:6.2f} s (wall {time.strftime('%H:%M:%S', time.gmtime(started + at))}"
                  f".{int((started + at) % 1 * 1000):03d}): {ms:.1f} ms")
    if PG_LOG.exists():
        with PG_LOG.open() as handle:
            handle.seek(log_start)
            lines = [line.rstrip() for line in handle if "duration:" in line or "checkpoint" in line]
        print(f"server lines (slow statements > {args.slow_ms} ms, checkpoints) since the run started:")
        for line in lines[-60:]:
            print("  " + line[:220])


if __name__ == "__main__":
    main()
