"""The qiming command: bad settings and unreachable databases stop it with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def qiming(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QIMING_")}
    return subprocess.run(
        [sys.executable, "-m", "svc_common.cli", *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("qiming: error: ")
    return lines[0]


def test_bad_config_value_exits_2_naming_the_key(tmp_path: Path) -> None:
    result = qiming("serve", "collect", env={"QIMING_COLLECT_SHUTDOWN_GRACE_SECONDS": "soon"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "QIMING_COLLECT_SHUTDOWN_GRACE_SECONDS" in _one_error_line(result)


def test_bad_database_url_exits_2(tmp_path: Path) -> None:
    result = qiming("serve", "profile", env={"QIMING_PROFILE_DATABASE_URL": "oracle://x@y/z"}, cwd=tmp_path)
    assert result.returncode == 2
    line = _one_error_line(result)
    assert "QIMING_PROFILE_DATABASE_URL" in line and "unsupported database 'oracle'" in line


def test_a_database_url_whose_port_is_not_a_tcp_port_exits_2(tmp_path: Path) -> None:
    url = "postgresql+psycopg://qiming:hunter2@127.0.0.1:99999/qiming"
    result = qiming("config", "profile", env={"QIMING_PROFILE_DATABASE_URL": url}, cwd=tmp_path)
    assert result.returncode == 2  # was accepted, then retried for 31 s at start and exit 3
    line = _one_error_line(result)
    assert "port 99999 is not a TCP port (1 to 65535)" in line and "hunter2" not in line


def test_unreachable_database_exits_3_naming_it(tmp_path: Path) -> None:
    result = qiming(
        "serve",
        "campaign",
        env={
            "QIMING_CAMPAIGN_DATABASE_URL": "postgresql+psycopg://qiming:hunter2@127.0.0.1:1/campaign",
            "QIMING_CAMPAIGN_DATABASE_CONNECT_RETRIES": "0",
        },
        cwd=tmp_path,
    )
    assert result.returncode == 3
    line = _one_error_line(result)
    assert "127.0.0.1:1/campaign is unreachable" in line and "hunter2" not in line


def test_port_in_use_exits_3(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = qiming("serve", "modeling", env={"QIMING_MODELING_GRPC_PORT": str(port)}, cwd=tmp_path)
    assert result.returncode == 3
    last = result.stderr.strip().splitlines()[-1]
    assert f"cannot listen on 127.0.0.1:{port}" in last and f"(port {port} is in use by another process)" in last


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("not a host", "grpc_host 'not a host' is not a host name or address this machine can resolve"),
        ("192.0.2.1", "grpc_host 192.0.2.1 is not an address of this machine"),  # TEST-NET-1: never local
    ],
)
def test_a_host_the_server_cannot_listen_on_is_named_as_such(tmp_path: Path, host: str, why: str) -> None:
    env = {"QIMING_MODELING_GRPC_HOST": host, "QIMING_MODELING_GRPC_PORT": "0"}
    result = qiming("serve", "modeling", env=env, cwd=tmp_path)
    assert result.returncode == 3
    last = result.stderr.strip().splitlines()[-1]
    assert why in last and "in use" not in last


def test_migrate_then_config(tmp_path: Path) -> None:
    env = {f"QIMING_{s}_DATA_DIR": str(tmp_path) for s in ("COLLECT", "PROFILE", "CAMPAIGN", "MODELING")}
    result = qiming("migrate", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [
        "collect",
        "profile",
        "campaign",
        "modeling",
    ]
    from svc_collect.store import SCHEMA

    assert f"at revision {SCHEMA.migrations.head()}" in result.stdout
    assert (tmp_path / "collect.db").exists()
    shown = qiming("config", "collect", env={"QIMING_COLLECT_GRPC_PORT": "7001"}, cwd=tmp_path)
    assert shown.returncode == 0
    assert "QIMING_COLLECT_GRPC_PORT\n    [collect] grpc_port = 7001" in shown.stdout


@pytest.mark.parametrize("args", [[], ["serve"], ["migrate"], ["demo"], ["config"]])
def test_help_everywhere(args: list[str]) -> None:
    result = qiming(*args, "--help")
    assert result.returncode == 0 and "usage: qiming" in result.stdout


def test_keyring_init_creates_a_private_keyring_once(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    result = qiming("keyring", "init", str(path), "--key-id", "k2026")
    assert result.returncode == 0, result.stderr
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert '"active_key_id": "k2026"' in path.read_text()
    again = qiming("keyring", "init", str(path))
    assert again.returncode == 2
    assert "already exists" in _one_error_line(again)


def test_service_refuses_a_world_readable_keyring(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    assert qiming("keyring", "init", str(path)).returncode == 0
    path.chmod(0o644)
    env = {"QIMING_COLLECT_KEYRING_FILE": str(path), "QIMING_COLLECT_DATA_DIR": str(tmp_path)}
    result = qiming("serve", "collect", env=env, cwd=tmp_path)
    assert result.returncode == 2  # a restart cannot fix it: systemd must not loop
    assert "chmod 600" in _one_error_line(result)


def test_config_into_a_reader_that_stops_early_ends_quietly(tmp_path: Path) -> None:
    """`qiming config collect | head -1`: the reader closes the pipe; no BrokenPipeError traceback on stderr."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QIMING_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "svc_common.cli", "config", "collect"],
        env={**clean, "QIMING_COMMON_DATA_DIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith(b"# settings of collect")
    process.stdout.close()  # as `head -1` does after its line
    with process.stderr:
        stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) in (0, 141), stderr  # 0: everything fitted in the pipe before it closed
    assert "Traceback" not in stderr, stderr
