"""A real ``qiming serve collect``: a call leaves a chained audit line that ``qiming audit verify`` accepts, naming
the customer and never a level-3 value (and lines cut from the end are found against the file's anchor);
``audit_chain_dir = off`` writes none; an unwritable one stops the start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from collect_helpers import make_event

from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc

PHONE = "13912345678"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QIMING_")}
    return {
        **clean,
        "QIMING_COLLECT_DATA_DIR": str(tmp_path / "data"),
        "QIMING_COLLECT_GRPC_PORT": "0",
        "QIMING_COLLECT_GRPC_PORT_FILE": str(tmp_path / "port"),
        "QIMING_COLLECT_LOG_FORMAT": "json",
        **extra,
    }


def _qiming(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "svc_common.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def _serve_and_ingest(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "svc_common.cli", "serve", "collect"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        port_file = tmp_path / "port"
        deadline = time.monotonic() + 60
        while not port_file.exists():
            assert process.poll() is None, process.stdout.read() if process.stdout else b""
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.05)
        with grpc.insecure_channel(f"127.0.0.1:{port_file.read_text().strip()}") as channel:
            stub = collect_pb2_grpc.CollectServiceStub(channel)
            stub.Ingest(collect_pb2.IngestRequest(events=[make_event(user_id="c42", phone=PHONE)]), timeout=30)
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, out, b"")


def test_a_served_call_leaves_a_verifiable_chained_line(tmp_path: Path) -> None:
    env = _env(tmp_path)
    served = _serve_and_ingest(tmp_path, env)
    assert served.returncode == 0, served.stdout.decode()
    files = list((tmp_path / "data" / "audit").glob("audit-collect-*.jsonl"))
    assert len(files) == 1
    text = files[0].read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    ingest = [line for line in lines if line["method"] == "/qiming.collect.v1.CollectService/Ingest"]
    assert len(ingest) == 1 and ingest[0]["customers"] == ["c42"] and ingest[0]["status"] == "OK"
    assert PHONE not in text  # level-3 values never reach the audit file: only customer ids
    verified = _qiming("audit", "verify", str(tmp_path / "data" / "audit"), env=env)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.strip() == f"{files[0]}: OK, {len(lines)} lines (seq 1 to {len(lines)})"
    assert b'"audit chain closed"' in served.stdout  # the log records where the chain ended

    files[0].write_text("".join(text.splitlines(keepends=True)[:-1]))  # the last line cut off: its anchor says so
    cut = _qiming("audit", "verify", str(tmp_path / "data" / "audit"), env=env)
    assert cut.returncode == 1
    assert cut.stdout.strip() == (
        f"{files[0]}: the file ends at line {len(lines) - 1} but its anchor names line {len(lines)}: "
        "1 line was cut from the end"
    )

    files[0].write_text(text.replace('"c42"', '"c43"'))
    tampered = _qiming("audit", "verify", str(files[0]), env=env)
    assert tampered.returncode == 1 and ": line 1: mac does not match" in tampered.stdout


def test_audit_chain_dir_off_writes_no_file(tmp_path: Path) -> None:
    served = _serve_and_ingest(tmp_path, _env(tmp_path, QIMING_COLLECT_AUDIT_CHAIN_DIR="off"))
    assert served.returncode == 0, served.stdout.decode()
    assert not (tmp_path / "data" / "audit").exists()


def test_an_unwritable_audit_chain_dir_exits_2_with_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the directory should be")
    result = _qiming("serve", "collect", env=_env(tmp_path, QIMING_COLLECT_AUDIT_CHAIN_DIR=str(blocker / "audit")))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"qiming: error: audit_chain_dir {blocker / 'audit'}")
