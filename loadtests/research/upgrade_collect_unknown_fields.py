"""An upgrade of a collector from a release that stored unknown fields (``--base``) to this tree, which refuses them
(``UNKNOWN_FIELD``, docs/collect.md "Validation"): the base takes a plain event and one whose ``properties`` entry
``id_number`` carries a third field (upb keeps the entry among the unknown fields, so the base stored it as sent);
this tree's collector, on the same data directory, is sent both again and a new event of the second kind, then
reads the log back as a reader without ``unmask`` does, and runs ``svc_collect.unknown_scan`` on it.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/upgrade_collect_unknown_fields.py --base a05fe85

Both collectors run as ``qiming serve collect`` processes on SQLite (``--base`` extracted with ``git archive`` and
put first on PYTHONPATH). Prints each call's results and, for each event read back, whether its bytes hold the
identity number.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from upgrade_collect_native import event
from upgrade_jetstream_index import ROOT, ingest, run_upgrade

from svc_collect import unknown_scan
from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import event_pb2
from svc_common.process import ServerProcess

ID_NUMBER = b"110101199003077777"


def leaky(event_id: str) -> event_pb2.Event:
    """An event whose properties entry ``id_number`` has a third field: upb keeps it whole as an unknown field."""
    value = b"\x0a" + bytes([len(ID_NUMBER)]) + ID_NUMBER  # Value.string_value
    entry = b"\x0a\x09id_number" + b"\x12" + bytes([len(value)]) + value + b"\x18\x01"
    extra = b"\x52" + bytes([len(entry)]) + entry  # Event.properties (field 10)
    return event_pb2.Event.FromString(event(event_id, "kyc").SerializeToString() + extra)


def scenario(root: Path, base: Path, revision: str) -> None:
    plain, old = str(uuid.uuid4()), str(uuid.uuid4())
    for tree, label, events in (
        (base, f"{revision}, first:", [event(plain, "home"), leaky(old)]),
        (ROOT, "this tree, the same two again and a new one of the second kind:", None),
    ):
        env = {"PYTHONPATH": str(tree)}
        with ServerProcess("collect", env=env, work_dir=root / "collect") as server:
            ingest(server.address, label, events or [event(plain, "home"), leaky(old), leaky(str(uuid.uuid4()))])
            if tree == ROOT:
                with grpc.insecure_channel(server.address) as channel:
                    pages = collect_pb2_grpc.CollectServiceStub(channel).ReadEvents(collect_pb2.ReadEventsRequest())
                    read = [e for page in pages for e in page.events]
                print("this tree, the log read back (no unmask):")
                for e in read:
                    held = "holds the identity number" if ID_NUMBER in e.SerializeToString() else "nothing unknown"
                    print(f"  {e.event_id[:8]}… {held}")
                print(f"python -m svc_collect.unknown_scan --address {server.address}:")
                sys.stdout.flush()
                status = unknown_scan.main(["--address", server.address])
                sys.stderr.flush()
                print(f"exit status {status}")


if __name__ == "__main__":
    run_upgrade(__doc__, scenario)
