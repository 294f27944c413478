"""The client's instructions per fired timer on PostgreSQL (callgrind): a measure of svc_campaign's own work per timer
that the load of a shared machine does not move (its CPU seconds swing by 20-30 % between runs minutes apart).

    # a template prepared by campaign_timers_pg_ab.py (prepare --timers 100000 --prefix P) with the same checkout
    PYTHONPATH=$PWD .venv/bin/python loadtests/research/campaign_timers_instructions.py --prefix P --batches 10

A copy of the template is fired in-process under ``valgrind --tool=callgrind`` with instrumentation off; after three
warm-up batches (caches, prepared statements) ``callgrind_control`` turns it on for ``--batches`` batches of
``--timer-batch`` timers (one loop, as ``campaign_timers_pg_ab.py inprocess``) and dumps the count. Only the
client's user-space instructions count: not the database's work, not the kernel's, not the waits. The journeys,
the policy and the templates are read once (``journey_refresh_seconds`` of an hour): under valgrind's slowdown the
half-second refresh of the bench would come round every batch. ``PYTHONHASHSEED=0``: repeat runs agree within 0.1 %.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))


def child(prefix: str, batches: int, batch: int, flags: Path) -> None:
    """Under valgrind: warm up, wait for ``go``, fire, say ``done``, wait for ``exit``."""
    import bench_campaign_timers as timers
    import campaign_timers_pg_ab as ab

    from svc_campaign.config import CampaignSettings
    from svc_campaign.profiles import NoProfiles
    from svc_campaign.service import CampaignService
    from svc_campaign.store import SCHEMA, tables
    from svc_common.config import load_settings
    from svc_common.runtime import ServiceRuntime

    ab.PREFIX = prefix
    name, url = ab.copy(100_000)
    try:
        values = load_settings(
            CampaignSettings,
            data_dir=Path(tempfile.mkdtemp(prefix="camp-instructions-")),
            journey_refresh_seconds=3600,
            database_url=url,
            timer_batch_size=batch,
        )
        runtime = ServiceRuntime.open(SCHEMA, values)
        service = CampaignService(values, runtime.database, tables, clock=timers.SystemClock(), profiles=NoProfiles())
        for _ in range(3):
            service.engine.fire_due_timers()
        (flags / "ready").touch()
        while not (flags / "go").exists():
            time.sleep(0.05)
        fired = sum(service.engine.fire_due_timers().timers_fired for _ in range(batches))
        (flags / "fired").write_text(str(fired))
        (flags / "done").touch()
        while not (flags / "exit").exists():
            time.sleep(0.05)
        runtime.database.dispose()
    finally:
        ab.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_for(path: Path, process: subprocess.Popen[bytes]) -> None:
    while not path.exists():
        if process.poll() is not None:
            raise SystemExit(f"the fired process ended early (exit {process.returncode})")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--prefix", default="camp")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--timer-batch", type=int, default=200)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.prefix, args.batches, args.timer_batch, args.child)
        return
    flags = Path(tempfile.mkdtemp(prefix="camp-instructions-"))
    out = flags / "callgrind.out"
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}.%p",
        sys.executable,
        __file__,
        *("--prefix", args.prefix, "--batches", str(args.batches), "--timer-batch", str(args.timer_batch)),
        *("--child", str(flags)),
    ]
    process = subprocess.Popen(
        command, env={**os.environ, "PYTHONHASHSEED": "0"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    control = ["callgrind_control"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
    wait_for(flags / "ready", process)
    subprocess.run([*control, "--zero", str(process.pid)], **quiet)
    subprocess.run([*control, "--instr=on", str(process.pid)], **quiet)
    (flags / "go").touch()
    wait_for(flags / "done", process)
    subprocess.run([*control, "--dump", str(process.pid)], **quiet)
    (flags / "exit").touch()
    process.wait()
    dump = next(flags.glob("callgrind.out.*.1"))
    total = next(int(line.split()[1]) for line in dump.read_text().splitlines() if line.startswith("summary:"))
    fired = int((flags / "fired").read_text())
    print(f"{fired} timers fired in {args.batches} batches: {total:,} instructions, {total // fired:,} a timer")


if __name__ == "__main__":
    main()
