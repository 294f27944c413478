"""Where each slow acknowledgement's time goes, phase by phase (issue 4: p99 < 20 ms for 100-event batches at 10,000/s).

Runs the collector (``qiming serve collect``, PostgreSQL by default) with a ``sitecustomize`` of this script's own on
its ``PYTHONPATH`` that timestamps, per request and per group commit, with the machine's monotonic clock (the same in
every process): the request's arrival in ``CollectService.ingest``, its hand-over to the group committer (after
``_prepare``), the group's start (taken from the queue), the writer thread's start, the head lock taken (including
the pool checkout), the COPY, the side records, the commit's end, and the caller woken again. The client sends
100-event batches at a steady rate and matches its send and acknowledgement times to those marks by the batch's
first event id, then prints p50/p99 and, for the acknowledgements slower than ``--slow-ms``, where their time went:

    sent→arrived (gRPC, the loop busy) · prepare · queued (behind the group in flight) · thread start · lock ·
    COPY · side records · head + commit · woken (loop) · reply

and the mean of each phase over all batches and over the slow ones. ``--pg-set NAME=VALUE`` sets a server
parameter for the collector's database (``ALTER DATABASE … SET``: only its own sessions, the shared server is left
as it is), e.g. ``wal_init_zero=off``. ``--set NAME=VALUE`` is a collector setting (``QIMING_COLLECT_<NAME>``).

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/collect_pg_ack_phases.py [--seconds 10] [--rate 10000]
        [--slow-ms 20] [--backend postgresql|sqlite|jetstream] [--pg-set wal_init_zero=off]
        [--set commit_max_events=4096]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench_collect

from svc_common.pb.qiming.collect.v1 import collect_pb2

# Loaded by the collector process at start (Python imports ``sitecustomize`` from its path): wraps the ingest path
# and the group committer with timestamps and appends one JSON line per request and per group to COLLECT_PHASES_OUT.
SITECUSTOMIZE = r"""
import json, os, threading, time
_out = open(os.environ["COLLECT_PHASES_OUT"], "a", buffering=1)
_lock = threading.Lock()
_now = time.perf_counter

def _emit(record):
    with _lock:
        _out.write(json.dumps(record) + "\n")

from svc_collect import committer as _committer, service as _service
from svc_collect.store import _log

_marks = {}  # id(batch) -> dict of marks

_current = [0.0, ""]  # ingest runs _prepare before its first await: the arrival of the call being prepared
_ingest = _service.CollectService.ingest
async def ingest(self, events, *args, **kwargs):
    _current[0], _current[1] = _now(), events[0].event_id if len(events) else ""
    return await _ingest(self, events, *args, **kwargs)

_prepare = _service.CollectService._prepare
def prepare(self, *args, **kwargs):
    result = _prepare(self, *args, **kwargs)
    _marks[id(result[0])] = {"id": _current[1], "arrived": _current[0], "submitted": _now()}
    return result
_service.CollectService._prepare = prepare
_service.CollectService.ingest = ingest

_submit = _committer.GroupCommitter.submit
async def submit(self, batch):
    result = await _submit(self, batch)
    marks = _marks.pop(id(batch), None)
    if marks is not None:
        marks["woken"] = _now()
        marks.update(_group_of.pop(id(batch), {}))
        _emit({"kind": "batch", **marks})
    return result
_committer.GroupCommitter.submit = submit

_group_of = {}
_take = _committer.GroupCommitter._take
def take(self):
    group = _take(self)
    taken = _now()
    shared = {"taken": taken, "group_batches": len(group), "group_events": sum(b.size() for b, _ in group)}
    for batch, _ in group:
        _group_of[id(batch)] = shared
    return group
_committer.GroupCommitter._take = take

_phase = threading.local()
def _wrap(name, method):
    def wrapped(self, *args, **kwargs):
        result = method(self, *args, **kwargs)
        marks = getattr(_phase, "marks", None)
        if marks is not None:
            marks[name] = _now()
        return result
    return wrapped

for _name, _attr in (("locked", "_lock_head"), ("copied", "_append_unseen"), ("sided", "_write_side_records")):
    setattr(_log.SqlEventLog, _attr, _wrap(_name, getattr(_log.SqlEventLog, _attr)))
try:  # the four-round-trip append: its last round trip is statistics, head and COMMIT together ("sided" = "copied")
    from svc_collect.store import _pg_append
except ImportError:
    pass
else:
    _pg_append.PgAppender._lock_head = _wrap("locked", _pg_append.PgAppender._lock_head)
    _pg_copy = _pg_append.PgAppender._copy
    def _copy_marks(self, *args, **kwargs):
        result = _pg_copy(self, *args, **kwargs)
        marks = getattr(_phase, "marks", None)
        if marks is not None:
            marks["copied"] = marks["sided"] = _now()
        return result
    _pg_append.PgAppender._copy = _copy_marks

def _timed_append(original, publish=False):
    # publish: JetStream's append, whose publish shows as "lock" + "COPY" and its side records as "side records"
    def append(self, batches, now_us):
        marks = {"thread": _now()}
        if publish:
            marks["locked"] = marks["thread"]
        _phase.marks = marks
        try:
            return original(self, batches, now_us)
        finally:
            marks["committed"] = _now()
            _phase.marks = None
            for batch in batches:
                shared = _group_of.get(id(batch))
                if shared is not None:
                    shared.update(marks)
    return append

_log.SqlEventLog.append = _timed_append(_log.SqlEventLog.append)

try:
    from svc_collect.store import jetstream as _jetstream
except ImportError:
    pass
else:
    _jetstream.JetStreamEventLog.append = _timed_append(_jetstream.JetStreamEventLog.append, publish=True)
    _record_side = _log.SqlEventLog.record_side
    def record_side(self, *args, **kwargs):
        marks = getattr(_phase, "marks", None)
        if marks is not None:
            marks["copied"] = _now()
        _phase.marks = None  # its head lock and side writes are not the SQL log's phases
        try:
            return _record_side(self, *args, **kwargs)
        finally:
            _phase.marks = marks
            if marks is not None:
                marks["sided"] = _now()
    _log.SqlEventLog.record_side = record_side

import gc, sys
if os.environ.get("COLLECT_PHASES_SWITCH_INTERVAL"):
    sys.setswitchinterval(float(os.environ["COLLECT_PHASES_SWITCH_INTERVAL"]))
_gc_start = [0.0]
def _on_gc(phase, info):
    if phase == "start":
        _gc_start[0] = _now()
    elif _now() - _gc_start[0] > 0.002:
        _emit({"kind": "gc", "id": "", "start": _gc_start[0], "end": _now(), "generation": info["generation"]})
gc.callbacks.append(_on_gc)
"""

PHASES = (
    ("sent→arrived", "sent", "arrived"),
    ("prepare", "arrived", "submitted"),
    ("queued", "submitted", "taken"),
    ("thread start", "taken", "thread"),
    ("checkout+lock", "thread", "locked"),
    ("COPY", "locked", "copied"),
    ("side records", "copied", "sided"),
    ("head+commit", "sided", "committed"),
    ("woken", "committed", "woken"),
    ("reply", "woken", "acked"),
)


TIMELINE_START = [0.0]
CLIENT_GC: list[tuple[float, float, int]] = []  # (start, end, generation) of the client's collections over 2 ms


def _client_gc(phase: str, info: dict) -> None:
    if phase == "start":
        CLIENT_GC.append((time.perf_counter(), 0.0, info["generation"]))
    else:
        start, _, generation = CLIENT_GC.pop()
        if time.perf_counter() - start > 0.002:
            CLIENT_GC.append((start, time.perf_counter(), generation))


async def timeline(address: str, batches: list[bytes], per_second: float) -> list[dict]:
    """Send at a steady rate; per batch its first event id, send and acknowledgement times (perf_counter)."""
    firsts = [collect_pb2.IngestRequest.FromString(data).events[0].event_id for data in batches]
    out: list[dict] = []
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(bench_collect.INGEST, request_serializer=None, response_deserializer=None)
        start = time.perf_counter()
        TIMELINE_START[0] = start

        async def one(data: bytes, first: str) -> None:
            sent = time.perf_counter()
            await call(data, timeout=60)
            out.append({"id": first, "sent": sent, "acked": time.perf_counter()})

        tasks = []
        for i, (data, first) in enumerate(zip(batches, firsts, strict=True)):
            delay = start + i / per_second - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(data, first)))
        await asyncio.gather(*tasks)
    for row in out:
        row["at"] = row["sent"] - start
    return sorted(out, key=lambda r: r["sent"])


class WalWatch:
    """Polls the server's WAL insert position every 10 ms (a connection of its own): when each 16 MB segment began."""

    def __init__(self, url: str) -> None:
        self._engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WalWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._engine.dispose()

    def _run(self) -> None:
        with self._engine.connect() as conn:
            query = sa.text("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn")
            while not self._stop.wait(0.01):
                self.samples.append((time.perf_counter(), int(conn.execute(query).scalar())))

    def switches(self) -> list[float]:
        """Times (perf_counter) at which the insert position entered a new segment, between two samples."""
        return [t for (_, a), (t, b) in zip(self.samples, self.samples[1:], strict=False) if a >> 24 != b >> 24]


def _ms(row: dict, a: str, b: str) -> float | None:
    return (row[b] - row[a]) * 1000 if a in row and b in row else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rate", type=int, default=10_000, help="events/s, in 100-event batches")
    parser.add_argument("--slow-ms", type=float, default=20)
    parser.add_argument("--backend", choices=("postgresql", "sqlite", "jetstream"), default="postgresql")
    parser.add_argument("--pg-set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--show", type=int, default=40, help="slow acknowledgements printed one by one")
    parser.add_argument("--switch-interval", type=float, help="sys.setswitchinterval in the collector (s)")
    parser.add_argument("--client-gc", choices=("on", "freeze", "off"), default="freeze", help="the client's GC")
    parser.add_argument("--json", help="write every batch's marks to this file")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qiming-phases-"))
    (work / "sitecustomize.py").write_text(SITECUSTOMIZE)
    out_path = work / "phases.jsonl"
    os.environ["PYTHONPATH"] = os.pathsep.join([str(work), os.environ.get("PYTHONPATH", "")])
    os.environ["COLLECT_PHASES_OUT"] = str(out_path)
    if args.switch_interval:
        os.environ["COLLECT_PHASES_SWITCH_INTERVAL"] = str(args.switch_interval)
    env = {f"QIMING_COLLECT_{k.strip().upper()}": v.strip() for k, _, v in (s.partition("=") for s in args.set)}
    batches = bench_collect.make_batches(args.rate // 100 * args.seconds, 100)
    if args.client_gc == "freeze":
        gc.freeze()
    elif args.client_gc == "off":
        gc.disable()
    gc.callbacks.append(_client_gc)
    if args.backend == "postgresql":
        with bench_collect.postgres_database() as url:
            name = sa.engine.make_url(url).database
            admin = sa.create_engine(bench_collect.POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                for item in args.pg_set:
                    key, _, value = item.partition("=")
                    conn.execute(sa.text(f'ALTER DATABASE "{name}" SET {key.strip()} = {value.strip()}'))
                wal_before = conn.execute(sa.text("SELECT count(*) FROM pg_ls_waldir()")).scalar()
            with (
                bench_collect.collector({"QIMING_COLLECT_DATABASE_URL": url, **env}) as server,
                WalWatch(url) as wal,
            ):
                client = asyncio.run(timeline(server.address, batches, args.rate / 100))
            with admin.connect() as conn:
                wal_after = conn.execute(sa.text("SELECT count(*) FROM pg_ls_waldir()")).scalar()
            admin.dispose()
        print(f"WAL segments in pg_wal: {wal_before} before, {wal_after} after; server settings {args.pg_set}")
        switches = wal.switches()
    elif args.backend == "jetstream":
        switches = []
        with bench_collect.backend_env("JetStream") as js_env, bench_collect.collector(js_env | env) as server:
            client = asyncio.run(timeline(server.address, batches, args.rate / 100))
    else:
        switches = []
        with bench_collect.collector(env) as server:
            client = asyncio.run(timeline(server.address, batches, args.rate / 100))
    server_marks = {}
    pauses = [(start, end, generation, "client") for start, end, generation in CLIENT_GC]
    for line in out_path.read_text().splitlines():
        record = json.loads(line)
        if record["kind"] == "gc":
            pauses.append((record["start"], record["end"], record["generation"], "collector"))
        else:
            server_marks[record["id"]] = record
    rows = [server_marks.get(r["id"], {}) | r for r in client]
    latencies = sorted((r["acked"] - r["sent"]) * 1000 for r in rows)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    groups = [r.get("group_batches", 0) for r in rows]
    print(
        f"{len(rows)} batches at {args.rate:,} events/s on {args.backend}, collector settings {args.set}: "
        f"p50 {statistics.median(latencies):.1f} ms, p90 {latencies[int(len(latencies) * 0.9) - 1]:.1f} ms, "
        f"p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms; batches per group: mean {statistics.mean(groups):.2f},"
        f" max {max(groups)}"
    )
    slow = [r for r in rows if (r["acked"] - r["sent"]) * 1000 > args.slow_ms]
    header = "  ".join(f"{name:>13}" for name, _, _ in PHASES)
    print(f"mean ms per phase      {header}")
    for label, subset in (("all batches", rows), (f"> {args.slow_ms:g} ms ({len(slow)})", slow)):
        cells = []
        for _, a, b in PHASES:
            values = [v for v in (_ms(r, a, b) for r in subset) if v is not None]
            cells.append(f"{statistics.mean(values):13.2f}" if values else f"{'-':>13}")
        print(f"{label:<22} " + "  ".join(cells))
    print(f"slow acknowledgements (first {args.show}): at s, total ms, group batches, then the phases above")
    for r in slow[: args.show]:
        cells = " ".join(f"{v:6.1f}" if v is not None else "     -" for v in (_ms(r, a, b) for _, a, b in PHASES))
        print(f"  {r['at']:6.2f} {(r['acked'] - r['sent']) * 1000:6.1f} g{r.get('group_batches', 0)} {cells}")
    t0 = TIMELINE_START[0]
    if switches:  # the slowest acknowledgement in flight when the WAL entered a new segment (±10 ms)
        near = []
        for at in switches:
            inflight = [(r["acked"] - r["sent"]) * 1000 for r in rows if r["sent"] - 0.01 <= at <= r["acked"] + 0.01]
            near.append(f"{at - t0:.2f} s: {max(inflight, default=0):.1f} ms")
        rank = sum(1 for r in rows if (r["acked"] - r["sent"]) * 1000 > p99)
        print(f"new WAL segments ({len(switches)}), slowest ack in flight at each: " + "; ".join(near))
        print(f"  (for scale: p99 {p99:.1f} ms; {rank} acknowledgements above it)")
    for start, end, generation, where in sorted(pauses):
        if start >= t0:
            took = (end - start) * 1000
            print(f"  GC pause in the {where}: at {start - t0:6.2f} s, {took:.1f} ms, generation {generation}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows))


if __name__ == "__main__":
    main()
