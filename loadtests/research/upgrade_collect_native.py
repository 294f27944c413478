"""An upgrade of a collector from a release without the event check in C (``--base``) to this tree: the base takes
four events, then this tree's collector, on the same data directory, is sent them again (one changed) and a new one.
A re-sent event must be a DUPLICATE (its fingerprint, made from the same encoding, is the same), the changed one a
PAYLOAD_MISMATCH, whichever check answered.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/upgrade_collect_native.py --base b6f6730

The events: a plain one, one whose id is in upper case, one with a level-3 property (``amount_fen``, sealed) and
one with a fund-account identity (pseudonymized). Both collectors run as ``qiming serve collect`` processes on
SQLite (``--base`` extracted with ``git archive`` and put first on PYTHONPATH). Prints each call's results and what
this tree's collector said of its check at start.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from upgrade_jetstream_index import ROOT, ingest, run_upgrade

from svc_common.pb.qiming.common.v1 import event_pb2, types_pb2
from svc_common.process import ServerProcess

NOW_SECONDS = int(time.time())


def event(event_id: str, screen: str, **kinds: bool) -> event_pb2.Event:
    e = event_pb2.Event(event_id=event_id, event_type="page_view", user_id="c1001", channel=types_pb2.CHANNEL_APP)
    e.occurred_at.seconds = NOW_SECONDS  # the same time each time: a re-sent event is the same payload
    e.properties["screen"].string_value = screen
    if kinds.get("amount"):
        e.properties["amount_fen"].money_fen_value = 1_250_000
    if kinds.get("account"):
        e.identities.add(type=types_pb2.ID_TYPE_FUND_ACCOUNT, value="310000123456")
    return e


def scenario(root: Path, base: Path, revision: str) -> None:
    ids = [str(uuid.uuid4()) for _ in range(4)]
    ids[1] = ids[1].upper()

    def sent(changed: bool = False) -> list[event_pb2.Event]:
        return [
            event(ids[0], "trade" if changed else "home"),
            event(ids[1], "home"),
            event(ids[2], "trade", amount=True),
            event(ids[3], "mine", account=True),
        ]

    this_tree = "this tree, again, the first one changed, and a new one:"
    for tree, label, events in (
        (base, f"{revision}, first:", sent()),
        (ROOT, this_tree, [*sent(changed=True), event(str(uuid.uuid4()), "home")]),
    ):
        env = {"PYTHONPATH": str(tree), "QIMING_COLLECT_LOG_LEVEL": "INFO"}
        with ServerProcess("collect", env=env, work_dir=root / "collect") as server:
            ingest(server.address, label, events)
        if tree == ROOT:
            lines = [json.loads(line) for line in server.log_path.read_text().splitlines() if line.startswith("{")]
            said = [line["message"] for line in lines if "events are checked" in line.get("message", "")]
            print("this tree's collector at start:", said[-1] if said else "(no line)")


if __name__ == "__main__":
    run_upgrade(__doc__, scenario)
