"""An upgrade of svc_profile across 0.2.8's coverage of funnels and paths: ``--base``'s log consumer, with
``event_retention_days`` 30, consumes two customers' fund visits (K1's 40 days ago, K2's 2 days ago; the daily purge
has not run), and each tree answers the same funnel over all time on that database.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/upgrade_profile_retained_since.py --base 94cd1a9

Each tree runs in a process of its own with its tree first on PYTHONPATH (``--base`` extracted with ``git archive``),
on SQLite, with one keyring. The base counts K1's visit, past the retention, because the purge has not reached it;
this tree counts from the retained horizon and says so (``retained_since``, ``range_truncated``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DAY_US = 86_400_000_000


def _app(data_dir: str, keyring: str):
    from svc_common.config import load_settings
    from svc_common.runtime import ServiceRuntime
    from svc_profile.config import ProfileSettings
    from svc_profile.server import build_app
    from svc_profile.store import SCHEMA

    settings = load_settings(
        ProfileSettings, data_dir=Path(data_dir), keyring_json=keyring, event_retention_days=30, finance_pack=False
    )
    runtime = ServiceRuntime.open(SCHEMA, settings)
    app = build_app(runtime)
    app.definitions.load()
    return app, runtime


def consume(data_dir: str, keyring: str, now_us: int) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from profile_helpers import event

    app, runtime = _app(data_dir, keyring)
    batch = []
    for customer, days in (("K1", 40), ("K2", 2)):
        at = now_us - days * DAY_US
        batch += [event("fund_view", customer, at_us=at), event("fund_buy", customer, at_us=at + 60_000_000)]
    app.consumer.handle(batch, "c1")
    runtime.database.dispose()


def answer(data_dir: str, keyring: str, label: str) -> None:
    from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
    from svc_profile.analytics_server import AnalyticsServicer

    app, runtime = _app(data_dir, keyring)
    steps = [pb.FunnelStep(event_type="fund_view"), pb.FunnelStep(event_type="fund_buy")]
    request = pb.ComputeFunnelRequest(steps=steps, conversion_window_seconds=3600)
    response = asyncio.run(AnalyticsServicer(app).ComputeFunnel(request, None))
    counts = [s.count for s in response.results[0].steps]
    print(f"{label}: steps {counts}", end="")
    if "retained_since" in type(response).DESCRIPTOR.fields_by_name:  # 0.2.8 on
        days = (time.time_ns() // 1000 - response.retained_since.ToMicroseconds()) / DAY_US
        print(f", retained_since {days:.0f} days ago, range_truncated {response.range_truncated}", end="")
    print()
    runtime.database.dispose()


def run(tree: Path, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run([sys.executable, __file__, *args], check=True, env=env)


def scenario(root: Path, base: Path, revision: str) -> None:
    from svc_common.protection import generate_keyring

    keyring, data_dir = generate_keyring().to_json(), str(root / "profile")
    run(base, "consume", data_dir, keyring, str(time.time_ns() // 1000))
    run(base, "answer", data_dir, keyring, f"{revision}, all time")
    run(ROOT, "answer", data_dir, keyring, "this tree, all time")


if __name__ == "__main__":
    if sys.argv[1:2] == ["consume"]:
        consume(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1:2] == ["answer"]:
        answer(*sys.argv[2:5])
    else:
        sys.path.insert(0, str(Path(__file__).parent))
        from upgrade_jetstream_index import run_upgrade

        run_upgrade(__doc__, scenario)
