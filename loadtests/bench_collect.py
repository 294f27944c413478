"""``make bench``: svc_collect's throughput against its two ceilings, measured in one run on one machine.

    .venv/bin/python loadtests/bench_collect.py [--events 200000] [--only a,b,c,latency] [--event-ids v7|v4]
        [--jetstream-shards N] [--workers N] [--in-flight N] [--set NAME=VALUE ...] [--json PATH]

With 1,000-event batches (the same events for every part, fresh ids each time: UUIDv7 by default, as
docs/collect.md asks producers to make them; ``--event-ids v4`` for random ones):

(a) transport ceiling: a gRPC server that only parses the batches (a child process, as the collector is);
(b) storage ceiling: the same rows written straight into the collect_event table, no service between
    (COPY on PostgreSQL, one transaction of executemany per batch on SQLite);
(c) the real collector (``qiming serve collect``), durable and de-duplicating, on SQLite, on PostgreSQL
    and on NATS JetStream (a nats-server of its own with ``sync_interval: always``);
    each with the CPU µs per event of the collector, of its database server and of the client, and the rates
    that cost allows: one collector process on one CPU, and every CPU busy (``loadtests/cpu_account.py``);
(r) after each (c): the log read back from its start with ``ReadEvents`` (masked, 1,000 per response), as the
    following consumers read it;
latency: p50/p99 acknowledgement of 100-event batches sent at a steady 10,000 events/s to each backend
(and 2,000 events/s on SQLite); with ``--workers N``, over 4 connections per worker.

It prints events/s for each and the ratios c/a and c/b. The client runs in this process beside the
server (both share the machine's cores): compare ratios from one run, not numbers from different runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import sqlalchemy as sa
from cpu_account import CpuMeter, py_spy_samples

from svc_collect.config import CollectSettings
from svc_collect.natsd import NatsServer
from svc_collect.store import SCHEMA
from svc_collect.store._log import _COPY_TYPES as COPY_TYPES
from svc_collect.store._log import LOG_COLUMNS, WRITE_COLUMNS
from svc_common.config import load_settings
from svc_common.db import Database
from svc_common.ids import new_event_id
from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import event_pb2, types_pb2
from svc_common.process import ServerProcess
from svc_common.protection import generate_keyring

INGEST = "/qiming.collect.v1.CollectService/Ingest"
POSTGRES_ADMIN_URL = os.environ.get(
    "QIMING_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# Databases the bench makes (and drops) are named <prefix><random>: on a shared server, a prefix of one's own.
DATABASE_PREFIX = os.environ.get("QIMING_BENCH_DATABASE_PREFIX", "qiming_bench_")
KEYRING = generate_keyring().to_json()
# How producers make event ids: UUIDv7 (time-ordered, what docs/collect.md recommends) or UUIDv4 (random).
EVENT_IDS = {"v7": new_event_id, "v4": lambda: str(uuid.uuid4())}
ID_KIND = "v7"
JETSTREAM_SHARDS = 0  # 0: the collector's default
WORKERS = 1  # --workers: collector worker processes
IN_FLIGHT = 8  # --in-flight: calls in flight in (a) and (c)
# Latency part with collector workers: the producers' connections per worker (each connection goes to one worker).
LATENCY_CONNECTIONS_PER_WORKER = 4
BACKENDS = ("SQLite", "PostgreSQL", "JetStream")  # --backends: the log backends (c) and latency run on
PY_SPY_DIR = ""  # --py-spy DIR: py-spy samples of the collector per backend during (c)
COLLECTOR_SETTINGS: dict[str, str] = {}  # --set name=value: QIMING_COLLECT_<NAME> for every collector started
_TYPES = ("page_view", "quote_view", "fund_view", "app_click", "trade_filled")


# -- events ------------------------------------------------------------------------------------------


def make_event(rng: random.Random, now_us: int) -> event_pb2.Event:
    """A realistic app event (~300 bytes): ids, session, context, typed properties; trades carry amounts."""
    kind = rng.choice(_TYPES)
    customer = rng.randrange(100_000)
    event = event_pb2.Event(
        event_id=EVENT_IDS[ID_KIND](),
        event_type=kind,
        user_id=f"C{customer:08d}",
        anonymous_id=f"dev-{customer:08x}",
        session_id=f"s-{customer}-{now_us // 1_800_000_000}",
        channel=types_pb2.CHANNEL_APP,
    )
    event.occurred_at.FromMicroseconds(now_us - rng.randrange(2_000_000))
    event.context.app_version = "8.2.1"
    event.context.os = "Android 14"
    event.context.device_model = "HUAWEI Mate 60"
    event.context.screen = rng.choice(("home", "quote_detail", "fund_detail", "trade", "mine"))
    props = event.properties
    if kind == "trade_filled":
        props["stock_code"].string_value = f"{rng.randrange(600000, 604000)}"
        props["side"].string_value = rng.choice(("buy", "sell"))
        props["order_quantity"].int_value = rng.randrange(1, 100) * 100
        props["amount_fen"].int_value = rng.randrange(1_000_00, 500_000_00)
    elif kind == "fund_view":
        props["fund_code"].string_value = f"{rng.randrange(100000):06d}"
        props["fund_type"].string_value = rng.choice(("equity", "bond", "money_market", "index", "qdii"))
    else:
        props["element"].string_value = rng.choice(("banner", "search", "watchlist", "news", "buy_button"))
        props["position"].int_value = rng.randrange(20)
    return event


def make_batches(count: int, size: int, seed: int = 7) -> list[bytes]:
    """Serialized IngestRequests of ``size`` events with fresh ids."""
    rng = random.Random(seed)
    now_us = time.time_ns() // 1000
    return [
        collect_pb2.IngestRequest(events=[make_event(rng, now_us) for _ in range(size)]).SerializeToString()
        for _ in range(count)
    ]


# -- the client ---------------------------------------------------------------------------------------


async def drive(address: str, batches: list[bytes], concurrency: int = 0) -> tuple[float, int]:
    """Send every batch, ``concurrency`` in flight; (events/s, events acknowledged). With collector workers, each
    call in flight has a connection of its own, since the kernel spreads connections over the workers."""
    concurrency = concurrency or IN_FLIGHT
    channels = [
        grpc.aio.insecure_channel(
            address, options=[("grpc.max_send_message_length", 64 << 20), ("grpc.use_local_subchannel_pool", 1)]
        )
        for _ in range(concurrency if WORKERS > 1 else 1)
    ]
    try:
        calls = [c.unary_unary(INGEST, request_serializer=None, response_deserializer=None) for c in channels]
        queue = list(reversed(batches))
        acknowledged = 0

        async def worker(index: int) -> None:
            nonlocal acknowledged
            call = calls[index % len(calls)]
            while queue:
                reply = collect_pb2.IngestResponse.FromString(await call(queue.pop(), timeout=120))
                acknowledged += reply.accepted_count + reply.duplicate_count

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        for channel in channels:
            await channel.close()
    return acknowledged / elapsed, acknowledged


async def read_back(address: str, batch_size: int = 1000) -> tuple[float, int]:
    """Read the whole log from its start with ``ReadEvents`` (masked, as consumers read), parsing each response as
    a consumer does; (events/s, events read)."""
    async with grpc.aio.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)]) as channel:
        stub = collect_pb2_grpc.CollectServiceStub(channel)
        count = 0
        started = time.perf_counter()
        async for response in stub.ReadEvents(collect_pb2.ReadEventsRequest(batch_size=batch_size), timeout=300):
            count += len(response.events)
        elapsed = time.perf_counter() - started
    return count / elapsed, count


async def steady_latency(address: str, batches: list[bytes], rate_per_second: float) -> list[float]:
    """Send batches at a fixed rate, each on its own; acknowledgement latencies in milliseconds."""
    return [ms for _, ms in await steady_latency_timeline(address, batches, rate_per_second)]


@contextlib.contextmanager
def client_gc_frozen() -> Iterator[None]:
    """The client's own objects (the batches, gRPC, SQLAlchemy, protobuf: ~200,000) out of its full collections
    while it measures latencies: a full collection of this process took 40–80 ms, every acknowledgement pending
    meanwhile counted it (``loadtests/research/collect_pg_ack_phases.py`` prints the client's pauses)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def steady_latency_timeline(
    address: str, batches: list[bytes], rate_per_second: float
) -> list[tuple[float, float]]:
    """As :func:`steady_latency`, each with the seconds into the run it was sent at, in sending order.

    With collector workers the batches go round-robin over ``LATENCY_CONNECTIONS_PER_WORKER`` connections per worker
    (the kernel hands each connection to one worker, as it does many producers' connections); else over one."""
    count = WORKERS * LATENCY_CONNECTIONS_PER_WORKER if WORKERS > 1 else 1
    channels = [
        grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(count)
    ]
    try:
        calls = [c.unary_unary(INGEST, request_serializer=None, response_deserializer=None) for c in channels]
        # Connected before the clock starts: a connection's first call would count its set-up.
        await asyncio.gather(*(asyncio.wait_for(c.channel_ready(), 30) for c in channels))
        timeline: list[tuple[float, float]] = []
        start = time.perf_counter()

        async def one(call: grpc.aio.UnaryUnaryMultiCallable, data: bytes) -> None:
            sent = time.perf_counter()
            await call(data, timeout=60)
            timeline.append((sent - start, (time.perf_counter() - sent) * 1000))

        tasks = []
        for i, data in enumerate(batches):
            delay = start + i / rate_per_second - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(calls[i % count], data)))
        await asyncio.gather(*tasks)
    finally:
        for channel in channels:
            await channel.close()
    return sorted(timeline)


# -- (a) the parse-only server ------------------------------------------------------------------------


def serve_parse_only(port_file: str) -> None:
    """Child process of part (a): parse each IngestRequest, answer its count, nothing else."""

    async def main() -> None:
        def ingest(request: collect_pb2.IngestRequest, context: object) -> collect_pb2.IngestResponse:
            return collect_pb2.IngestResponse(accepted_count=len(request.events))

        handler = grpc.method_handlers_generic_handler(
            "qiming.collect.v1.CollectService",
            {
                "Ingest": grpc.unary_unary_rpc_method_handler(
                    ingest,
                    request_deserializer=collect_pb2.IngestRequest.FromString,
                    response_serializer=collect_pb2.IngestResponse.SerializeToString,
                )
            },
        )
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20)])
        server.add_generic_rpc_handlers((handler,))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        Path(port_file).write_text(str(port))
        await server.wait_for_termination()

    asyncio.run(main())


@contextlib.contextmanager
def parse_only_server() -> Iterator[str]:
    port_file = Path(tempfile.mkdtemp(prefix="qiming-bench-")) / "port"
    child = subprocess.Popen([sys.executable, __file__, "--serve-parse-only", str(port_file)])
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text():
            if time.monotonic() > deadline or child.poll() is not None:
                raise RuntimeError("the parse-only server did not start")
            time.sleep(0.05)
        yield f"127.0.0.1:{port_file.read_text()}"
    finally:
        child.terminate()
        child.wait(timeout=10)
        shutil.rmtree(port_file.parent, ignore_errors=True)


# -- (b) the storage ceiling --------------------------------------------------------------------------


def storage_rows(batches: list[bytes]) -> list[list[tuple]]:
    """The rows the collector would write for each batch: same columns, same payload sizes."""
    out = []
    seq = 0
    now_us = time.time_ns() // 1000
    for data in batches:
        rows = []
        for event in collect_pb2.IngestRequest.FromString(data).events:
            seq += 1
            payload = event.SerializeToString()
            rows.append(
                (
                    seq,
                    event.event_id,
                    event.event_type,
                    event.user_id,
                    event.anonymous_id,
                    event.occurred_at.ToMicroseconds(),
                    now_us,
                    "f" * 32,
                    0,
                    payload,
                    b"s" * 60 if event.event_type == "trade_filled" else None,
                )
            )
        out.append(rows)
    return out


def bulk_write(url: str, batches: list[list[tuple]]) -> float:
    """events/s writing every row in one committed transaction into a fresh collect schema, through an engine made
    as the service makes it (on SQLite: WAL, synchronous=FULL, the same page cache; ``--set`` applies here too):
    the storage ceiling. SQLite: ``executemany`` of each 1,000-event batch; PostgreSQL: one binary ``COPY`` with
    the collector's column types (what its appender sends). The collector commits a group of the batches in flight
    at a time (up to ``commit_max_events``); one transaction of every row is the most any grouping can reach."""
    saved = {name: os.environ.get(name) for name in COLLECTOR_SETTINGS}
    os.environ.update(COLLECTOR_SETTINGS)  # read as the collectors read them, from the environment
    try:
        settings = load_settings(CollectSettings, database_url=url, keyring_json=KEYRING)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    database = Database.from_settings(settings)
    engine = database.engine
    try:
        SCHEMA.metadata.create_all(engine)
        columns = ", ".join(LOG_COLUMNS)
        copy = engine.dialect.driver == "psycopg"
        marks = ", ".join(["?" if engine.dialect.paramstyle == "qmark" else "%s"] * len(LOG_COLUMNS))
        types = dict(zip(WRITE_COLUMNS, COPY_TYPES, strict=True))
        raw = engine.raw_connection()
        try:
            started = time.perf_counter()
            cursor = raw.cursor()
            if copy:
                with cursor.copy(f"COPY collect_event ({columns}) FROM STDIN (FORMAT BINARY)") as writer:
                    writer.set_types([types[c] for c in LOG_COLUMNS])
                    for rows in batches:
                        for row in rows:
                            writer.write_row(row)
            else:
                cursor.execute("BEGIN IMMEDIATE")  # the engine leaves transactions to the caller
                for rows in batches:
                    cursor.executemany(f"INSERT INTO collect_event ({columns}) VALUES ({marks})", rows)
            raw.commit()
            elapsed = time.perf_counter() - started
        finally:
            raw.close()
    finally:
        database.dispose()
    return sum(len(b) for b in batches) / elapsed


# The server processes of each backend's database, by name, for the CPU accounting (SQLite is in-process).
DATABASE_SERVERS = {"SQLite": (), "PostgreSQL": ("postgres",), "JetStream": ("nats-server",)}


# -- databases and NATS of the bench's own -------------------------------------------------------------


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{DATABASE_PREFIX}{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def nats_server() -> Iterator[str]:
    """A nats-server 2.15 of the bench's own (svc_collect.natsd), ``sync_interval: always``."""
    root = Path(tempfile.mkdtemp(prefix="qiming-bench-nats-"))
    try:
        with NatsServer(root) as server:
            yield server.url
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def collector(env: dict[str, str]) -> Iterator[str]:
    work = Path(tempfile.mkdtemp(prefix="qiming-bench-collect-"))
    base = {"QIMING_COLLECT_KEYRING_JSON": KEYRING, "QIMING_COLLECT_LOG_LEVEL": "WARNING", **COLLECTOR_SETTINGS}
    with ServerProcess("collect", work_dir=work, env=base | env) as server:
        yield server
    shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def backend_env(backend: str) -> Iterator[dict[str, str]]:
    """The collector's environment for one log backend, with a fresh database or nats-server of its own."""
    if backend == "SQLite":
        yield {}
    elif backend == "PostgreSQL":
        with postgres_database() as url:
            yield {"QIMING_COLLECT_DATABASE_URL": url}
    else:
        with nats_server() as nats_url:
            env = {"QIMING_COLLECT_LOG_BACKEND": "jetstream", "QIMING_COLLECT_NATS_URL": nats_url}
            if JETSTREAM_SHARDS:
                env["QIMING_COLLECT_JETSTREAM_SHARDS"] = str(JETSTREAM_SHARDS)
            yield env


def fsync_floor(samples: int = 300) -> tuple[float, float]:
    """p50/p99 of one 4 KiB write + fsync in the temp directory: no durable acknowledgement can be faster."""
    latencies = []
    with tempfile.NamedTemporaryFile() as handle:
        for _ in range(samples):
            os.write(handle.fileno(), b"x" * 4096)
            started = time.perf_counter()
            os.fsync(handle.fileno())
            latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    return statistics.median(latencies), latencies[int(samples * 0.99) - 1]


# -- the run ------------------------------------------------------------------------------------------


def run(events: int, parts: set[str]) -> dict[str, float]:
    count = max(events // 1000, 8)
    results: dict[str, float] = {}

    def fresh() -> list[bytes]:
        return make_batches(count, 1000, seed=random.randrange(1 << 30))

    def report(name: str, value: float) -> None:
        results[name] = value
        print(f"  {name:<40} {value:>12,.0f} events/s", flush=True)

    def report_cpu(backend: str, used: dict[str, float], events: int) -> None:
        """CPU µs per event of each role, and the two rates that cost allows: one collector process (Python runs
        its work on one CPU at a time) and every CPU of this machine busy (all roles together)."""
        per_event = {role: seconds / events * 1e6 for role, seconds in used.items()}
        for role, micros in per_event.items():
            results[f"cpu_us_per_event_{backend.lower()}_{role}"] = micros
        one_process = 1e6 / per_event["service"]
        machine = (os.cpu_count() or 1) / sum(per_event.values()) * 1e6
        results[f"cpu_bound_one_process_{backend.lower()}"] = one_process
        results[f"cpu_bound_machine_{backend.lower()}"] = machine
        print(
            "      CPU µs/event: "
            + ", ".join(f"{role} {micros:.1f}" for role, micros in per_event.items())
            + f"; bound: one collector process {one_process:,.0f}/s, all {os.cpu_count()} CPUs {machine:,.0f}/s",
            flush=True,
        )

    print(f"svc_collect bench: {count} batches of 1,000 events, {IN_FLIGHT} in flight, UUID{ID_KIND} ids", flush=True)
    if "a" in parts:
        with parse_only_server() as address:
            asyncio.run(drive(address, fresh()[: max(count // 4, 4)]))  # warm-up
            report("(a) parse-only gRPC server", asyncio.run(drive(address, fresh()))[0])
    if "b" in parts:
        rows = storage_rows(fresh())
        with tempfile.TemporaryDirectory() as tmp:
            report("(b) SQLite executemany, one tx", bulk_write(f"sqlite:///{tmp}/bench.db", rows))
        with postgres_database() as url:
            report("(b) PostgreSQL binary COPY, one tx", bulk_write(url, rows))
    if "c" in parts:
        for backend in BACKENDS:
            with backend_env(backend) as env, collector(env) as server:
                assert server.process is not None
                # Warmed up as (a) is (a quarter of the batches, ids of their own): the first calls' one-time costs
                # (connections, compiled statements, the stream's first pack) are not the collector's rate.
                asyncio.run(drive(server.address, fresh()[: max(count // 4, 4)]))
                batches = fresh()
                meter = CpuMeter(server.process.pid, DATABASE_SERVERS[backend])
                meter.start()
                samples = Path(PY_SPY_DIR) / f"collector-{backend.lower()}.txt" if PY_SPY_DIR else None
                with py_spy_samples(server.process.pid, samples):
                    rate, events = asyncio.run(drive(server.address, batches))
                report(f"(c) collector on {backend}", rate)
                report_cpu(backend, meter.stop(), events)
                # What following consumers (svc_profile, svc_campaign) get: the same log read back over gRPC.
                report(f"(r) ReadEvents from {backend}", asyncio.run(read_back(server.address))[0])
    if "latency" in parts:
        p50, p99 = fsync_floor()
        results["fsync_p50_ms"], results["fsync_p99_ms"] = p50, p99
        print(f"  one 4 KiB fsync on this disk (floor of an ack): p50 {p50:.2f} ms, p99 {p99:.2f} ms", flush=True)
        # At the target rate on each backend, and on SQLite at a rate well inside this machine's capacity
        # (queueing excluded): what one group commit with its fsync costs.
        for backend, rate in (("SQLite", 10_000), ("PostgreSQL", 10_000), ("JetStream", 10_000), ("SQLite", 2_000)):
            if backend not in BACKENDS:
                continue
            with backend_env(backend) as env, collector(env) as server:
                batches = make_batches(rate // 10, 100)  # 10 s of 100-event batches
                with client_gc_frozen():
                    latencies = sorted(asyncio.run(steady_latency(server.address, batches, rate / 100)))
            p50, p99 = statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1]
            key = f"latency_{backend.lower()}_{rate}"
            results[f"{key}_p50_ms"], results[f"{key}_p99_ms"] = p50, p99
            label = f"100-event batches at {rate:,} events/s on {backend}"
            print(f"  {label}: p50 {p50:.1f} ms, p99 {p99:.1f} ms", flush=True)
    ratios = [
        ("c/a SQLite", "(c) collector on SQLite", "(a) parse-only gRPC server"),
        ("c/a PostgreSQL", "(c) collector on PostgreSQL", "(a) parse-only gRPC server"),
        ("c/a JetStream", "(c) collector on JetStream", "(a) parse-only gRPC server"),
        ("c/b SQLite", "(c) collector on SQLite", "(b) SQLite executemany, one tx"),
        ("c/b PostgreSQL", "(c) collector on PostgreSQL", "(b) PostgreSQL binary COPY, one tx"),
    ]
    if WORKERS > 1 and "c" in parts:
        print(f"  (c) ran {WORKERS} collector processes, (a) one server process: c/a compares them", flush=True)
    for label, top, bottom in ratios:
        if top in results and bottom in results:
            results[label] = results[top] / results[bottom]
            print(f"  {label:<40} {results[label]:>12.2f}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="events per part (in 1,000-event batches)")
    parser.add_argument("--only", default="a,b,c,latency", help="parts to run, comma-separated")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument(
        "--event-ids", choices=sorted(EVENT_IDS), default="v7", help="UUIDv7 (time-ordered, default) or UUIDv4 ids"
    )
    parser.add_argument(
        "--jetstream-shards", type=int, default=0, help="the collector's jetstream_shards (default: its own default)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a collector setting for every collector started, e.g. sqlite_checkpoint_interval_millis=0",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="collector worker processes (each call in flight gets a connection)"
    )
    parser.add_argument("--in-flight", type=int, default=8, help="calls in flight in (a) and (c) (default 8)")
    parser.add_argument(
        "--backends", default="sqlite,postgresql,jetstream", help="log backends for (c) and latency, comma-separated"
    )
    parser.add_argument("--py-spy", metavar="DIR", help="write py-spy samples of the collector per (c) run")
    parser.add_argument("--serve-parse-only", metavar="PORT_FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global ID_KIND, JETSTREAM_SHARDS, WORKERS, IN_FLIGHT, BACKENDS, PY_SPY_DIR
    BACKENDS = tuple(name for name in BACKENDS if name.lower() in args.backends.lower().split(","))
    PY_SPY_DIR = args.py_spy or ""
    if PY_SPY_DIR:
        Path(PY_SPY_DIR).mkdir(parents=True, exist_ok=True)  # py-spy writes nothing into a missing folder
    IN_FLIGHT = args.in_flight
    ID_KIND = args.event_ids
    JETSTREAM_SHARDS = args.jetstream_shards
    WORKERS = args.workers
    if WORKERS > 1:
        COLLECTOR_SETTINGS["QIMING_COLLECT_WORKERS"] = str(WORKERS)
    for item in args.set:
        name, _, value = item.partition("=")
        COLLECTOR_SETTINGS[f"QIMING_COLLECT_{name.strip().upper()}"] = value.strip()
    if args.serve_parse_only:
        serve_parse_only(args.serve_parse_only)
        return
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    results = run(args.events, set(args.only.split(",")))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
