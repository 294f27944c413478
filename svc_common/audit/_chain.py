"""The audit chain's line format: each audited call is one JSON line carrying ``seq`` (from 1 in each file),
``prev`` (the previous line's ``mac``; :data:`GENESIS` for the first line of a chain) and ``mac``, an HMAC-SM3 under a
key derived from the keyring's pseudonym key. Editing, deleting, reordering or inserting a line breaks the chain at
that line, and nobody without the keyring can forge a line.

The first line of a file also names the file (``file``) and, when the file continues another one (rotation), that
file and its last seq (``prev_file``, ``prev_seq``; ``prev`` is then that file's last mac): a renamed, missing or
reordered file breaks the chain between files. Files written before this (session 14) have no ``file``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from svc_common.protection import Keyring
from svc_common.protection._sm import _derive, _hmac
from svc_common.server import AuditRecord
from svc_common.server._hooks import customer_parts

GENESIS = "0" * 64
"""``prev`` of a file's first line (an SM3 MAC is 64 hex digits)."""
KEY_LABEL = b"audit-chain"


def chain_key(keyring: Keyring) -> bytes:
    """The chain's MAC key: derived from the pseudonym key, which never rotates silently (SM4 keys do)."""
    return _derive(keyring.pseudonym_key, KEY_LABEL)


def canonical(body: dict[str, Any]) -> bytes:
    """The bytes a MAC covers: sorted keys, no blanks, UTF-8 (so a verifier re-encodes exactly)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class ChainMac:
    def __init__(self, key: bytes) -> None:
        self._mac = _hmac(key)

    def of(self, body: dict[str, Any]) -> str:
        """MAC over (prev, the line without ``mac``); ``prev`` is also inside the line."""
        return self.text_mac(body.get("prev", ""), canonical(body))

    def text_mac(self, prev: object, text: bytes) -> str:
        """:meth:`of`, given the line's ``canonical`` text (without ``mac``) already."""
        mac = self._mac.copy()
        mac.update(str(prev).encode() + b"\n" + text)
        return mac.finalize().hex()


def record_bodies(record: AuditRecord) -> list[dict[str, Any]]:
    """The lines of one record, without seq/prev/mac: one, or one per part of at most 1,000 customers (as the
    ``qiming.audit`` log lines are split). Only customer ids are written, never values. ``detail`` (the facts the
    handler attached, each part's line has them) only when there are some: other lines are as they always were."""
    base: dict[str, Any] = {
        "at": record.at.isoformat(timespec="microseconds"),
        "principal": record.principal,
        "roles": list(record.roles),
        "method": record.method,
        "status": record.status,
        "peer": record.peer,
        "trace_id": record.trace_id,
    }
    if record.detail:
        base["detail"] = dict(record.detail)
    return [
        {**base, "customers": chunk, **({"part": part, "parts": parts} if parts else {})}
        for chunk, part, parts in customer_parts(record.customers)
    ]


def seal(macs: ChainMac, body: dict[str, Any], seq: int, prev: str) -> tuple[bytes, str]:
    """The finished line (with its newline) and its mac: ``canonical`` of the line with its ``mac``, byte for byte.

    Encoded once, not twice (the MAC's text, then the line's): keys sorted, the line is the keys before ``"mac"``,
    then ``"mac"``, then the keys after it, and each side is encoded on its own and the MAC's text is the two sides
    joined. On the audit writer's thread this is most of a line's cost (a 1,000-event ingest names up to 1,000
    customers), and that thread holds the GIL the gRPC loop needs."""
    full = {**body, "seq": seq, "prev": prev}
    if "mac" in full:  # not a record's body (one with a key of that name): the plain way
        mac = macs.of(full)
        full["mac"] = mac
        return canonical(full) + b"\n", mac
    # ``after`` holds "prev" and "seq" at least; ``before`` may be empty ("{}").
    before = canonical({key: value for key, value in full.items() if key < "mac"})
    after = canonical({key: value for key, value in full.items() if key > "mac"})
    head = before[:-1] + b"," if len(before) > 2 else b"{"
    mac = macs.text_mac(prev, head + after[1:])
    return head + b'"mac":"' + mac.encode() + b'",' + after[1:] + b"\n", mac


@dataclass(frozen=True)
class Verdict:
    """The result of checking one file: ``bad_line`` is None when the whole chain holds."""

    path: Path
    lines: int
    bad_line: int | None = None
    reason: str = ""
    last_seq: int = 0
    last_mac: str = GENESIS
    head: dict[str, Any] | None = None
    """Line 1's ``file``, ``prev_file``, ``prev_seq`` and ``prev`` when it holds (no ``file``: an older file)."""
    mark_mac: str | None = None
    """The mac of line ``mark`` (asked of :func:`verify_lines`), when the file reaches it."""

    @property
    def ok(self) -> bool:
        return self.bad_line is None


HEAD_FIELDS = ("file", "prev_file", "prev_seq")
"""Fields only the first line of a file has (see the module's doc)."""


def verify_lines(path: Path, lines: Iterable[bytes], macs: ChainMac, mark: int = 0) -> Verdict:
    """Walk the chain from :data:`GENESIS` (or from the file line 1 continues); stop at the first line that breaks
    it, saying why. ``mark``: also return the mac of that line (an anchor's)."""
    seq, prev, count, head, mark_mac = 0, GENESIS, 0, None, None
    for number, raw in enumerate(lines, start=1):
        if number == 1:
            prev = _continued_from(raw)
        why, mac, line = _check_line(raw, seq, prev, macs)
        if why is not None:
            return Verdict(path, count, number, why, seq, prev, head, mark_mac)
        if number == 1:
            head = {key: line[key] for key in (*HEAD_FIELDS, "prev") if key in line}
        if number == mark:
            mark_mac = mac
        seq, prev, count = seq + 1, mac, count + 1
    return Verdict(path, count, None, "", seq, prev, head, mark_mac)


def _continued_from(raw: bytes) -> str:
    """The ``prev`` line 1 may have: the mac it names when it continues another file (checked against that file by
    the directory's verification), else :data:`GENESIS`."""
    try:
        line = json.loads(raw)
    except ValueError:
        return GENESIS
    if isinstance(line, dict) and isinstance(line.get("prev_file"), str) and isinstance(line.get("prev"), str):
        return line["prev"]
    return GENESIS


def open_line(raw: bytes, macs: ChainMac) -> tuple[dict[str, Any] | None, str]:
    """A line whose mac holds, and its mac; else None and what is wrong with it: ``torn`` (no newline: a write cut
    short), ``malformed`` (no JSON object with seq, prev and mac) or ``mac`` (edited, or another keyring's)."""
    if not raw.endswith(b"\n"):
        return None, "torn"
    try:
        line = json.loads(raw)
        claimed = line.pop("mac")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, "malformed"
    if "seq" not in line or "prev" not in line:
        return None, "malformed"
    if macs.of(line) != claimed:
        return None, "mac"
    return line, claimed


_LINE_PROBLEMS = {
    "torn": "the last line is incomplete (a write cut short by a crash, or the file was truncated)",
    "malformed": "not an audit line (no JSON object with seq, prev and mac): edited or corrupted",
    "mac": "mac does not match: the line was edited, or it was written under another keyring",
}


def _check_line(raw: bytes, seq: int, prev: str, macs: ChainMac) -> tuple[str | None, str, dict[str, Any]]:
    """(why the line breaks the chain or None, its mac, the line) for the line that should follow ``seq`` and
    ``prev``."""
    line, claimed = open_line(raw, macs)
    if line is None:
        return _LINE_PROBLEMS[claimed], "", {}
    line_seq, line_prev = line["seq"], line["prev"]
    if line_seq != seq + 1:
        if isinstance(line_seq, int) and line_seq > seq + 1:
            return f"seq {line_seq} where {seq + 1} was expected: line(s) deleted before it", "", line
        return f"seq {line_seq} where {seq + 1} was expected: lines reordered or repeated", "", line
    if line_prev != prev:
        return "prev is not the mac of the line before it: lines deleted, reordered or spliced", "", line
    if seq > 0 and any(key in line for key in HEAD_FIELDS):
        return "a first line (it names a file) in the middle of the file: files spliced", "", line
    return None, claimed, line


def verify_file(path: Path, macs: ChainMac, mark: int = 0) -> Verdict:
    with path.open("rb") as handle:
        return verify_lines(path, handle, macs, mark)


def read_last_line(path: Path, block: int = 65536) -> bytes:
    """The file's last line with its newline (b"" for an empty file); a torn last line comes without one."""
    with path.open("rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        tail = b""
        position = end
        while position > 0:
            step = min(block, position)
            position -= step
            handle.seek(position)
            tail = handle.read(step) + tail
            # A newline before the final byte ends the line before the last one.
            if b"\n" in tail[:-1]:
                break
        cut = tail[:-1].rfind(b"\n")
        return tail[cut + 1 :]
