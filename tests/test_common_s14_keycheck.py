"""A service refuses to start with keys other than those it used before (review walk-sec 2026-12-06 F11: with a new
keyring under the same key id ``k1`` it started, then failed every call on sealed data with INTERNAL and sealed new
data under another ``k1``; another pseudonym key silently split every phone join)."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from profile_helpers import profile_settings

from svc_common.errors import ConfigError
from svc_common.protection import Keyring, generate_keyring
from svc_common.protection._keys import key_check_path, key_check_value
from svc_common.runtime import ServiceRuntime
from svc_profile.store import SCHEMA


def _open(tmp_path: Path, keyring: Keyring) -> None:
    runtime = ServiceRuntime.open(SCHEMA, profile_settings(tmp_path, keyring_json=keyring.to_json()))
    runtime.database.dispose()


def _record(tmp_path: Path) -> dict[str, str]:
    path = key_check_path(profile_settings(tmp_path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return json.loads(path.read_text())["keys"]


def test_the_first_start_records_check_values_never_the_keys(tmp_path: Path) -> None:
    keyring = generate_keyring()
    _open(tmp_path, keyring)
    record = _record(tmp_path)
    assert record == {
        "encryption_keys.k1": key_check_value(keyring.encryption_keys["k1"]),
        "pseudonym_key": key_check_value(keyring.pseudonym_key),
    }
    text = key_check_path(profile_settings(tmp_path)).read_text()
    for key in (keyring.encryption_keys["k1"], keyring.pseudonym_key):
        assert base64.b64encode(key).decode() not in text and key.hex() not in text
    _open(tmp_path, keyring)  # the same keyring again: starts


def test_another_key_under_a_recorded_id_is_refused_naming_the_id(tmp_path: Path) -> None:
    keyring = generate_keyring()
    _open(tmp_path, keyring)
    other = dataclasses.replace(generate_keyring(), pseudonym_key=keyring.pseudonym_key)
    with pytest.raises(ConfigError) as raised:
        _open(tmp_path, other)
    message = str(raised.value)
    assert "encryption key 'k1'" in message and "profile" in message and "keyring_file" in message


def test_another_pseudonym_key_is_refused(tmp_path: Path) -> None:
    keyring = generate_keyring()
    _open(tmp_path, keyring)
    with pytest.raises(ConfigError) as raised:
        _open(tmp_path, dataclasses.replace(keyring, pseudonym_key=os.urandom(32)))
    assert "pseudonym key" in str(raised.value)


def test_a_key_added_by_rotation_is_recorded_when_first_seen_and_a_retired_one_stays(tmp_path: Path) -> None:
    keyring = generate_keyring()
    _open(tmp_path, keyring)
    k2 = os.urandom(16)
    _open(tmp_path, Keyring("k2", {**keyring.encryption_keys, "k2": k2}, keyring.pseudonym_key))
    assert _record(tmp_path)["encryption_keys.k2"] == key_check_value(k2)
    _open(tmp_path, Keyring("k2", {"k2": k2}, keyring.pseudonym_key))
    assert set(_record(tmp_path)) == {"encryption_keys.k1", "encryption_keys.k2", "pseudonym_key"}
    with pytest.raises(ConfigError):
        _open(tmp_path, Keyring("k2", {"k2": os.urandom(16)}, keyring.pseudonym_key))


def test_qiming_serve_exits_2_with_one_error_line(tmp_path: Path) -> None:
    _open(tmp_path, generate_keyring())
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QIMING_")}
    env = {
        **clean,
        "QIMING_PROFILE_DATA_DIR": str(tmp_path),
        "QIMING_PROFILE_KEYRING_JSON": generate_keyring().to_json(),
        "QIMING_PROFILE_GRPC_PORT": "0",
    }
    result = subprocess.run(
        [sys.executable, "-m", "svc_common.cli", "serve", "profile"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("qiming: error: ")]
    assert len(errors) == 1 and "'k1'" in errors[0], result.stderr
    assert "serving" not in result.stderr


def test_a_second_host_with_another_keyring_on_the_same_database_is_refused(tmp_path: Path, database_url) -> None:
    """Each host has its own data_dir (and key check file); the database records the keys too (``profile_key_check``):
    a fail-over node installed with another keyring must not seal new data beside the first host's."""
    keyring = generate_keyring()
    runtime = ServiceRuntime.open(
        SCHEMA, profile_settings(tmp_path / "host-a", database_url, keyring_json=keyring.to_json())
    )
    runtime.database.dispose()
    other = generate_keyring()
    with pytest.raises(ConfigError) as raised:
        ServiceRuntime.open(SCHEMA, profile_settings(tmp_path / "host-b", database_url, keyring_json=other.to_json()))
    message = str(raised.value)
    assert "profile's database" in message and "profile_key_check" in message and "keyring_file" in message
    assert key_check_value(other.encryption_keys["k1"]) in message  # the check value, never the key
    # The first host's keyring on a new host starts; a rotation's new key is recorded beside the old ones.
    rotated = Keyring("k2", {**keyring.encryption_keys, "k2": os.urandom(16)}, keyring.pseudonym_key)
    runtime = ServiceRuntime.open(
        SCHEMA, profile_settings(tmp_path / "host-c", database_url, keyring_json=rotated.to_json())
    )
    with runtime.database.connection() as conn:
        names = {r.key_name for r in conn.execute(SCHEMA.key_check_table.select())}
    runtime.database.dispose()
    assert names == {"encryption_keys.k1", "encryption_keys.k2", "pseudonym_key"}
