"""``qiming audit verify PATH...``: check audit files against the keyring, one line of output per file: its lines,
its anchor, and the links between a process's files (``_verify``)."""

from __future__ import annotations

import re
from pathlib import Path

from svc_common.audit._anchor import AnchorSeal
from svc_common.audit._chain import ChainMac, Verdict, chain_key
from svc_common.audit._verify import verify_paths
from svc_common.errors import ConfigError

_SERVICE_OF_FILE = re.compile(r"audit-([a-z]+)-")


def verify_command(paths: list[Path], config_file: Path | None, keyring_file: Path | None) -> int:
    """Print OK or what is wrong for each file; 0 when all hold, 1 otherwise. A directory's files are checked as
    the sequences their processes wrote (each file continues the one before it)."""
    files: list[Path] = []
    directories: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("audit-*.jsonl"))
            if not found and not any(path.glob("audit-*.anchor")):
                raise ConfigError(f"{path}: no audit-*.jsonl files in this directory")
            files.extend(found)
            directories.append(path)
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(f"{path}: no such file or directory")
    keys: dict[str, tuple[ChainMac, AnchorSeal]] = {}

    def keys_of(path: Path) -> tuple[ChainMac, AnchorSeal]:
        service = _service_of(path)
        if service not in keys:
            key = _key(service, config_file, keyring_file)
            keys[service] = (ChainMac(key), AnchorSeal(key))
        return keys[service]

    out, ok = verify_paths(list(dict.fromkeys(files)), directories, keys_of)
    for line in out:
        print(line)
    return 0 if ok else 1


def describe(verdict: Verdict) -> str:
    """One file's lines alone (without its anchor or neighbours)."""
    if verdict.ok:
        return f"{verdict.path}: OK, {verdict.lines} lines (seq 1 to {verdict.last_seq})"
    held = (
        "no line before it"
        if verdict.lines == 0
        else "the line before it holds"
        if verdict.lines == 1
        else (f"the {verdict.lines} lines before it hold")
    )
    return f"{verdict.path}: line {verdict.bad_line}: {verdict.reason} ({held})"


def _service_of(path: Path) -> str:
    """The service whose keyring settings apply: named in the file name (``all``: the suite reads collect's)."""
    from svc_common.suite import SERVICE_NAMES

    match = _SERVICE_OF_FILE.match(path.name)
    service = match.group(1) if match else ""
    return service if service in SERVICE_NAMES else SERVICE_NAMES[0]


def _key(service: str, config_file: Path | None, keyring_file: Path | None) -> bytes:
    from svc_common.config import load_settings
    from svc_common.protection import FileKeyProvider, key_provider_from_settings
    from svc_common.suite import entries

    if keyring_file is not None:
        return chain_key(FileKeyProvider(keyring_file).keyring())
    settings = load_settings(entries([service])[0].settings_class, config_file)
    # Never create a keyring here: a new one would only make every line fail.
    return chain_key(key_provider_from_settings(settings, create=False).keyring())
