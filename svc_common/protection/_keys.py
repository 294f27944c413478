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


def key_provider_from_settings(settings: ServiceSettings) -> KeyProvider:
    """``keyring_json`` if set, else ``keyring_file`` (must exist), else ``<data_dir>/keyring.json`` (created)."""
    if settings.keyring_json is not None:
        return JsonKeyProvider(settings.keyring_json.get_secret_value())
    if settings.keyring_file is not None:
        return FileKeyProvider(settings.keyring_file)
    return FileKeyProvider(settings.data_dir / "keyring.json", create=True)
