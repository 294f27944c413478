"""The sealed anchor of an audit file: a small sidecar (``<file stem>.anchor``) naming the file's last synced line
(``seq`` and ``mac``), MAC'd under a key derived from the chain key. The writer renews it after each fsync of the file
(write a temporary file, fsync, rename), so lines cut from the end of the file leave the file shorter than its anchor
says, which ``qiming audit verify`` reports.

Crash consistency: the anchor is renewed only after the lines it names were fsynced, so after a crash it is at most
behind the file (by the lines of the last sync), never ahead. It is created (at seq 0) before its file: every file
written by this release has one, and a missing anchor is a finding, not a crash. At rotation, the old file's last
anchor names the next file (``next``): deleting the newest files is found from the file before them.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from svc_common.audit._chain import canonical
from svc_common.protection._sm import _derive, _hmac

ANCHOR_SUFFIX = ".anchor"
ANCHOR_LABEL = b"audit-anchor"


def anchor_path(path: Path) -> Path:
    """``audit-….jsonl`` → ``audit-….anchor`` (not matched by ``audit-*.jsonl``)."""
    return path.with_suffix(ANCHOR_SUFFIX)


@dataclass(frozen=True)
class Anchor:
    file: str
    """The name of the file it anchors (a renamed or copied anchor names another file)."""
    seq: int
    """The file's last synced line (0: none yet)."""
    mac: str
    """That line's mac (at seq 0: the ``prev`` of the file's first line)."""
    at: str
    """When it was written (UTC): an anchor restored from an old copy shows its age here."""
    next: str | None = None
    """The file the chain went on in (written at rotation); None while the file is written to or after a stop."""
    prev_file: str | None = None
    """The file this one continues (as its first line says), so that a restart can write that line into an empty
    file."""
    prev_seq: int | None = None


class AnchorSeal:
    """Writes and reads anchors under a key derived from the chain key."""

    def __init__(self, chain_key: bytes) -> None:
        self._mac = _hmac(_derive(chain_key, ANCHOR_LABEL))

    def _of(self, body: dict[str, Any]) -> str:
        mac = self._mac.copy()
        mac.update(canonical(body))
        return mac.finalize().hex()

    def write(self, path: Path, anchor: Anchor) -> None:
        """Replace ``path`` atomically (temporary file, fsync, rename): a crash leaves the old anchor or the new one."""
        body = {k: v for k, v in asdict(anchor).items() if v is not None}
        data = canonical({**body, "anchor_mac": self._of(body)}) + b"\n"
        temporary = path.with_name(f".{path.name}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.write(descriptor, data)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)

    def read(self, path: Path) -> Anchor | str:
        """The anchor, or why it cannot be trusted (``missing``, or a sentence)."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return "missing"
        except OSError as exc:
            return f"cannot be read ({exc.strerror})"
        try:
            body = json.loads(raw)
            claimed = body.pop("anchor_mac")
            anchor = Anchor(**body)
        except (ValueError, KeyError, TypeError, AttributeError):
            return "is not an anchor (edited or corrupted)"
        if self._of(body) != claimed or not isinstance(anchor.seq, int):
            return "has a mac that does not match (edited, or written under another keyring)"
        return anchor


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def sync_directory(directory: Path) -> None:
    """fsync a directory, so that a file created or renamed in it survives a power loss."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some file systems refuse fsync on a directory
            os.fsync(descriptor)
    finally:
        os.close(descriptor)
