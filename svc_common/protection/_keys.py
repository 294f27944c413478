"""Where keys come from. A keyring holds SM4 encryption keys by id (one active for new data, older ones
kept to read old data) and one pseudonym key, which never rotates silently: every service must derive
the same pseudonym for the same phone number, or joins across services break."""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from svc_common.errors import ConfigError

if TYPE_CHECKING:
    from svc_common.config import ServiceSettings

log = logging.getLogger("qiming.protection")

SM4_KEY_BYTES = 16
PSEUDONYM_KEY_BYTES = 32
KEYRING_FORMAT = 1


@dataclass(frozen=True)
class Keyring:
    active_key_id: str
    encryption_keys: dict[str, bytes]
    pseudonym_key: bytes

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": KEYRING_FORMAT,
                "active_key_id": self.active_key_id,
                "encryption_keys": {k: base64.b64encode(v).decode() for k, v in self.encryption_keys.items()},
                "pseudonym_key": base64.b64encode(self.pseudonym_key).decode(),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str, origin: str) -> Keyring:
        def bad(why: str) -> ConfigError:
            return ConfigError(f"keyring {origin}: {why}")

        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise bad(f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(doc, dict) or doc.get("format") != KEYRING_FORMAT:
            raise bad(f'expected a JSON object with "format": {KEYRING_FORMAT}')
        try:
            keys = {str(k): base64.b64decode(v, validate=True) for k, v in doc["encryption_keys"].items()}
            pseudonym = base64.b64decode(doc["pseudonym_key"], validate=True)
            active = str(doc["active_key_id"])
        except KeyError as exc:
            raise bad(f"missing {exc.args[0]!r}") from None
        except (ValueError, AttributeError, TypeError):
            raise bad("keys must be base64 strings") from None
        if active not in keys:
            raise bad(f"active_key_id {active!r} is not among encryption_keys {sorted(keys)}")
        for key_id, key in keys.items():
            if len(key) != SM4_KEY_BYTES:
                raise bad(f"encryption key {key_id!r} has {len(key)} bytes; SM4 keys have {SM4_KEY_BYTES}")
            if not key_id.isascii() or not key_id.replace("-", "").replace("_", "").isalnum() or len(key_id) > 32:
                raise bad(f"key id {key_id!r} must be 1-32 ASCII letters, digits, '-' or '_'")
        if len(pseudonym) < PSEUDONYM_KEY_BYTES:
            raise bad(f"pseudonym_key has {len(pseudonym)} bytes; at least {PSEUDONYM_KEY_BYTES} are required")
        return cls(active, keys, pseudonym)


def generate_keyring(key_id: str = "k1") -> Keyring:
    """Fresh random keys (from the OS's CSPRNG)."""
    return Keyring(key_id, {key_id: secrets.token_bytes(SM4_KEY_BYTES)}, secrets.token_bytes(PSEUDONYM_KEY_BYTES))


class KeyProvider(Protocol):
    """The source of keys. An HSM or a KMS plugs in here by implementing ``keyring()``."""

    def keyring(self) -> Keyring: ...


class JsonKeyProvider:
    """A keyring given as JSON text (e.g. injected into the environment by a secrets manager)."""

    def __init__(self, text: str, origin: str = "from the environment") -> None:
        self._keyring = Keyring.from_json(text, origin)

    def keyring(self) -> Keyring:
        return self._keyring


class FileKeyProvider:
    """A keyring file readable by its owner only (mode 0600); refused if group or others can read it."""

    def __init__(self, path: Path, create: bool = False) -> None:
        self.path = path
        if not path.exists():
            if not create:
                # ConfigError (exit 2): systemd does not restart it, a restart would not find the file either.
                raise ConfigError(f"keyring file {path} does not exist (create one with `qiming keyring init {path}`)")
            write_keyring_file(path, generate_keyring())
            log.warning(
                "generated a new keyring",
                extra={
                    "keyring_file": str(path),
                    "advice": "back it up: protected data cannot be read without it",
                },
            )
        try:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigError(
                    f"keyring file {path} is readable by group or others (mode {stat.filemode(mode)}); chmod 600 it"
                )
            text = path.read_text(encoding="utf-8")
        except OSError as exc:  # ConfigError (exit 2) too: a restart would not make it readable
            raise ConfigError(
                f"keyring file {path} cannot be read ({exc.strerror}); it must be owned by and readable by the "
                "service user"
            ) from None
        self._keyring = Keyring.from_json(text, str(path))

    def keyring(self) -> Keyring:
        return self._keyring


def write_keyring_file(path: Path, keyring: Keyring) -> bool:
    """Write ``keyring`` to a new file with mode 0600 (never readable by others, not even for a moment).

    The file appears whole or not at all: it is written under a temporary name, synced, then hard-linked
    into place, which fails if another process got there first. Returns False in that case (the other
    process's keyring stands and is the one to use).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(keyring.to_json() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    finally:
        temporary.unlink(missing_ok=True)


def key_provider_from_settings(settings: ServiceSettings, *, create: bool = True) -> KeyProvider:
    """``keyring_json`` if set, else ``keyring_file`` (must exist), else ``<data_dir>/keyring.json`` (created unless
    ``create`` is false: a reader of old data, such as ``qiming audit verify``, must never make a new keyring)."""
    if settings.keyring_json is not None:
        return JsonKeyProvider(settings.keyring_json.get_secret_value())
    if settings.keyring_file is not None:
        return FileKeyProvider(settings.keyring_file)
    return FileKeyProvider(settings.data_dir / "keyring.json", create=create)


# Key check values (review walk-sec 2026-12-06 F11). Every keyring is created with key id ``k1``: a service started
# with another keyring (a host that missed the shared file, a restored backup, a keyring regenerated in the data dir)
# failed every call on sealed data with INTERNAL, sealed new data under a different key with the same id, or (another
# pseudonym key) silently split every phone join. A key check value identifies a key without revealing it: the first
# bytes of HMAC-SM3 of a fixed label under the key, as payment systems' KCVs do.
KEY_CHECK_LABEL = b"qiming/key-check-value/v1"
KEY_CHECK_FORMAT = 1
PSEUDONYM_CHECK_NAME = "pseudonym_key"


def key_check_value(key: bytes) -> str:
    """16 hex digits that tell keys apart: equal for the same key, different (but for 2^-64) for another one."""
    from cryptography.hazmat.primitives import hashes, hmac

    mac = hmac.HMAC(key, hashes.SM3())
    mac.update(KEY_CHECK_LABEL)
    return mac.finalize()[:8].hex()


def key_check_values(keyring: Keyring) -> dict[str, str]:
    """The check value of each encryption key (by key id) and of the pseudonym key (``pseudonym_key``)."""
    values = {f"encryption_keys.{key_id}": key_check_value(key) for key_id, key in keyring.encryption_keys.items()}
    values[PSEUDONYM_CHECK_NAME] = key_check_value(keyring.pseudonym_key)
    return values


def key_check_path(settings: ServiceSettings) -> Path:
    return settings.data_dir / f"{settings.service_name}.keycheck.json"


def check_keyring_against_record(path: Path, keyring: Keyring, service: str) -> None:
    """Compare ``keyring`` with the check values recorded in ``path`` when this service first used each key; refuse
    (ConfigError, exit 2) a key whose id was recorded with other bytes. Keys seen for the first time (the first
    start, a key added by a rotation) are recorded; a recorded key the keyring no longer has is kept in the record
    (its data stays sealed under it)."""
    current = key_check_values(keyring)
    recorded: dict[str, str] = {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and doc.get("format") == KEY_CHECK_FORMAT and isinstance(doc.get("keys"), dict):
            recorded = {str(k): str(v) for k, v in doc["keys"].items()}
        else:
            raise ConfigError(f"key check file {path} is not in the expected format; move it away to record anew")
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"key check file {path} cannot be read ({exc}); move it away to record the current keyring anew"
        ) from None
    for name, value in recorded.items():
        if name in current and current[name] != value:
            what = "the pseudonym key" if name == PSEUDONYM_CHECK_NAME else f"encryption key {name.split('.', 1)[1]!r}"
            raise ConfigError(
                f"the keyring's {what} is not the one {service} used before (key check value {current[name]}, "
                f"recorded {value} in {path}): its data cannot be read or joined with this keyring; give this "
                "service the broker's keyring file (keyring_file), or, only for a new, empty database, delete the "
                "key check file"
            )
    if all(name in recorded for name in current):
        return
    try:
        _write_private(path, json.dumps({"format": KEY_CHECK_FORMAT, "keys": {**recorded, **current}}, indent=2))
    except OSError as exc:
        # A data dir the service cannot write to (PostgreSQL deployments need none): the check is skipped, said once.
        log.warning("cannot record key check values", extra={"key_check_file": str(path), "error": str(exc)})
        return
    added = sorted(name for name in current if name not in recorded)
    log.info("recorded key check values", extra={"key_check_file": str(path), "keys": added})


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` whole (a reader sees the old file or the new one), mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
