"""``workers``: several collector processes on one port (SO_REUSEPORT) under one parent that starts, stops and
watches them. Real processes, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc
import pytest

from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import event_pb2, ops_pb2, ops_pb2_grpc
from svc_common.process import ServerProcess

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT workers are Linux-only")
CHANNELS = 24


def _batch(user: str, size: int = 5) -> collect_pb2.IngestRequest:
    request = collect_pb2.IngestRequest()
    for _ in range(size):
        event = event_pb2.Event(event_id=str(uuid.uuid4()), event_type="page_view", user_id=user)
        event.occurred_at.GetCurrentTime()
        request.events.append(event)
    return request


def _two_workers(tmp_path: Path) -> dict[str, str]:
    """Two workers, the parent's temporary directory under ``tmp_path``: a parent killed by a test (SIGKILL) cannot
    remove it, and pytest's own clean-up then does."""
    temporary = tmp_path / "tmp"
    temporary.mkdir(exist_ok=True)
    return {"QIMING_COLLECT_WORKERS": "2", "TMPDIR": str(temporary)}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _workers(server: ServerProcess) -> list[int]:
    with grpc.insecure_channel(server.address) as channel:
        reply = ops_pb2_grpc.OpsServiceStub(channel).ListInstances(
            ops_pb2.ListInstancesRequest(service="collect"), timeout=5
        )
    return sorted(i.pid for i in reply.instances if not i.HasField("stopped_at"))


def _wait_gone(pids: list[int], seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def test_workers_share_the_port_and_the_log_and_stop_together(tmp_path: Path) -> None:
    server = ServerProcess("collect", work_dir=tmp_path, env=_two_workers(tmp_path)).start()
    try:
        pids = _workers(server)
        assert len(pids) == 2 and server.process is not None and server.process.pid not in pids
        accepted = 0
        for i in range(CHANNELS):  # a connection each: the kernel hands each to one worker
            options = [("grpc.use_local_subchannel_pool", 1)]
            with grpc.insecure_channel(server.address, options=options) as channel:
                reply = collect_pb2_grpc.CollectServiceStub(channel).Ingest(_batch(f"c{i}"), timeout=10)
                accepted += reply.accepted_count
        assert accepted == CHANNELS * 5
        with grpc.insecure_channel(server.address) as channel:
            read = collect_pb2_grpc.CollectServiceStub(channel).ReadEvents(
                collect_pb2.ReadEventsRequest(batch_size=1000), timeout=10
            )
            ids = [e.event_id for response in read for e in response.events]
        assert len(ids) == len(set(ids)) == CHANNELS * 5  # one log, each event once, whoever took it
        served_by = {
            line["pid"]
            for line in map(json.loads, server.log_path.read_text().splitlines())
            if line.get("message") == "audit" and line.get("rpc_method", "").endswith("/Ingest")
        }
        assert served_by == set(pids)  # both workers took calls
        assert server.terminate() == 0
        assert _wait_gone(pids)
    finally:
        server.kill()


def test_a_worker_that_dies_stops_the_others_and_the_parent_fails(tmp_path: Path) -> None:
    server = ServerProcess("collect", work_dir=tmp_path, env=_two_workers(tmp_path)).start()
    try:
        pids = _workers(server)
        os.kill(pids[0], signal.SIGKILL)
        assert server.process is not None
        assert server.process.wait(timeout=30) == 128 + signal.SIGKILL  # for the supervisor to restart the unit
        assert _wait_gone(pids)
    finally:
        server.kill()


def test_workers_do_not_outlive_a_killed_parent(tmp_path: Path) -> None:
    server = ServerProcess("collect", work_dir=tmp_path, env=_two_workers(tmp_path)).start()
    pids = _workers(server)
    server.kill()  # SIGKILL: the parent cannot pass anything on; the kernel tells the workers
    assert _wait_gone(pids)


def test_a_stop_during_start_up_ends_cleanly(tmp_path: Path) -> None:
    """SIGTERM while the workers are still starting (some without their signal handlers yet): exit 0, no worker
    left, no port file written."""
    server = ServerProcess("collect", work_dir=tmp_path, env=_two_workers(tmp_path))
    server.work_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "svc_common.cli", "serve", "collect"],
        env=server.env,
        cwd=server.work_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        children: list[int] = []
        while not children and time.monotonic() < deadline:
            children = [
                int(p.name)
                for p in Path("/proc").iterdir()
                if p.name.isdigit() and _parent_of(int(p.name)) == process.pid
            ]
            time.sleep(0.02)
        assert children, "the workers were never started"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert _wait_gone(children)
        assert not server.port_file.exists()
    finally:
        if process.poll() is None:
            process.kill()


def _parent_of(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, IndexError, ValueError):
        return -1


@pytest.mark.parametrize("backend", ["postgresql", "jetstream"])
def test_workers_on_a_shared_log_store_a_batch_sent_to_both_once(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The configured port (not 0) and a log that is not the embedded SQLite one: the same batch sent at once over
    many connections, so both workers take copies of it, is stored once, and exactly one answer accepts each event;
    the rest are duplicates (PostgreSQL: the unique index across workers; JetStream: the shard's expected sequence)."""
    from conftest import free_port

    port = free_port()
    env = _two_workers(tmp_path) | {"QIMING_COLLECT_GRPC_PORT": str(port)}
    if backend == "postgresql":
        env["QIMING_COLLECT_DATABASE_URL"] = request.getfixturevalue("database_url_postgresql")
    else:
        nats = request.getfixturevalue("jetstream_server")
        env |= {
            "QIMING_COLLECT_LOG_BACKEND": "jetstream",
            "QIMING_COLLECT_NATS_URL": nats.url,
            "QIMING_COLLECT_JETSTREAM_STREAM": f"w{uuid.uuid4().hex[:10]}",
            "QIMING_COLLECT_JETSTREAM_SUBJECT_PREFIX": f"w{uuid.uuid4().hex[:10]}",
        }
    server = ServerProcess("collect", work_dir=tmp_path, env=env).start()
    try:
        assert server.port == port
        pids = _workers(server)
        assert len(pids) == 2
        batches = [_batch(f"c{i}", size=50) for i in range(4)]
        channels = [
            grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
            for _ in range(CHANNELS)
        ]
        try:
            futures = [
                collect_pb2_grpc.CollectServiceStub(channel).Ingest.future(batches[i % len(batches)], timeout=30)
                for i, channel in enumerate(channels)
            ]
            replies = [f.result() for f in futures]
        finally:
            for channel in channels:
                channel.close()
        assert sum(r.accepted_count for r in replies) == 200  # each event accepted once, whichever worker
        assert sum(r.duplicate_count for r in replies) == (CHANNELS - 4) * 50
        assert sum(r.rejected_count for r in replies) == 0
        with grpc.insecure_channel(server.address) as channel:
            read = collect_pb2_grpc.CollectServiceStub(channel).ReadEvents(
                collect_pb2.ReadEventsRequest(batch_size=1000), timeout=10
            )
            ids = [e.event_id for response in read for e in response.events]
        assert sorted(ids) == sorted(e.event_id for b in batches for e in b.events)
        served_by = {
            line["pid"]
            for line in map(json.loads, server.log_path.read_text().splitlines())
            if line.get("message") == "audit" and line.get("rpc_method", "").endswith("/Ingest")
        }
        assert served_by == set(pids)
        assert server.terminate() == 0
    finally:
        server.kill()
