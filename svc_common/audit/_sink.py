"""The chained audit file of one process, written on a background thread.

A call's audit lines are queued (no disk wait on the call's path); one writer thread takes them in order, chains
them and writes them. After each batch it flushes to the OS (a crash of the process loses only lines still queued)
and fsyncs at most every :data:`FSYNC_INTERVAL_SECONDS` (a power loss loses at most that much); ``close()`` writes
everything queued and fsyncs.

File: ``audit-<service>-<host>-<worker>-<start UTC>.jsonl`` in ``audit_chain_dir``. A process continues the newest
file of its own service, host and worker index when its last line is whole and verifies (seq and prev go on); else
it starts a new file and logs a WARNING: a file is never truncated or rewritten. A file held by a live process (an
exclusive ``flock``) is never shared: a second process of the same name starts its own file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import queue
import re
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from svc_common.audit._chain import GENESIS, ChainMac, open_line, read_last_line, record_bodies, seal
from svc_common.errors import ConfigError
from svc_common.server import AuditRecord, AuditSink

log = logging.getLogger("qiming.audit")

FSYNC_INTERVAL_SECONDS = 0.2
WORKER_INDEX_ENV = "QIMING_WORKER_INDEX"
_STOP = object()


def stream_prefix(service: str, host: str | None = None, worker: int | None = None) -> str:
    host = re.sub(r"[^A-Za-z0-9.]", "_", host or socket.gethostname()) or "host"
    worker = worker if worker is not None else int(os.environ.get(WORKER_INDEX_ENV, "0") or 0)
    return f"audit-{service}-{host}-{worker}-"


def _files_of(directory: Path, prefix: str) -> list[Path]:
    pattern = re.compile(re.escape(prefix) + r"\d{8}T\d{6}Z(-p\d+)?\.jsonl")
    # By stem: "…Z-p123" (a second start within that second) sorts after "…Z", as it began later.
    return sorted((p for p in directory.iterdir() if pattern.fullmatch(p.name)), key=lambda p: p.stem)


class ChainedAuditSink:
    """An :class:`AuditSink` that appends each record to this process's chained audit file."""

    def __init__(self, path: Path, handle: IO[bytes], macs: ChainMac, seq: int, prev: str) -> None:
        self.path = path
        self._handle = handle
        self._macs = macs
        self._seq, self._prev = seq, prev
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._failed = False
        self._closed = False
        # "opened" is logged with the first record, not at start: a start that fails prints its one error line only.
        self._announced = False
        self._thread = threading.Thread(target=self._write_loop, name="audit-chain", daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, directory: Path, key: bytes, service: str, *, host: str | None = None) -> ChainedAuditSink:
        """Continue this process's newest file or start a new one; an unusable directory is a ConfigError."""
        prefix = stream_prefix(service, host)
        macs = ChainMac(key)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            files = _files_of(directory, prefix)
            if files:
                opened = _continue(files[-1], macs)
                if opened is not None:
                    handle, seq, prev = opened
                    return cls(files[-1], handle, macs, seq, prev)
            return cls._new_file(directory, prefix, macs)
        except OSError as exc:
            raise ConfigError(
                f"audit_chain_dir {directory} cannot be written ({exc.strerror}); the service user must be able to "
                "write there (or set audit_chain_dir = off)"
            ) from None

    @classmethod
    def _new_file(cls, directory: Path, prefix: str, macs: ChainMac) -> ChainedAuditSink:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = directory / f"{prefix}{stamp}.jsonl"
        if path.exists():  # another process of this name started in the same second
            path = directory / f"{prefix}{stamp}-p{os.getpid()}.jsonl"
        # Owner and group only: the lines name customers and callers.
        handle = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640), "ab")
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return cls(path, handle, macs, 0, GENESIS)

    async def record(self, record: AuditRecord) -> None:
        if self._closed:
            log.warning("audit record after the chain was closed", extra={"rpc_method": record.method})
            return
        if not self._announced:
            self._announced = True
            log.info("audit chain opened", extra={"audit_file": str(self.path), "audit_seq": self._seq})
        for body in record_bodies(record):
            self._queue.put(body)

    def close(self) -> None:
        """Write every queued line, fsync, close; later records go to the log only."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        with contextlib.suppress(OSError):
            self._handle.close()
        if self._announced:
            log.info("audit chain closed", extra={"audit_file": str(self.path), "audit_seq": self._seq})
        elif self._seq == 0:  # nothing was ever written to it (a start that failed, an idle run)
            with contextlib.suppress(OSError):
                self.path.unlink()

    def _write_loop(self) -> None:
        synced_at, dirty = time.monotonic(), False
        while True:
            timeout = max(synced_at + FSYNC_INTERVAL_SECONDS - time.monotonic(), 0.0) if dirty else None
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            batch = []
            while item is not None and item is not _STOP:
                batch.append(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    item = None
            if batch:
                self._write(batch)
                dirty = True
            if dirty and (item is _STOP or time.monotonic() - synced_at >= FSYNC_INTERVAL_SECONDS):
                self._sync()
                synced_at, dirty = time.monotonic(), False
            if item is _STOP:
                return

    def _write(self, batch: list[dict[str, Any]]) -> None:
        if self._failed:
            return
        lines = []
        seq, prev = self._seq, self._prev
        for body in batch:
            seq += 1
            line, prev = seal(self._macs, body, seq, prev)
            lines.append(line)
        try:
            self._handle.write(b"".join(lines))
            self._handle.flush()
        except OSError as exc:
            self._fail(exc)
            return
        self._seq, self._prev = seq, prev

    def _sync(self) -> None:
        if self._failed:
            return
        try:
            os.fsync(self._handle.fileno())
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        # The file may now end in a torn line; a restart starts a new file. The log lines still carry every call.
        self._failed = True
        log.error(
            "audit chain write failed; further audit records go to the log only until restart",
            extra={"audit_file": str(self.path), "audit_seq": self._seq, "error": exc.strerror or str(exc)},
        )


def _continue(path: Path, macs: ChainMac) -> tuple[IO[bytes], int, str] | None:
    """(handle, seq, prev) to append to ``path``, or None (after a WARNING) when it cannot be continued."""
    handle = path.open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None  # a live process writes it: never share a file
    last = read_last_line(path)
    if not last:
        return handle, 0, GENESIS
    why = _why_not_continued(last, macs)
    if why is None:
        line = json.loads(last)
        return handle, line["seq"], line["mac"]
    handle.close()
    log.warning(
        "audit chain file not continued; starting a new file (the old one is kept as it is)",
        extra={"audit_file": str(path), "reason": why, "advice": f"check it with `qiming audit verify {path}`"},
    )
    return None


def _why_not_continued(last: bytes, macs: ChainMac) -> str | None:
    line, problem = open_line(last, macs)
    if line is not None and not isinstance(line["seq"], int):
        problem = "malformed"
    elif line is not None:
        return None
    return {
        "torn": "its last line is incomplete (a crash during a write?)",
        "malformed": "its last line is not an audit line",
        "mac": "its last line's mac does not match (edited, or written under another keyring)",
    }[problem]


class TeeAuditSink:
    """Hands each record to several sinks in turn (the ``qiming.audit`` log line and the chained file)."""

    def __init__(self, *sinks: AuditSink) -> None:
        self.sinks = sinks

    async def record(self, record: AuditRecord) -> None:
        for sink in self.sinks:
            await sink.record(record)
