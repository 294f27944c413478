"""A file or directory the service user cannot use (a keyring, config, span or port file, the data directory) is a
configuration mistake: one `qiming: error:` line naming it and exit 2, which systemd does not restart
(RestartPreventExitStatus=2). They were tracebacks with exit 1, restarted every 10 s for ever. A directory stands
in for an unreadable file here: the tests may run as root, whom file modes do not stop."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import _one_error_line, qiming


def _serve(service: str, tmp_path: Path, **env: str) -> tuple[int, str]:
    prefix = f"QIMING_{service.upper()}_"
    settings = {"GRPC_PORT": "0", "DATA_DIR": str(tmp_path / "data"), **env}
    result = qiming("serve", service, env={prefix + k: v for k, v in settings.items()}, cwd=tmp_path)
    if "GRPC_PORT_FILE" in env:  # the port file is written once serving: the start-up's log lines come first
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("qiming: error: ") and "Traceback" not in result.stderr, result.stderr
        return result.returncode, last
    return result.returncode, _one_error_line(result)


def test_an_unreadable_keyring_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "keyring.json").mkdir(mode=0o700)
    code, line = _serve("collect", tmp_path, KEYRING_FILE=str(tmp_path / "keyring.json"))
    assert code == 2
    assert f"keyring file {tmp_path / 'keyring.json'} cannot be read (Is a directory)" in line


def test_an_unreadable_config_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "qiming.toml").mkdir()
    result = qiming("config", "collect", "--config", str(tmp_path / "qiming.toml"), cwd=tmp_path)
    assert result.returncode == 2
    assert f"config file {tmp_path / 'qiming.toml'} cannot be read (Is a directory)" in _one_error_line(result)


def test_a_data_dir_that_cannot_be_made_exits_2(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file where the directory should be")
    code, line = _serve("profile", tmp_path, DATA_DIR=str(tmp_path / "taken" / "data"))
    assert code == 2
    assert f"cannot create the directory {tmp_path / 'taken' / 'data'} of the SQLite database" in line


def test_an_unwritable_span_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "spans").mkdir()
    code, line = _serve("campaign", tmp_path, TELEMETRY_EXPORTER="file", TELEMETRY_FILE_PATH=str(tmp_path / "spans"))
    assert code == 2
    assert f"telemetry_file_path {tmp_path / 'spans'} cannot be opened for appending" in line


def test_an_unwritable_port_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "run").write_text("a file where the directory should be")
    code, line = _serve("modeling", tmp_path, GRPC_PORT_FILE=str(tmp_path / "run" / "modeling.port"))
    assert code == 2
    assert f"grpc_port_file {tmp_path / 'run' / 'modeling.port'} cannot be written" in line


@pytest.mark.parametrize("setting", ["DATA_DIR", "KEYRING_FILE", "GRPC_PORT_FILE", "TELEMETRY_FILE_PATH"])
def test_a_path_setting_starting_with_a_tilde_means_the_home_directory(tmp_path: Path, setting: str) -> None:
    result = qiming("config", "collect", env={"HOME": str(tmp_path), f"QIMING_COLLECT_{setting}": "~/q"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (line,) = [x for x in result.stdout.splitlines() if f"] {setting.lower()} = " in x]
    assert str(tmp_path / "q") in line and "~" not in line
