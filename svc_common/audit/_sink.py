"""The chained audit files of one process, written on a background thread.

A call's audit lines are queued (no disk wait on the call's path); one writer thread takes them in order, chains
them and writes them. After each batch it flushes to the OS (a crash of the process loses only lines still queued)
and fsyncs at most every :data:`FSYNC_INTERVAL_SECONDS` (a power loss loses at most that much), then renews the
file's sealed anchor (``_anchor``); ``close()`` writes everything queued, fsyncs and anchors.

The queue holds at most ``queue_lines`` lines (a stalled disk must not grow memory without bound). A call that finds
it full waits up to ``queue_wait_seconds`` for room, then fails with UNAVAILABLE (reason ``AUDIT_BACKLOG``) so that
its caller retries: no audit record is dropped while the call it records is answered OK. The server asks ``admit``
before a call runs, so that a call refused for the backlog did nothing. ERROR is logged once per episode, with the
backlog.

Files: ``audit-<service>-<host>-<worker>-<UTC start, to the microsecond>.jsonl`` in ``audit_chain_dir``, so that a
process's files sort in the order written. The writer moves to a new file when the UTC date changes or the file would
grow past ``rotate_bytes``; the new file's first line continues the chain of the old one (see ``_chain``). A process
continues the newest file of its own service, host and worker index when its last line is whole and verifies and its
anchor is not ahead of it (seq and prev go on); else it starts a new file and logs a WARNING: a file is never
truncated or rewritten. A file held by a live process (an exclusive ``flock``) is never shared: a second process of
the same name starts its own file.
"""

from __future__ import annotations

import asyncio
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
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from svc_common.audit._anchor import Anchor, AnchorSeal, anchor_path, now_text, sync_directory
from svc_common.audit._chain import GENESIS, ChainMac, open_line, read_last_line, record_bodies, seal
from svc_common.errors import AuditBacklog, ConfigError, QimingError
from svc_common.server import AuditRecord, AuditSink

log = logging.getLogger("qiming.audit")

FSYNC_INTERVAL_SECONDS = 0.2
WORKER_INDEX_ENV = "QIMING_WORKER_INDEX"
DEFAULT_ROTATE_BYTES = 256 * 1024 * 1024
DEFAULT_QUEUE_LINES = 20_000
DEFAULT_QUEUE_WAIT_SECONDS = 1.0
_POLL_SECONDS = 0.01
_BATCH_LINES = 1024
_STOP = object()
_STAMP = "%Y%m%dT%H%M%S.%fZ"


def stream_prefix(service: str, host: str | None = None, worker: int | None = None) -> str:
    host = re.sub(r"[^A-Za-z0-9.]", "_", host or socket.gethostname()) or "host"
    worker = worker if worker is not None else int(os.environ.get(WORKER_INDEX_ENV, "0") or 0)
    return f"audit-{service}-{host}-{worker}-"


FILE_NAME = re.compile(r"(?P<prefix>audit-[a-z]+-.+-\d+-)(?P<stamp>\d{8}T\d{6}(\.\d{6})?Z)(-p\d+)?\.jsonl")
"""An audit file's name; ``…T120000Z`` (and ``-p<pid>``) names are those of files written before rotation."""


def _files_of(directory: Path, prefix: str) -> list[Path]:
    pattern = re.compile(re.escape(prefix) + r"\d{8}T\d{6}(\.\d{6})?Z(-p\d+)?\.jsonl")
    # By stem: "…Z-p123" (a second start within that second) sorts after "…Z", as it began later.
    return sorted((p for p in directory.iterdir() if pattern.fullmatch(p.name)), key=lambda p: p.stem)


def _started(path: Path) -> datetime:
    """When a file was started, from its name."""
    match = FILE_NAME.fullmatch(path.name)
    stamp = match.group("stamp") if match else "19700101T000000Z"
    return datetime.strptime(stamp if "." in stamp else stamp[:-1] + ".000000Z", _STAMP).replace(tzinfo=UTC)


class ChainedAuditSink:
    """An :class:`AuditSink` that appends each record to this process's chained audit files."""

    def __init__(
        self,
        path: Path,
        handle: IO[bytes],
        macs: ChainMac,
        anchors: AnchorSeal,
        seq: int,
        prev: str,
        head: dict[str, Any],
        *,
        rotate_bytes: int = DEFAULT_ROTATE_BYTES,
        queue_lines: int = DEFAULT_QUEUE_LINES,
        queue_wait_seconds: float = DEFAULT_QUEUE_WAIT_SECONDS,
    ) -> None:
        self.path = path
        self._handle = handle
        self._macs, self._anchors = macs, anchors
        self._seq, self._prev = seq, prev
        self._head = head  # the first line's file fields, written with seq 1
        self._anchored = seq
        self._size = os.fstat(handle.fileno()).st_size
        self._started = _started(path)
        self._prefix = path.name[: FILE_NAME.fullmatch(path.name).start("stamp")]  # type: ignore[union-attr]
        self._rotate_bytes = rotate_bytes
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # Lines queued = put - done; each counter has one writer (the event loop, the writer thread): no lock.
        self._put = self._done = 0
        self._queue_lines, self._queue_wait = queue_lines, queue_wait_seconds
        self._backlogged, self._refused = False, 0
        self._failed = False
        self._closed = False
        # "opened" is logged with the first record, not at start: a start that fails prints its one error line only.
        self._announced = False
        self._thread = threading.Thread(target=self._write_loop, name="audit-chain", daemon=True)
        self._thread.start()

    @classmethod
    def open(
        cls, directory: Path, key: bytes, service: str, *, host: str | None = None, **limits: Any
    ) -> ChainedAuditSink:
        """Continue this process's newest file or start a new one; an unusable directory is a ConfigError.
        ``limits``: ``rotate_bytes``, ``queue_lines``, ``queue_wait_seconds``."""
        prefix = stream_prefix(service, host)
        macs, anchors = ChainMac(key), AnchorSeal(key)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            files = _files_of(directory, prefix)
            link: dict[str, Any] = {}
            if files:
                opened = _continue(files[-1], macs, anchors)
                if isinstance(opened, tuple):
                    handle, seq, prev, head = opened
                    return cls(files[-1], handle, macs, anchors, seq, prev, head, **limits)
                link = opened
            prev = link.pop("prev", GENESIS)
            path, handle = _create(directory, prefix, anchors, prev, link, after=None)
            return cls(path, handle, macs, anchors, 0, prev, {"file": path.name, **link}, **limits)
        except OSError as exc:
            raise ConfigError(
                f"audit_chain_dir {directory} cannot be written ({exc.strerror}); the service user must be able to "
                "write there (or set audit_chain_dir = off)"
            ) from None

    async def admit(self) -> None:
        """Before a call runs: while the queue is full, wait for room for its record as ``record`` does, and past
        ``queue_wait_seconds`` refuse the call (UNAVAILABLE, ``AUDIT_BACKLOG``) before it does anything, so that a
        refused ingest stored no event. A call admitted while there is room is still recorded at its end, waiting
        then if calls in flight filled the queue meanwhile."""
        if self._closed:
            return
        backlog = self._put - self._done
        if backlog and backlog + 1 > self._queue_lines:
            await self._wait_for_room(1)

    async def refused(self, record: AuditRecord) -> None:
        """A call refused at admission (``admit``): queued only if there is room now, never waited for (the refusal
        is counted and logged with the backlog episode; the other sinks record it)."""
        if self._closed or self._put - self._done + len(record_bodies(record)) > self._queue_lines:
            return
        await self.record(record)

    async def record(self, record: AuditRecord) -> None:
        if self._closed:
            log.warning("audit record after the chain was closed", extra={"rpc_method": record.method})
            return
        if not self._announced:
            self._announced = True
            log.info("audit chain opened", extra={"audit_file": str(self.path), "audit_seq": self._seq})
        bodies = record_bodies(record)
        backlog = self._put - self._done
        if backlog and backlog + len(bodies) > self._queue_lines:
            await self._wait_for_room(len(bodies))
        if self._backlogged and self._put - self._done <= self._queue_lines // 2:
            self._drained()  # below half: the episode is over (no ERROR per call at the edge)
        self._put += len(bodies)
        for body in bodies:
            self._queue.put(body)

    async def _wait_for_room(self, lines: int) -> None:
        """Back-pressure: wait for the writer; past ``queue_wait_seconds`` refuse the call (its caller retries)."""
        deadline = time.monotonic() + self._queue_wait
        while True:
            backlog = self._put - self._done
            if not backlog or backlog + lines <= self._queue_lines:
                return
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(_POLL_SECONDS)
        self._refused += 1
        if not self._backlogged:
            self._backlogged = True
            log.error(
                "audit chain backlog full: audited calls are refused (UNAVAILABLE, AUDIT_BACKLOG) until the disk "
                "catches up",
                extra={
                    "audit_file": str(self.path),
                    "audit_backlog_lines": backlog,
                    "audit_queue_lines": self._queue_lines,
                },
            )
        raise AuditBacklog(
            f"the audit trail is {backlog} lines behind (the disk is slow or stalled); retry later",
            metadata={"audit_backlog_lines": str(backlog)},
        )

    def _drained(self) -> None:
        self._backlogged = False
        log.warning(
            "audit chain backlog drained: audited calls are accepted again",
            extra={"audit_file": str(self.path), "audit_refused_calls": self._refused},
        )
        self._refused = 0

    def close(self) -> None:
        """Write every queued line, fsync, anchor, close; later records go to the log only."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        with contextlib.suppress(OSError):
            self._handle.close()
        if self._announced:
            log.info("audit chain closed", extra={"audit_file": str(self.path), "audit_seq": self._seq})
        elif self._seq == 0 and "prev_file" not in self._head:
            # Nothing was ever written to it (a start that failed, an idle run): the file first, then its anchor
            # (an anchor at seq 0 without its file is what a crash here leaves, and verifies).
            with contextlib.suppress(OSError):
                self.path.unlink()
                anchor_path(self.path).unlink()

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
                if len(batch) >= _BATCH_LINES:  # write in steps: a waiting caller sees room as each one is written
                    item = None
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    item = None
            if batch:
                self._write(batch)
                self._done += len(batch)  # after the write: lines in the writer's hands still count as queued
                dirty = True
            if dirty and (item is _STOP or time.monotonic() - synced_at >= FSYNC_INTERVAL_SECONDS):
                self._sync()
                synced_at, dirty = time.monotonic(), False
            if item is _STOP:
                return

    def _write(self, batch: list[dict[str, Any]]) -> None:
        if self._failed:
            return
        try:
            if self._seq and datetime.now(UTC).date() != self._started.date():
                self._rotate()
            lines: list[bytes] = []
            size, seq, prev = self._size, self._seq, self._prev
            for body in batch:
                line, mac = seal(self._macs, {**body, **self._head} if seq == 0 else body, seq + 1, prev)
                if self._rotate_bytes and seq and size + len(line) > self._rotate_bytes:
                    self._append(lines, size, seq, prev)
                    self._rotate()
                    lines, size, seq, prev = [], 0, 0, self._prev
                    line, mac = seal(self._macs, {**body, **self._head}, 1, prev)
                lines.append(line)
                size, seq, prev = size + len(line), seq + 1, mac
            self._append(lines, size, seq, prev)
        except OSError as exc:
            self._fail(exc)

    def _append(self, lines: list[bytes], size: int, seq: int, prev: str) -> None:
        self._handle.write(b"".join(lines))
        self._handle.flush()
        self._size, self._seq, self._prev = size, seq, prev

    def _rotate(self) -> None:
        """Go on in a new file: sync and anchor the old one (its anchor then names the new one), then switch."""
        os.fsync(self._handle.fileno())
        old = self.path
        link = {"prev_file": old.name, "prev_seq": self._seq}
        path, handle = _create(old.parent, self._prefix, self._anchors, self._prev, link, after=self._started)
        self._anchors.write(anchor_path(old), Anchor(old.name, self._seq, self._prev, now_text(), next=path.name))
        with contextlib.suppress(OSError):
            self._handle.close()
        log.info(
            "audit chain rotated",
            extra={"audit_file": str(path), "audit_previous_file": str(old), "audit_seq": self._seq},
        )
        self.path, self._handle, self._size = path, handle, 0
        self._started = _started(path)
        self._head = {"file": path.name, "prev_file": old.name, "prev_seq": self._seq}
        self._seq, self._anchored = 0, 0

    def _sync(self) -> None:
        if self._failed:
            return
        try:
            os.fsync(self._handle.fileno())
            if self._seq != self._anchored:  # renewed only after the lines it names reached the disk
                self._anchors.write(anchor_path(self.path), Anchor(self.path.name, self._seq, self._prev, now_text()))
                self._anchored = self._seq
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        # The file may now end in a torn line; a restart starts a new file. The log lines still carry every call.
        self._failed = True
        log.error(
            "audit chain write failed; further audit records go to the log only until restart",
            extra={"audit_file": str(self.path), "audit_seq": self._seq, "error": exc.strerror or str(exc)},
        )


def _create(
    directory: Path, prefix: str, anchors: AnchorSeal, prev: str, link: dict[str, Any], after: datetime | None
) -> tuple[Path, IO[bytes]]:
    """A new file (exclusive, locked), its anchor written first at seq 0; named after now, or just after ``after``
    when the clock went back (names must sort in the order written)."""
    started = datetime.now(UTC)
    if after is not None and started <= after:
        started = after + timedelta(microseconds=1)
    while True:
        path = directory / f"{prefix}{started.strftime(_STAMP)}.jsonl"
        if not path.exists() and not anchor_path(path).exists():
            break
        started += timedelta(microseconds=1)  # another process of this name started in the same microsecond
    anchors.write(anchor_path(path), Anchor(path.name, 0, prev, now_text(), None, **link))
    sync_directory(directory)  # the anchor is on disk before its file can be: a file without one is a finding
    # Owner and group only: the lines name customers and callers.
    handle = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640), "ab")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    sync_directory(directory)
    return path, handle


def _continue(path: Path, macs: ChainMac, anchors: AnchorSeal) -> tuple[IO[bytes], int, str, dict[str, Any]] | dict:
    """(handle, seq, prev, head) to append to ``path``; else the link a new file starts with ({}: a new chain,
    after a WARNING; the previous file's name, seq and mac: a file written before anchors, whose chain goes on)."""
    handle = path.open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return {}  # a live process writes it: never share a file
    last = read_last_line(path)
    anchor = anchors.read(anchor_path(path))
    line: dict[str, Any] | None = None
    why = _why_not_continued(last, macs) if last else None
    if why is None and last:
        line = json.loads(last)
    if why is None and isinstance(anchor, str) and _first_line_names_file(path):
        why = f"its anchor {anchor_path(path).name} {anchor}"
    elif why is None and isinstance(anchor, Anchor):
        seq = line["seq"] if line else 0
        if anchor.file != path.name or anchor.seq > seq or (anchor.seq == seq and line and anchor.mac != line["mac"]):
            why = f"its anchor names line {anchor.seq} but it ends at line {seq} (lines cut from its end?)"
        elif anchor.next is not None:
            why = f"its anchor says the chain went on in {anchor.next}"
    if why is None and isinstance(anchor, Anchor):
        head = {"file": path.name}
        if anchor.prev_file is not None:
            head |= {"prev_file": anchor.prev_file, "prev_seq": anchor.prev_seq}
        if line is None:
            return handle, 0, anchor.mac, head
        return handle, line["seq"], line["mac"], head
    handle.close()
    if why is None and line is not None:  # a file from before anchors: a new, anchored file continues its chain
        return {"prev_file": path.name, "prev_seq": line["seq"], "prev": line["mac"]}
    if why is None:
        return {}  # an empty file from before anchors: nothing to continue
    log.warning(
        "audit chain file not continued; starting a new file (the old one is kept as it is)",
        extra={"audit_file": str(path), "reason": why, "advice": f"check it with `qiming audit verify {path}`"},
    )
    return {}


def _first_line_names_file(path: Path) -> bool:
    """Whether the file was written with anchors (its first line names the file); an empty file has had one too."""
    with path.open("rb") as handle:
        first = handle.readline(1 << 20)
    if not first:
        return True
    try:
        return "file" in json.loads(first)
    except ValueError:
        return True


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
    """Hands each record to several sinks in turn (the chained file, then the ``qiming.audit`` log line). A sink
    that refuses the call (the chain's backlog) does not stop the others: they record the call with the status its
    caller gets, then the refusal is raised."""

    def __init__(self, *sinks: AuditSink) -> None:
        self.sinks = sinks

    async def admit(self) -> None:
        """Each sink that admits calls (the chained file) may refuse the call before it runs."""
        for sink in self.sinks:
            admit = getattr(sink, "admit", None)
            if admit is not None:
                await admit()

    async def refused(self, record: AuditRecord) -> None:
        """A call refused at admission: every sink records it as it can (``refused`` where a sink has it: no wait)."""
        for sink in self.sinks:
            await getattr(sink, "refused", sink.record)(record)

    async def record(self, record: AuditRecord) -> None:
        failure: Exception | None = None
        for sink in self.sinks:
            try:
                await sink.record(record)
            except Exception as exc:  # the other sinks still record the call
                failure = failure or exc
                if isinstance(exc, QimingError):
                    record = replace(record, status=exc.status_code)
        if failure is not None:
            raise failure
