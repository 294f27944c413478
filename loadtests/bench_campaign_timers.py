"""svc_campaign: N customers waiting on timers; a restart resumes them all. Run by ``bench_campaign.py --timers N``.

1. **Prepare** (in-process, the engine the service runs, SQLite file): one journey ``bench_trigger`` → wait 1 h →
   app-push send (marketing, through the whole policy gate) → exit; N events from N customers are handed to
   ``Engine.handle`` in batches of 500 with the clock one hour back (moving 10 ms after each batch, as arrivals
   would), so N customers wait at the wait node, each with a timer row that is due when the restart happens.
2. **Baseline** (same run, a copy of the same database): the same engine in-process fires the due timers
   (``fire_due_timers`` in a loop until none is left): the firing work alone, no process start.
3. **Restart**: ``qiming serve campaign`` is started on the prepared database, as after a crash or a deploy. An
   observer (read-only SQLite connection, every 100 ms) records when the first timer is gone and when none is
   left; the messages in the outbox are counted at the end (one per customer expected).

The ratio restart / baseline is what the process start, the background loop's pacing and sharing the database
with the observer cost on top of the firing itself. The CPU seconds of each (``baseline_cpu_s``, ``server_cpu_s``)
change least when the machine is shared with other work; compare trees on them as well as on the wall clock.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from cpu_account import cpu_seconds

from svc_campaign.clock import ManualClock, SystemClock
from svc_campaign.config import CampaignSettings
from svc_campaign.profiles import NoProfiles
from svc_campaign.service import CampaignService
from svc_campaign.store import SCHEMA, tables
from svc_common.config import load_settings
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import event_pb2
from svc_common.process import ServerProcess
from svc_common.runtime import ServiceRuntime

WAIT_SECONDS = 3600
ARRIVAL_SECONDS = 0.01
"""The prepare's clock moves this much after each batch of 500 entries (50,000 entries a second, as a busy event
stream or a scheduled segment entry would bring them); every timer is still due when the restart comes."""
REPO = Path(__file__).resolve().parents[1]


def graph() -> pb.JourneyGraph:
    def node(node_id: str, **kind: Any) -> pb.JourneyNode:
        return pb.JourneyNode(node_id=node_id, **kind)

    trigger = pb.Trigger(event=pb.SingleEventTrigger(event_type="bench_trigger"))
    return pb.JourneyGraph(
        entry_node_id="start",
        nodes=[
            node("start", trigger=pb.TriggerNode(trigger=trigger, next_node_id="wait")),
            node("wait", wait=pb.WaitNode(duration_seconds=WAIT_SECONDS, next_node_id="send")),
            node(
                "send",
                send=pb.SendNode(
                    channel=pb.CHANNEL_TYPE_APP_PUSH, template_id="bench", next_node_id="end", is_marketing=True
                ),
            ),
            node("end", exit=pb.ExitNode(reason="done")),
        ],
    )


def _service(data_dir: Path, clock: Any, **settings: Any) -> tuple[CampaignService, ServiceRuntime]:
    values = load_settings(CampaignSettings, data_dir=data_dir, journey_refresh_seconds=0.5, **settings)
    runtime = ServiceRuntime.open(SCHEMA, values)
    return CampaignService(values, runtime.database, tables, clock=clock, profiles=NoProfiles()), runtime


def prepare(data_dir: Path, customers: int) -> float:
    started = time.perf_counter()
    clock = ManualClock(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=WAIT_SECONDS))
    service, runtime = _service(data_dir, clock)
    try:
        service.create_template(pb.Template(template_id="bench", name="bench", body="您关注的基金有新动态，点击查看"))
        now = clock.now()
        with service.db.connection(write=True) as conn:
            service.journeys.create(conn, pb.Journey(journey_id="bench", name="bench", draft=graph()), now)
            service.journeys.publish(conn, "bench", 0, now)
            service.journeys.transition(conn, "bench", "start", now)
        for start in range(0, customers, 500):
            batch = []
            for n in range(start, min(customers, start + 500)):
                event = event_pb2.Event(event_id=str(uuid.uuid4()), event_type="bench_trigger", user_id=f"w{n:07d}")
                event.occurred_at.FromDatetime(now)
                batch.append(event)
            service.engine.handle(batch, f"prepare-{start}")
            clock.advance(seconds=ARRIVAL_SECONDS)
        assert service.engine.pending_timers() == customers
    finally:
        runtime.database.dispose()
    return time.perf_counter() - started


def baseline(data_dir: Path, timer_batch: int) -> tuple[float, float]:
    """Seconds to fire every due timer in-process, and the CPU seconds this process spent on it (the CPU time
    is what a machine shared with other work changes least)."""
    service, runtime = _service(data_dir, SystemClock(), timer_batch_size=timer_batch)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        while service.engine.fire_due_timers().timers_fired:
            pass
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        runtime.database.dispose()


def counts(database: Path) -> tuple[int, int]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as conn:
        timers = conn.execute("select count(*) from campaign_timer").fetchone()[0]
        queued = conn.execute("select count(*) from campaign_message").fetchone()[0]
    return timers, queued


def restart(work: Path, customers: int, timer_batch: int) -> dict[str, float]:
    database = next((work / "data").glob("*.db"))
    env = {
        "QIMING_CAMPAIGN_TIMER_BATCH_SIZE": str(timer_batch),
        "QIMING_CAMPAIGN_DELIVERY_POLL_MILLIS": "1000",
        # The service process runs the code of this checkout (it starts in ``work``: a relative PYTHONPATH, or none,
        # would run whatever tree the virtual environment was installed from).
        "PYTHONPATH": str(REPO),
    }
    process = ServerProcess("campaign", work_dir=work, env=env)
    spawned = time.perf_counter()
    process.start()
    serving = time.perf_counter() - spawned
    assert process.process is not None
    cpu_at_start = cpu_seconds(process.process.pid)
    first = 0.0
    try:
        while True:
            timers, _ = counts(database)
            at = time.perf_counter() - spawned
            if timers < customers and not first:
                first = at
            if timers == 0:
                break
            if at > 1800:
                raise SystemExit(f"{timers} timers still pending after 30 minutes")
            time.sleep(0.1)
        cpu_at_end = cpu_seconds(process.process.pid)
    finally:
        process.terminate()
    _, messages = counts(database)
    cpu = cpu_at_end - cpu_at_start
    return {"serving_s": serving, "first_fired_s": first, "all_fired_s": at, "server_cpu_s": cpu, "messages": messages}


def run(customers: int, timer_batch: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="qiming-bench-timers-"))
    prepared = prepare(work / "data", customers)
    copy = work.parent / f"{work.name}-baseline"
    shutil.copytree(work / "data", copy / "data")
    fired_in_process, baseline_cpu = baseline(copy / "data", timer_batch)
    _, baseline_messages = counts(next((copy / "data").glob("*.db")))
    shutil.rmtree(copy)
    restarted = restart(work, customers, timer_batch)
    shutil.rmtree(work)
    return {
        "customers": customers,
        "timer_batch_size": timer_batch,
        "prepare_s": prepared,
        "baseline_fire_s": fired_in_process,
        "baseline_cpu_s": baseline_cpu,
        "baseline_messages": baseline_messages,
        **restarted,
        "ratio_restart_to_baseline": restarted["all_fired_s"] / fired_in_process,
    }
