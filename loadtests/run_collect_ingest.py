"""One run of the collect ingest load test: start a collector, run Locust headless, check the log, stop the collector.

    .venv/bin/python loadtests/run_collect_ingest.py --batch-size 1000 --events 1000000 --users 8

``make load-collect`` calls this. The collector is ``qiming serve collect`` on a free port in a temporary data
directory (SQLite), started with ``svc_common.process.ServerProcess``; ``QIMING_COLLECT_*`` variables in the
environment are passed on (``QIMING_COLLECT_DATABASE_URL`` for PostgreSQL). With ``--host`` nothing is started and
the run goes to that deployment. Arguments after ``--`` go to Locust as they are.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from svc_common.process import ServerProcess

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "collect_ingest.py"
# ServerProcess sets these itself; a value inherited from the shell would point the collector elsewhere.
_OWN_SETTINGS = ("QIMING_COLLECT_GRPC_PORT", "QIMING_COLLECT_GRPC_PORT_FILE", "QIMING_COLLECT_DATA_DIR")


def _arguments(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--batch-size", type=int, default=1000, help="events per Ingest call (default 1000)")
    parser.add_argument("--events", type=int, default=1_000_000, help="events to send (default 1,000,000)")
    parser.add_argument("--users", type=int, default=8, help="Locust users, each one client (default 8)")
    parser.add_argument("--spawn-rate", type=float, default=0, help="users started per second (default: all at once)")
    parser.add_argument("--host", help="an existing collector, e.g. 10.0.0.5:50051 (default: start one here)")
    parser.add_argument("--reports-dir", type=Path, default=HERE / "reports", help="default loadtests/reports")
    parser.add_argument("--keep-data", action="store_true", help="keep the collector's data directory")
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    return parser.parse_args(argv), extra


def _latency_summary(stats_csv: Path) -> str:
    """p50/p99 of the Ingest calls from Locust's CSV (the figures the README's table quotes)."""
    if not stats_csv.exists():
        return f"(no {stats_csv.name})"
    with stats_csv.open(newline="") as f:
        rows = {row["Name"]: row for row in csv.DictReader(f)}
    row = rows.get("Aggregated")
    if row is None:
        return "(no calls recorded)"
    return (
        f"Locust: {int(row['Request Count']):,} calls, {int(row['Failure Count']):,} failed, "
        f"{float(row['Requests/s']):,.1f} calls/s; latency p50 {row['50%']} ms, p90 {row['90%']} ms, "
        f"p99 {row['99%']} ms, max {float(row['Max Response Time']):,.0f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    args, locust_extra = _arguments(argv)
    name = f"collect_ingest_b{args.batch_size}"
    args.reports_dir.mkdir(parents=True, exist_ok=True)
    prefix = args.reports_dir / name
    server: ServerProcess | None = None
    host = args.host
    if host is None:
        env = {k: v for k, v in os.environ.items() if k.startswith("QIMING_COLLECT_") and k not in _OWN_SETTINGS}
        server = ServerProcess("collect", env=env).start()
        host = server.address
        print(f"collector {host} (data and log in {server.work_dir})", flush=True)
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--users",
        str(args.users),
        "--spawn-rate",
        str(args.spawn_rate or args.users),
        "--host",
        host,
        "--csv",
        str(prefix),
        "--html",
        f"{prefix}.html",
        "--batch-size",
        str(args.batch_size),
        "--events",
        str(args.events),
        "--ids-dir",
        f"{prefix}_ids",
        *locust_extra,
    ]
    print("$ " + " ".join(command), flush=True)
    started = time.monotonic()
    code = 1
    try:
        code = subprocess.run(command, check=False).returncode
    finally:
        if server is not None:
            server_code = server.terminate()
            if server_code != 0:
                print(f"the collector exited with {server_code}:\n{server.log_tail()}", flush=True)
                code = code or 1
            if code == 0 and not args.keep_data:
                shutil.rmtree(server.work_dir, ignore_errors=True)
            else:
                print(f"collector data kept in {server.work_dir}", flush=True)
    print(_latency_summary(Path(f"{prefix}_stats.csv")))
    print(f"reports: {prefix}_stats.csv, {prefix}.html; ids: {prefix}_ids/ ({time.monotonic() - started:.0f} s in all)")
    return code


if __name__ == "__main__":
    sys.exit(main())
