"""svc_profile speed: lookup by any id, log consumption, event → $segment_entered latency, full recompute.

    PYTHONPATH=. .venv/bin/python loadtests/bench_profile.py [--profiles 100000] [--postgres URL]

Profiles are generated with bulk inserts straight into the tables (that part is set-up, not measured).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from profile_helpers import ANONYMOUS, CANONICAL, DAY, event, profile_process, ref

from svc_common.conditions import to_proto
from svc_common.config import load_settings
from svc_common.gctune import tune_for_serving
from svc_common.logclient import CollectClient
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.protection import generate_keyring
from svc_common.runtime import ServiceRuntime
from svc_profile.config import ProfileSettings
from svc_profile.model import Days, encode
from svc_profile.server import build_app
from svc_profile.store import SCHEMA

KEYRING = generate_keyring().to_json()


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 10) - 1] if len(values) > 10 else max(values)


def open_app(database_url: str, data_dir: Path):
    settings = load_settings(
        ProfileSettings, data_dir=data_dir, keyring_json=KEYRING, database_url=database_url or None
    )
    runtime = ServiceRuntime.open(SCHEMA, settings)
    app = build_app(runtime)
    app.definitions.load()
    app.definitions.install_pack()
    # The garbage-collector settings of a served process (``qiming serve`` applies them before serving), not Python's
    # defaults: what the service's consumer runs with.
    tune_for_serving(settings.gc_young_threshold)
    return app


def generate(app, n: int, history_days: int = 30, created_days_ago: int = 0) -> list[tuple[str, str, str]]:
    """n persons with a customer id, a device id, attributes and ``history_days`` days of login day buckets (one
    every third day), created ``created_days_ago`` days ago; returns their ids."""
    t = app.core.store.t
    now = time.time_ns() // 1000
    days = Days(8)
    today = days.of(now)
    out = []
    rng = random.Random(7)
    with app.core.database.connection(write=True) as conn:
        for start in range(0, n, 20_000):
            persons, ids, customers, buckets = [], [], [], []
            for i in range(start, min(n, start + 20_000)):
                pid = str(uuid.UUID(int=rng.getrandbits(128)))
                customer, device = f"C{i:08d}", f"dev-{i:08d}"
                attrs = {
                    "risk_rating": [*encode(f"C{1 + i % 5}"), "crm", now],
                    "branch": [*encode(f"B{i % 50}"), "crm", now],
                }
                persons.append(
                    {
                        "profile_id": pid,
                        "created_us": now - created_days_ago * DAY,
                        "updated_us": now,
                        "attributes": attrs,
                        "sealed_attributes": None,
                        "features": {"events_total": ["i", 10]},
                        "lifecycle_stage": "ACTIVE",
                        "lifecycle_since_us": now,
                    }
                )
                for key, by in (((8, pid), "created"), ((2, customer), "event"), ((1, device), "event")):
                    ids.append(
                        {
                            "id_value": key[1],
                            "id_type": key[0],
                            "profile_id": pid,
                            "linked_by": by,
                            "linked_us": now,
                            "source_ref": "",
                        }
                    )
                customers.append({"profile_id": pid, "customer_id": customer})  # as a link writes it (profile_0007)
                for d in range(i % 3, history_days, 3):
                    buckets.append(
                        {
                            "profile_id": pid,
                            "event_type": "login",
                            "day": today - d,
                            "n": 1 + (i + d) % 4,
                            "amount_fen": 0,
                        }
                    )
                out.append((pid, customer, device))
            if conn.dialect.name == "postgresql":  # COPY: a million profiles in minutes, not hours
                _copy(conn, t["person"], persons)
                _copy(conn, t["identity"], ids)
                _copy(conn, t["customer"], customers)
                _copy(conn, t["day"], buckets)
            else:
                conn.execute(t["person"].insert(), persons)
                conn.execute(t["identity"].insert(), ids)
                conn.execute(t["customer"].insert(), customers)
                conn.execute(t["day"].insert(), buckets)
    return out


def _copy(conn, table, rows: list[dict]) -> None:
    import json

    columns = list(rows[0])
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([json.dumps(v) if isinstance(v, dict) else v for v in (row[c] for c in columns)])


def bench_lookup(app, ids, samples: int = 2000) -> dict:
    rng = random.Random(1)
    times = []
    for _ in range(samples):
        pid, customer, device = rng.choice(ids)
        which = rng.choice([ref(customer), ref(device, ANONYMOUS), ref(pid, CANONICAL)])
        started = time.perf_counter()
        app.profiles.get(which, [], frozenset())
        times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(statistics.median(times), 2), "p99_ms": round(pct(times, 99), 2)}


def bench_recompute(app, n: int) -> dict:
    condition = C.Condition(
        all_of=C.ConditionList(
            conditions=[
                C.Condition(
                    comparison=C.Comparison(
                        field=C.FieldRef(source=C.FieldRef.SOURCE_ATTRIBUTE, name="risk_rating"),
                        operator=C.OPERATOR_GTE,
                        value=to_proto("C3"),
                    )
                ),
                C.Condition(event_count=C.EventCount(event_type="login", min_count=12, window_seconds=30 * 86_400)),
            ]
        )
    )
    segment = pb.Segment(segment_id=f"bench_{uuid.uuid4().hex[:8]}", condition=condition)
    app.definitions.create_segment(segment)
    started, cpu = time.perf_counter(), time.process_time()
    totals = app.segments.recompute(segment.segment_id)
    first, first_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    again = app.segments.recompute(segment.segment_id)
    return {
        "profiles": n,
        "first_seconds": round(first, 2),
        # The process's CPU time beside the wall time: steadier on a shared machine, to compare two trees by.
        "first_cpu_seconds": round(first_cpu, 2),
        "entered": totals["entered"],
        "again_seconds": round(time.perf_counter() - started, 2),
        "again_cpu_seconds": round(time.process_time() - cpu, 2),
        "changed_again": again["entered"] + again["exited"],
    }


def bench_sweep(app, n: int) -> dict:
    """The time sweep across a day boundary: the built-in pack, lifecycle and one segment reading login counts
    over 30 days, over ``n`` profiles with 91 days of login buckets (generated with ``history_days=91``). A first
    sweep writes what the boundary changes (``first_seconds``: selection, evaluation and those writes), so the two
    timed ones after it measure selection and evaluation (``cpu_seconds``: the process's CPU time, less noisy than
    wall time on a shared machine).
    (The former selection, any bucket on the edge of any published window, was measured against this one at
    bf37528: docs/benchmarks.md.)"""
    condition = C.Condition(event_count=C.EventCount(event_type="login", min_count=12, window_seconds=30 * 86_400))
    app.definitions.create_segment(pb.Segment(segment_id=f"sweep_{uuid.uuid4().hex[:8]}", condition=condition))
    now = time.time_ns() // 1000
    previous = now - DAY  # one day boundary between the two sweeps
    started, cpu = time.perf_counter(), time.process_time()
    app.segments.sweep(previous, now)
    out: dict = {"profiles": n, "first_seconds": round(time.perf_counter() - started, 2)}
    out["first_cpu_seconds"] = round(time.process_time() - cpu, 2)
    for i in range(2):
        started, cpu = time.perf_counter(), time.process_time()
        result = app.segments.sweep(previous, now)
        out[f"sweep{i + 1}"] = {
            "persons_evaluated": result["candidates"],
            "seconds": round(time.perf_counter() - started, 2),
            "cpu_seconds": round(time.process_time() - cpu, 2),
            "load": Path("/proc/loadavg").read_text().split()[0],
        }
    return out


def bench_tag_definition(app, n: int) -> dict:
    """CreateTagDefinition of a rule tag over ``n`` profiles: the call as it was (the evaluation of everyone
    inside it) against the call now (returns with the job RUNNING; the job's own duration reported)."""
    from svc_common.pb.qiming.common.v1 import job_pb2
    from svc_profile.server import TagServicer

    app.core.settings.recompute_background_profiles = 0  # the size from which the job runs in the background

    def definition(name: str) -> pb.TagDefinition:
        field = C.FieldRef(source=C.FieldRef.SOURCE_ATTRIBUTE, name="risk_rating")
        compare = C.Comparison(field=field, operator=C.OPERATOR_GTE, value=to_proto("C3"))
        return pb.TagDefinition(name=name, condition=C.Condition(comparison=compare))

    started = time.perf_counter()
    app.definitions.create_tag(definition("in_the_call"))
    app.segments.refresh_everyone("recompute")
    before = time.perf_counter() - started
    request = pb.CreateTagDefinitionRequest(definition=definition("as_a_job"))
    started = time.perf_counter()
    response = asyncio.run(TagServicer(app).CreateTagDefinition(request, None))
    call = time.perf_counter() - started
    while (job := app.jobs.get(response.job.job_id)).state == job_pb2.JOB_STATE_RUNNING:
        time.sleep(0.05)
    return {
        "profiles": n,
        "before_call_seconds": round(before, 2),
        "after_call_ms": round(call * 1000, 1),
        "after_job_seconds": round(time.perf_counter() - started, 2),
        "job": job_pb2.JobState.Name(job.state),
        "load": Path("/proc/loadavg").read_text().split()[0],
    }


MIX = [("page_view", 45), ("app_click", 25), ("quote_view", 15), ("fund_view", 8), ("login", 5), ("trade_filled", 2)]


def bench_consume(app, persons: int, events_total: int, batch: int = 0) -> dict:
    """Steady state: every person exists (a first pass creates them, untimed), then ``events_total`` events of a
    typical app mix (mostly page views and clicks) from random persons, ``batch`` per transaction (0: the
    service's ``consumer_batch_events``, what its log follower reads per batch). Also reports the process's CPU
    seconds per 1,000 events (less sensitive to a shared machine than the rate)."""
    batch = batch or app.core.settings.consumer_batch_events
    rng = random.Random(3)
    now = time.time_ns() // 1000
    kinds = [k for k, w in MIX for _ in range(w)]
    for start in range(0, persons, batch):
        app.consumer.handle(
            [
                event("app_start", user_id=f"K{i:07d}", at_us=now - DAY)
                for i in range(start, min(persons, start + batch))
            ],
            f"w{start}",
        )
    batches = []
    for start in range(0, events_total, batch):
        evs = []
        for _ in range(min(batch, events_total - start)):
            i = rng.randrange(persons)
            kind = rng.choice(kinds)
            props = {"product_category": "fund", "fund_type": "equity"} if kind == "fund_view" else {}
            evs.append(
                event(
                    kind,
                    user_id=f"K{i:07d}",
                    session_id=f"s{i}-{rng.randrange(3)}",
                    at_us=now - rng.randrange(DAY),
                    screen=kind,
                    **props,
                )
            )
        batches.append(evs)
    # As the service's log follower hands batches over: committed on the consumer's pipeline thread while the next
    # one is computed (``submit``, where the tree has it), the last commit waited for.
    submit = getattr(app.consumer, "submit", app.consumer.handle)
    started, cpu = time.perf_counter(), time.process_time()
    for i, evs in enumerate(batches):
        submit(evs, f"c{i}")
    getattr(app.consumer, "drain", lambda: None)()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    n = sum(len(evs) for evs in batches)
    return {
        "events": n,
        "persons": persons,
        "batch": batch,
        "events_per_s": round(n / seconds),
        "cpu_ms_per_1000": round(cpu * 1e6 / n, 1),
        "load": Path("/proc/loadavg").read_text().split()[0],
    }


def bench_latency(work: Path, samples: int = 100, poll_millis: int = 20) -> dict:
    """Real processes: svc_collect + svc_profile; an event that flips a segment → $segment_entered in the log."""
    import grpc
    from conftest import free_port

    from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pb_grpc
    from svc_common.process import ServerProcess

    env = {
        "QIMING_COLLECT_KEYRING_JSON": KEYRING,
        "QIMING_COLLECT_GRPC_PORT": str(free_port()),
        # Both hops (svc_profile following the log, the reader here) wait for this poll at most.
        "QIMING_COLLECT_FOLLOW_POLL_INTERVAL_MILLIS": str(poll_millis),
    }
    collect = ServerProcess("collect", work_dir=work / "collect", env=env)
    with collect, profile_process(work, collect.address, QIMING_PROFILE_KEYRING_JSON=KEYRING) as profile:
        channel = grpc.insecure_channel(profile.address)
        segments = pb_grpc.SegmentServiceStub(channel)
        cond = C.Condition(event_count=C.EventCount(event_type="deposit", min_count=1, window_seconds=86_400))
        segments.CreateSegment(pb.CreateSegmentRequest(segment=pb.Segment(segment_id="depositors", condition=cond)))

        async def run() -> list[float]:
            client = CollectClient(collect.address)
            out = []
            seen: dict[str, float] = {}

            async def follow() -> None:
                async for batch, _ in client.read("", event_types=["$segment_entered"], follow=True):
                    for e in batch:
                        seen[e.user_id] = time.perf_counter()

            reader = asyncio.create_task(follow())
            for i in range(samples):
                user = f"L{i}"
                sent = time.perf_counter()
                await client.publish([event("deposit", user_id=user)])
                while user not in seen:
                    await asyncio.sleep(0.002)
                out.append((seen[user] - sent) * 1000)
            reader.cancel()
            await client.close()
            return out

        times = asyncio.run(run())
        channel.close()
    return {
        "samples": samples,
        "collect_poll_ms": poll_millis,
        "p50_ms": round(statistics.median(times), 1),
        "p99_ms": round(pct(times, 99), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--postgres", default="")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument(
        "--batch", type=int, default=0, help="consume: events per batch (default: the consumer_batch_events setting)"
    )
    parser.add_argument(
        "--database-url", default="", help="consume etc. on this database only (e.g. openGauss), not SQLite"
    )
    parser.add_argument("--lookup-only", action="store_true", help="generate and measure lookups only (scaling runs)")
    parser.add_argument(
        "--only",
        default="lookup,recompute,consume,latency",
        help="comma-separated parts to measure (lookup, recompute, consume, latency, sweep, tagdef)",
    )
    parser.add_argument("--keep-data", action="store_true", help="keep the databases the run made (printed at the end)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    try:
        run(args, work)
    finally:
        # A million profiles on SQLite is ~2 GB: the run's databases go unless asked for.
        if args.keep_data:
            print(f"the run's databases: {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> None:
    parts = {"lookup"} if args.lookup_only else set(args.only.split(","))
    backends = [("sqlite", "")] + ([("postgresql", args.postgres)] if args.postgres else [])
    if args.database_url:
        backends = [(args.database_url.partition(":")[0].partition("+")[0], args.database_url)]
    for name, url in backends:
        app = open_app(url, work / name)
        if parts & {"lookup", "recompute", "sweep", "tagdef"}:
            started = time.perf_counter()
            # The sweep's population: long-standing customers (not NEW, so not swept for their stage) with
            # 91 days of history, so that buckets leave the 30- and 90-day windows at the boundary.
            ids = generate(app, args.profiles, *((91, 400) if "sweep" in parts else (30, 0)))
            print(f"[{name}] generated {args.profiles} profiles in {time.perf_counter() - started:.1f}s", flush=True)
        if "lookup" in parts:
            print(f"[{name}] lookup by any id: {bench_lookup(app, ids)}", flush=True)
        if "recompute" in parts:
            print(f"[{name}] full recompute: {bench_recompute(app, args.profiles)}", flush=True)
        if "sweep" in parts:
            print(f"[{name}] sweep across a day boundary: {bench_sweep(app, args.profiles)}", flush=True)
        if "tagdef" in parts:
            print(f"[{name}] CreateTagDefinition: {bench_tag_definition(app, args.profiles)}", flush=True)
        if "consume" in parts:
            print(f"[{name}] consume: {bench_consume(app, 20_000, args.events, args.batch)}", flush=True)
        app.core.database.dispose()
    if "latency" not in parts:
        return
    print(f"[sqlite] event -> $segment_entered: {bench_latency(work / 'latency')}", flush=True)
    print(f"[sqlite] event -> $segment_entered: {bench_latency(work / 'latency100', 50, 100)}", flush=True)


if __name__ == "__main__":
    main()
