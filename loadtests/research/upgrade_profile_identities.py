"""svc_profile across 0.2.10's identity fixes: each tree's log consumer, on a database of its own, takes a device that
browsed 60 days ago and then signs up, a WeCom chat carrying a new WeCom id before a known fund account, and
``LinkIdentities`` of a new customer number to a known device.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/upgrade_profile_identities.py --base 4ad3b54

Each tree runs in a process of its own with its tree first on PYTHONPATH (``--base`` extracted with ``git archive``),
on SQLite, with one keyring. The base dates the new customer's account from the device's browsing (AT_RISK on the day
of the signup), gives the chat to a new profile, and answers the link NOT_FOUND; this tree: NEW, the customer's
event, linked.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DAY_US = 86_400_000_000


def steps(data_dir: str, keyring: str, label: str) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from profile_helpers import ANONYMOUS, event, ref

    from svc_common.config import load_settings
    from svc_common.pb.qiming.common.v1 import types_pb2
    from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
    from svc_common.runtime import ServiceRuntime
    from svc_profile.config import ProfileSettings
    from svc_profile.server import build_app
    from svc_profile.store import SCHEMA

    settings = load_settings(ProfileSettings, data_dir=Path(data_dir), keyring_json=keyring)
    runtime = ServiceRuntime.open(SCHEMA, settings)
    app = build_app(runtime)
    app.definitions.load()
    unmask = frozenset({"unmask"})
    now = time.time_ns() // 1000
    app.consumer.handle([event("page_view", anonymous_id="devA", at_us=now - 60 * DAY_US)], "c1")
    app.consumer.handle([event("signup", "C1", "devA", at_us=now)], "c2")
    stage = pb.LifecycleStage.Name(app.profiles.get(ref("C1"), [], unmask).lifecycle_stage)
    print(f"{label}, signup after 60 days of browsing: {stage}")
    fund = types_pb2.ID_TYPE_FUND_ACCOUNT
    trade = event("trade_filled", "C2")
    trade.identities.add(type=fund, value="310000123456")
    chat = event("wecom_chat")
    chat.identities.add(type=types_pb2.ID_TYPE_WECOM, value="wx-777")
    chat.identities.add(type=fund, value="310000123456")
    app.consumer.handle([trade], "c3")
    app.consumer.handle([chat], "c4")
    events = app.profiles.get(ref("C2"), [], unmask).features["events_total"].int_value
    print(f"{label}, chat with a new WeCom id and C2's fund account: C2 has {events} events")
    app.consumer.handle([event("page_view", anonymous_id="devB")], "c5")
    try:
        linked, _ = app.profiles.link(ref("C3"), types_pb2.Identity(type=ANONYMOUS, value="devB"), "", unmask)
        outcome = f"linked ({len(linked.identities)} ids on one profile)"
    except Exception as exc:  # the base's answer
        outcome = f"{type(exc).__name__}: {exc}"
    print(f"{label}, LinkIdentities(user C3 new, identity devB known): {outcome}")
    runtime.database.dispose()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    from upgrade_jetstream_index import run_each_tree

    run_each_tree(__doc__, __file__, steps)
