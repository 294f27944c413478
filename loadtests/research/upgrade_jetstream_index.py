"""An upgrade of a JetStream collector across a change of its de-duplication index: a collector of ``--base`` takes
two events, then this tree's collector, started on the same data directory and stream (it rebuilds its index from
the packs the first one wrote), is sent the same two again, one of them changed, and a new one.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/upgrade_jetstream_index.py --base 6b2dd68

Both run as ``qiming serve collect`` processes (``--base`` extracted with ``git archive`` and put first on
PYTHONPATH) against a nats-server of the script's own. Prints each call's results.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc

from svc_collect.natsd import NatsServer
from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import errors_pb2, event_pb2
from svc_common.process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]


NOW_SECONDS = int(time.time())


def event(event_id: str, screen: str) -> event_pb2.Event:
    e = event_pb2.Event(event_id=event_id, event_type="page_view", user_id="c1001")
    e.occurred_at.seconds = NOW_SECONDS  # the same time each time: a re-sent event is the same payload
    e.properties["screen"].string_value = screen
    return e


def ingest(address: str, label: str, events: list[event_pb2.Event]) -> None:
    with grpc.insecure_channel(address) as channel:
        reply = collect_pb2_grpc.CollectServiceStub(channel).Ingest(collect_pb2.IngestRequest(events=events))
    print(label)
    for r in reply.results:
        reason = f" {errors_pb2.ErrorReason.Name(r.reason)}" if r.reason else ""
        print(f"  {r.event_id[:8]}… {collect_pb2.EventStatus.Name(r.status)}{reason} at {r.cursor}")


def extract_tree(revision: str, root: Path) -> Path:
    """The tree of ``revision`` (``git archive``), unpacked in ``root/base``."""
    base = root / "base"
    base.mkdir()
    archive = subprocess.run(["git", "archive", revision], check=True, capture_output=True, cwd=ROOT).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tree:
        tree.extractall(base, filter="data")
    return base


def run_upgrade(doc: str, scenario: Callable[[Path, Path, str], None]) -> None:
    """The upgrade scripts' frame: ``--base REV`` from the command line (``doc`` its help), a temporary directory
    and the base tree extracted in it, then ``scenario(directory, base tree, REV)``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the commit the first collector runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qiming-upgrade-") as tmp:
        root = Path(tmp)
        scenario(root, extract_tree(args.base, root), args.base)


def run_each_tree(doc: str, script: str, step: Callable[[str, str, str], None]) -> None:
    """The frame of the scripts that run one ``step`` in each tree (the base first), each in a process of its own with
    that tree first on PYTHONPATH, on a data directory of its own, with one keyring: ``script step DIR KEYRING LABEL``
    runs ``step(DIR, KEYRING, LABEL)``; anything else is ``--base REV`` (``run_upgrade``)."""
    if sys.argv[1:2] == ["step"]:
        step(*sys.argv[2:5])
        return

    def both(root: Path, base: Path, revision: str) -> None:
        from svc_common.protection import generate_keyring

        keyring = generate_keyring().to_json()
        for tree, name, label in ((base, "base", revision), (ROOT, "this", "this tree")):
            env = {**os.environ, "PYTHONPATH": str(tree)}
            subprocess.run([sys.executable, script, "step", str(root / name), keyring, label], check=True, env=env)

    run_upgrade(doc, both)


def scenario(root: Path, base: Path, revision: str) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    with NatsServer(root / "nats") as nats:
        env = {"QIMING_COLLECT_LOG_BACKEND": "jetstream", "QIMING_COLLECT_NATS_URL": nats.url}
        for tree, calls in (
            (base, [("first", [event(a, "home"), event(b, "fund_detail")])]),
            (ROOT, [("again, b changed", [event(a, "home"), event(b, "trade"), event(str(uuid.uuid4()), "home")])]),
        ):
            server = ServerProcess("collect", env={**env, "PYTHONPATH": str(tree)}, work_dir=root / "collect")
            with server:
                name = revision if tree == base else "this tree"
                for label, events in calls:
                    ingest(server.address, f"{name}, {label}:", events)


if __name__ == "__main__":
    run_upgrade(__doc__, scenario)
