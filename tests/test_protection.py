"""SM4-GCM sealing, HMAC-SM3 pseudonyms and fingerprints, and the keyring providers."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from svc_collect.config import CollectSettings
from svc_common.config import load_settings
from svc_common.errors import ConfigError
from svc_common.protection import (
    FileKeyProvider,
    Fingerprinter,
    JsonKeyProvider,
    Keyring,
    Pseudonymizer,
    Sealer,
    generate_keyring,
    key_provider_from_settings,
)
from svc_common.protection._sm import SealError


def _provider(ring: Keyring) -> JsonKeyProvider:
    return JsonKeyProvider(ring.to_json())


def test_seal_round_trip_and_binding_to_context() -> None:
    sealer = Sealer(_provider(generate_keyring()))
    sealed = sealer.seal(b"110101199001011234", context=b"event-1")
    assert b"110101199001011234" not in sealed
    assert sealer.open(sealed, context=b"event-1") == b"110101199001011234"
    assert sealer.seal(b"x", b"c") != sealer.seal(b"x", b"c")  # fresh nonce each time
    with pytest.raises(SealError, match="integrity"):
        sealer.open(sealed, context=b"event-2")  # copied onto another row
    tampered = bytearray(sealed)
    tampered[-20] ^= 1
    with pytest.raises(SealError, match="integrity"):
        sealer.open(bytes(tampered), context=b"event-1")


def test_old_keys_still_open_after_rotation() -> None:
    old = generate_keyring("k1")
    sealed = Sealer(_provider(old)).seal(b"secret")
    rotated = Keyring("k2", {**old.encryption_keys, "k2": os.urandom(16)}, old.pseudonym_key)
    sealer = Sealer(_provider(rotated))
    assert sealer.key_id_of(sealer.seal(b"new")) == "k2"
    assert sealer.open(sealed) == b"secret"
    without_k1 = Keyring("k2", {"k2": rotated.encryption_keys["k2"]}, old.pseudonym_key)
    with pytest.raises(SealError, match="'k1'"):
        Sealer(_provider(without_k1)).open(sealed)


def test_pseudonyms_are_stable_keyed_and_namespaced() -> None:
    ring = generate_keyring()
    a, b = Pseudonymizer(_provider(ring)), Pseudonymizer(_provider(ring))
    assert a.pseudonymize("phone", "13800138000") == b.pseudonymize("phone", "13800138000")
    assert a.pseudonymize("phone", "13800138000") != a.pseudonymize("fund_account", "13800138000")
    other = Pseudonymizer(_provider(generate_keyring()))
    assert other.pseudonymize("phone", "13800138000") != a.pseudonymize("phone", "13800138000")
    assert Pseudonymizer.is_pseudonym(a.pseudonymize("phone", "1"))
    assert not Pseudonymizer.is_pseudonym("13800138000")
    # A fingerprint of the same bytes is not the pseudonym of them: keys are separated by purpose.
    assert Fingerprinter(_provider(ring)).fingerprint(b"phone\x001") not in a.pseudonymize("phone", "1")


def test_keyring_json_errors_name_the_problem() -> None:
    ring = json.loads(generate_keyring().to_json())
    with pytest.raises(ConfigError, match="not valid JSON"):
        JsonKeyProvider("{")
    with pytest.raises(ConfigError, match="active_key_id 'nope'"):
        JsonKeyProvider(json.dumps({**ring, "active_key_id": "nope"}))
    with pytest.raises(ConfigError, match="SM4 keys have 16"):
        JsonKeyProvider(json.dumps({**ring, "encryption_keys": {"k1": "AAAA"}}))
    with pytest.raises(ConfigError, match="missing 'pseudonym_key'"):
        JsonKeyProvider(json.dumps({k: v for k, v in ring.items() if k != "pseudonym_key"}))


def test_keyring_file_is_created_private_and_refused_when_readable(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "keyring.json"
    with pytest.raises(ConfigError, match="does not exist"):  # exit 2: systemd must not loop on it
        FileKeyProvider(path)
    created = FileKeyProvider(path, create=True).keyring()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert FileKeyProvider(path).keyring() == created
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        FileKeyProvider(path)


def test_settings_choose_the_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(CollectSettings, data_dir=tmp_path)
    default = key_provider_from_settings(settings).keyring()
    assert (tmp_path / "keyring.json").exists()
    ring = generate_keyring("env1")
    monkeypatch.setenv("QIMING_COLLECT_KEYRING_JSON", ring.to_json())
    from_env = key_provider_from_settings(load_settings(CollectSettings, data_dir=tmp_path))
    assert from_env.keyring() == ring != default
    assert "env1" not in repr(load_settings(CollectSettings))  # a secret is never printed


def test_concurrent_first_starts_agree_on_one_keyring(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "keyring.json"
    with ThreadPoolExecutor(8) as pool:
        rings = list(pool.map(lambda _: FileKeyProvider(path, create=True).keyring(), range(16)))
    assert all(ring == rings[0] for ring in rings)
    assert [p.name for p in tmp_path.iterdir()] == ["keyring.json"]  # no temporary files left behind
