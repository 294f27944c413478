"""An upgrade of a collector across 0.2.6's record of the ``sensitive_properties`` setting (docs/collect.md, "Changing a
property's level"): ``--base`` stores an event whose ``risk_answer`` no setting names yet; the operator then adds
``risk_answer`` to ``sensitive_properties``. ``--base`` restarted with it, then this tree on the same data directory
(its migration ``collect_0006`` runs at start), each read the log back as a reader without ``unmask`` does (svc_profile,
svc_modeling); this tree also stores a new event.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/upgrade_collect_sensitive_names.py --base 94439a4

Both collectors run as ``qiming serve collect`` processes on SQLite (``--base`` extracted with ``git archive`` and put
first on PYTHONPATH). Prints each call's results and each event read back: its properties and ``masked_fields``.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from upgrade_collect_native import event
from upgrade_jetstream_index import ROOT, ingest, run_upgrade

from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import event_pb2
from svc_common.process import ServerProcess
from svc_common.protection import DEFAULT_SENSITIVE_PROPERTIES

NAME = "risk_answer"


def survey(event_id: str, answer: str) -> event_pb2.Event:
    e = event(event_id, "survey")
    e.properties[NAME].string_value = answer
    return e


def read_back(address: str, label: str) -> None:
    with grpc.insecure_channel(address) as channel:
        pages = collect_pb2_grpc.CollectServiceStub(channel).ReadEvents(collect_pb2.ReadEventsRequest())
        read = [e for page in pages for e in page.events]
    print(label)
    for e in read:
        values = {k: v.string_value for k, v in sorted(e.properties.items())}
        print(f"  {e.event_id[:8]}… properties {values} masked_fields {list(e.masked_fields)}")


def scenario(root: Path, base: Path, revision: str) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    before = [n for n in DEFAULT_SENSITIVE_PROPERTIES if n != NAME]
    steps = (
        (base, before, f"{revision}, {NAME} in no setting:", [survey(first, "ZZ-1")]),
        (base, [*before, NAME], f"{revision} restarted with {NAME} added to sensitive_properties:", None),
        (ROOT, [*before, NAME], "this tree, the same setting, a new event:", [survey(second, "ZZ-2")]),
    )
    for tree, names, label, events in steps:
        env = {"PYTHONPATH": str(tree), "QIMING_COLLECT_SENSITIVE_PROPERTIES": json.dumps(names)}
        with ServerProcess("collect", env=env, work_dir=root / "collect") as server:
            if events:
                ingest(server.address, label, events)
            else:
                print(label)
            read_back(server.address, "  the log read back (no unmask):")


if __name__ == "__main__":
    run_upgrade(__doc__, scenario)
