#!/usr/bin/env python3
"""svc_campaign trigger latency: event sent to svc_collect → message in svc_campaign's outbox, over real gRPC.

    .venv/bin/python loadtests/bench_campaign.py                       # or: make bench-campaign
    .venv/bin/python loadtests/bench_campaign.py --rate 5000 --seconds 20 --match 0.1

Two real processes on SQLite (`qiming serve collect` and `qiming serve campaign`, the campaign following the
collector's log). One journey: a single-event trigger (`bench_trigger` with a property filter) → send (app
push, a marketing template with a placeholder, through the whole policy gate) → exit. The load: ``--rate``
events per second in batches every 10 ms for ``--seconds``, a ``--match`` share of them triggering events
(each from its own customer, so caps do not suppress), the rest page views of other customers.

Latency of a triggering event = the moment an observer polling the campaign database (every 2 ms, read-only)
first sees the customer's message, minus the moment the batch holding the event was handed to the client's
Ingest call: the collector's durable ingest, its log follow (``follow_poll_interval_millis`` = 10), the
campaign's follower, trigger, policy gate, outbox commit, and up to 2 ms of polling are all inside it.

``--timers N``: N customers waiting on timers, then ``qiming serve campaign`` restarted on that database resumes
them all (see ``bench_campaign_timers.py``), against the same firing done in-process as the paired baseline.

``--engine-only``: svc_campaign's own part, without the collector. The same engine the service runs
(``CampaignService`` on a SQLite file, the same journey) is fed the same event mix at ``--rate`` by a producer
thread in 10 ms batches, and a consumer thread hands whatever has arrived (at most ``log_batch_size``) to
``Engine.handle`` as the log follower does. Latency = the commit of the batch holding the event minus the event's
arrival in the queue (waiting while the engine is busy included).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from svc_common.logclient import CollectClient
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.campaign.v1 import campaign_pb2_grpc as pb_grpc
from svc_common.pb.qiming.common.v1 import condition_pb2, event_pb2
from svc_common.process import ServerProcess
from svc_common.protection import generate_keyring


def journey_graph() -> pb.JourneyGraph:
    kind = condition_pb2.Condition(
        comparison=condition_pb2.Comparison(
            field=condition_pb2.FieldRef(source=condition_pb2.FieldRef.SOURCE_EVENT_PROPERTY, name="kind"),
            operator=condition_pb2.OPERATOR_EQ,
            value={"string_value": "large_loss"},
        )
    )
    trigger = pb.Trigger(event=pb.SingleEventTrigger(event_type="bench_trigger", filter=kind))
    return pb.JourneyGraph(
        entry_node_id="start",
        nodes=[
            pb.JourneyNode(node_id="start", trigger=pb.TriggerNode(trigger=trigger, next_node_id="send")),
            pb.JourneyNode(
                node_id="send",
                send=pb.SendNode(
                    channel=pb.CHANNEL_TYPE_APP_PUSH, template_id="bench", next_node_id="end", is_marketing=True
                ),
            ),
            pb.JourneyNode(node_id="end", exit=pb.ExitNode()),
        ],
    )


def make_event(event_type: str, user_id: str, **props: str) -> event_pb2.Event:
    event = event_pb2.Event(event_id=str(uuid.uuid4()), event_type=event_type, user_id=user_id)
    event.occurred_at.GetCurrentTime()
    for name, value in props.items():
        event.properties[name].string_value = value
    return event


class Observer(threading.Thread):
    """Polls the outbox read-only and notes when each customer's message first becomes visible."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self.ready = threading.Event()
        """Set after the first poll: the load starts only once the observer is observing (connected, its query
        prepared), or the first messages would be seen late by the observer's own start-up."""

    def run(self) -> None:
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        last = 0
        while not self.stop.is_set():
            rows = conn.execute(
                "SELECT rowid, user_id FROM campaign_message WHERE rowid > ? ORDER BY rowid", (last,)
            ).fetchall()
            now = time.perf_counter()
            for rowid, user in rows:
                self.seen.setdefault(user, now)
                last = rowid
            self.ready.set()
            time.sleep(0.002)
        conn.close()


class DatabaseObserver(Observer):
    """The same observer on another database (``--database-url``): the bench journey's messages created after the
    last batch seen (``ix_campaign_message_journey``; a batch's messages share one creation time and commit
    together, and batches are written one after another, so none is missed). Most polls find nothing new and
    cost the server one index probe."""

    def __init__(self, url: str) -> None:
        super().__init__(Path())
        self.url = url
        self.commit_lag_ms: list[float] = []
        """Per message: seen (wall clock) minus its created_at, the engine's time at the start of its batch: the
        batch's own time in svc_campaign, without the wait before it (compare with the end-to-end latency)."""
        self.commit_lag_at: list[float] = []
        """The created_at (epoch seconds) of each of those messages."""

    def run(self) -> None:
        import sqlalchemy as sa

        # Planned for each poll, as svc_common's engines do: a generic plan made while the outbox was empty would
        # scan it whole 500 times a second as it grows, loading the database the bench measures.
        options = {"options": "-c plan_cache_mode=force_custom_plan"} if self.url.startswith("postgresql") else {}
        engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT", connect_args=options)
        query = sa.text(
            "SELECT user_id, created_at FROM campaign_message WHERE journey_id = 'bench' AND created_at > :since"
        )
        since = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        with engine.connect() as conn:
            while not self.stop.is_set():
                rows = conn.execute(query, {"since": since}).all()
                now, wall = time.perf_counter(), time.time()
                for user, created in rows:
                    self.seen.setdefault(user, now)
                    self.commit_lag_ms.append((wall - created.timestamp()) * 1000)
                    self.commit_lag_at.append(created.timestamp())
                    since = max(since, created)
                self.ready.set()
                time.sleep(0.002)
        engine.dispose()


SENT_WALL: dict[str, float] = {}
"""Wall-clock time each triggering event was sent (compared with the engine's ``created_at`` of its message)."""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(
    address: str, rate: int, seconds: float, match: float, sent: dict[str, float], acked: dict[str, float]
) -> float:
    client = CollectClient(address)
    tick = 0.01
    per_tick = max(1, round(rate * tick))
    triggers_per_tick = match * per_tick
    owed = 0.0
    started = time.perf_counter()
    in_flight: set[asyncio.Task[None]] = set()
    n = 0

    async def send(batch: list[event_pb2.Event], users: list[str]) -> None:
        at, wall = time.perf_counter(), time.time()
        for user in users:
            sent[user] = at
            SENT_WALL[user] = wall
        await client.publish(batch)
        done = time.perf_counter()
        for user in users:
            acked[user] = done

    try:
        ticks = int(seconds / tick)
        for i in range(ticks):
            owed += triggers_per_tick
            batch, users = [], []
            for _ in range(per_tick):
                n += 1
                if owed >= 1:
                    owed -= 1
                    user = f"t{n}"
                    users.append(user)
                    batch.append(make_event("bench_trigger", user, kind="large_loss"))
                else:
                    batch.append(make_event("page_view", f"v{n % 50_000}"))
            task = asyncio.create_task(send(batch, users))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            delay = started + (i + 1) * tick - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await asyncio.gather(*in_flight)
        return time.perf_counter() - started
    finally:
        await client.close()


def engine_only(
    rate: int, seconds: float, match: float, database_url: str | None = None
) -> tuple[list[float], float, int]:
    import queue

    from svc_campaign.config import CampaignSettings
    from svc_campaign.service import CampaignService
    from svc_campaign.store import SCHEMA, tables
    from svc_common.config import load_settings
    from svc_common.runtime import ServiceRuntime

    work = Path(tempfile.mkdtemp(prefix="qiming-bench-engine-"))
    database = {"database_url": database_url} if database_url else {}
    settings = load_settings(CampaignSettings, data_dir=work, journey_refresh_seconds=0.5, **database)
    runtime = ServiceRuntime.open(SCHEMA, settings)
    service = CampaignService(settings, runtime.database, tables)
    service.create_template(pb.Template(template_id="bench", name="bench", body="{{event.kind}}: 请查看持仓"))
    now = service.clock.now()
    with service.db.connection(write=True) as conn:
        service.journeys.create(conn, pb.Journey(journey_id="bench", name="bench", draft=journey_graph()), now)
        service.journeys.publish(conn, "bench", 0, now)
        service.journeys.transition(conn, "bench", "start", now)
    inbox: queue.Queue[tuple[float, event_pb2.Event] | None] = queue.Queue()
    latencies: list[float] = []
    triggering = 0

    def consume() -> None:
        done = False
        while not done:
            items = [inbox.get()]
            while len(items) < settings.log_batch_size:
                try:
                    items.append(inbox.get_nowait())
                except queue.Empty:
                    break
            if items[-1] is None:
                done, items = True, items[:-1]
            if not items:
                continue
            service.engine.handle([e for _, e in items], "bench")
            committed = time.perf_counter()
            latencies.extend((committed - at) * 1000 for at, e in items if e.event_type == "bench_trigger")

    consumer = threading.Thread(target=consume)
    consumer.start()
    tick, per_tick = 0.01, max(1, round(rate * 0.01))
    owed, n, started = 0.0, 0, time.perf_counter()
    for i in range(int(seconds / tick)):
        owed += match * per_tick
        for _ in range(per_tick):
            n += 1
            if owed >= 1:
                owed -= 1
                triggering += 1
                inbox.put((time.perf_counter(), make_event("bench_trigger", f"t{n}", kind="large_loss")))
            else:
                inbox.put((time.perf_counter(), make_event("page_view", f"v{n % 50_000}")))
        delay = started + (i + 1) * tick - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    elapsed = time.perf_counter() - started
    inbox.put(None)
    consumer.join()
    runtime.database.dispose()
    return latencies, n / elapsed, triggering


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=5000, help="events per second sent to svc_collect")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the run")
    parser.add_argument("--match", type=float, default=0.1, help="share of events that are triggering events")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--engine-only", action="store_true", help="svc_campaign's engine alone, fed in-process")
    parser.add_argument(
        "--timers", type=int, default=0, help="instead: N customers waiting on timers, then a restart resumes them"
    )
    parser.add_argument("--timer-batch", type=int, default=200, help="with --timers: timers fired per transaction")
    parser.add_argument(
        "--database-url",
        help="svc_campaign's database instead of SQLite (an empty one, e.g. postgresql+psycopg://…/db)",
    )
    args = parser.parse_args()
    if args.timers:
        timers(args)
        return
    if args.engine_only:
        latencies, achieved, triggering = engine_only(args.rate, args.seconds, args.match, args.database_url)
        where = "PostgreSQL" if (args.database_url or "").startswith("postgresql") else "SQLite"
        report(args, latencies, [], achieved, triggering, f"engine only (in-process, {where})")
        return

    work = Path(tempfile.mkdtemp(prefix="qiming-bench-campaign-"))
    keyring = generate_keyring().to_json()
    collect = ServerProcess(
        "collect",
        work_dir=work / "collect",
        env={"QIMING_COLLECT_KEYRING_JSON": keyring, "QIMING_COLLECT_FOLLOW_POLL_INTERVAL_MILLIS": "10"},
    ).start()
    campaign = ServerProcess(
        "campaign",
        work_dir=work / "campaign",
        env={
            "QIMING_CAMPAIGN_COLLECT_ADDRESS": collect.address,
            "QIMING_CAMPAIGN_JOURNEY_REFRESH_SECONDS": "0.5",
            **({"QIMING_CAMPAIGN_DATABASE_URL": args.database_url} if args.database_url else {}),
        },
    ).start()
    try:
        with grpc.insecure_channel(campaign.address) as channel:
            pb_grpc.TemplateServiceStub(channel).CreateTemplate(
                pb.CreateTemplateRequest(
                    template=pb.Template(template_id="bench", name="bench", body="{{event.kind}}: 请查看持仓")
                ),
                timeout=10,
            )
            journeys = pb_grpc.JourneyServiceStub(channel)
            journeys.CreateJourney(
                pb.CreateJourneyRequest(journey=pb.Journey(journey_id="bench", name="bench", draft=journey_graph())),
                timeout=10,
            )
            journeys.PublishJourney(pb.PublishJourneyRequest(journey_id="bench"), timeout=10)
            journeys.StartJourney(pb.StartJourneyRequest(journey_id="bench"), timeout=10)
        time.sleep(1.5)
        if args.database_url:
            observer: Observer = DatabaseObserver(args.database_url)
        else:
            observer = Observer(work / "campaign" / "data" / "campaign.db")
        observer.start()
        observer.ready.wait(30)
        sent: dict[str, float] = {}
        acked: dict[str, float] = {}
        elapsed = asyncio.run(drive(collect.address, args.rate, args.seconds, args.match, sent, acked))
        deadline = time.monotonic() + 60
        while len(observer.seen) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.1)
        observer.stop.set()
        observer.join()
    finally:
        campaign.terminate()
        collect.terminate()
    total_events = round(args.rate * args.seconds)
    latencies = [(observer.seen[u] - t) * 1000 for u, t in sent.items() if u in observer.seen]
    from_ack = [(observer.seen[u] - acked[u]) * 1000 for u in sent if u in observer.seen and u in acked]
    where = "PostgreSQL" if args.database_url and args.database_url.startswith("postgresql") else "SQLite"
    if args.database_url and where == "SQLite":
        where = args.database_url.split(":", 1)[0]
    mode = f"svc_collect → svc_campaign, two processes (campaign on {where})"
    report(args, latencies, from_ack, total_events / elapsed, len(sent), mode)
    if isinstance(observer, DatabaseObserver) and observer.commit_lag_ms:
        # Two parts of the latency without the observer's own delay (its polls run in this process, beside the load
        # generator): sent → the start of the engine's batch (the message's created_at), and that → seen.
        import sqlalchemy as sa

        engine = sa.create_engine(args.database_url)
        with engine.connect() as conn:
            created = conn.execute(sa.text("SELECT user_id, created_at FROM campaign_message")).all()
        engine.dispose()
        waited = [(at.timestamp() - SENT_WALL[user]) * 1000 for user, at in created if user in SENT_WALL]
        lag = observer.commit_lag_ms
        print(f"sent → batch start: p50 {percentile(waited, 0.5):.1f} ms, p99 {percentile(waited, 0.99):.1f} ms")
        print(f"batch start → seen: p50 {percentile(lag, 0.5):.1f} ms, p99 {percentile(lag, 0.99):.1f} ms")
        first = min(SENT_WALL.values(), default=0.0)
        slow = sorted({(round(at - first, 2), round(ms)) for ms, at in zip(lag, observer.commit_lag_at, strict=True)})
        slow = [(at, ms) for at, ms in slow if ms > 100]
        print(f"batches seen over 100 ms after their start (s into the run, ms): {slow[:40]}")


def timers(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_campaign_timers import run

    result = run(args.timers, args.timer_batch)
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


def report(
    args: argparse.Namespace, latencies: list[float], from_ack: list[float], achieved: float, triggering: int, mode: str
) -> None:
    result = {
        "mode": mode,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "rate_target": args.rate,
        "rate_achieved": round(achieved),
        "seconds": args.seconds,
        "triggering_events": triggering,
        "messages_seen": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 0.95), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
        "p99_from_ack_ms": round(percentile(from_ack, 0.99), 1) if from_ack else None,
    }
    print(f"{mode}: {result['machine']}")
    print("| rate sent (events/s) | triggering | messages | p50 ms | p95 ms | p99 ms | max ms | p99 from ack ms |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {result['rate_achieved']:,} | {result['triggering_events']:,} | {result['messages_seen']:,} "
        f"| {result['p50_ms']} | {result['p95_ms']} | {result['p99_ms']} | {result['max_ms']} "
        f"| {result['p99_from_ack_ms']} |"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
