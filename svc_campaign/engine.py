"""The journey engine: events from the log and due timers in, journey steps and outbox messages out.

Every effect of one batch of events (trigger state, timers, journey instances, visits, messages) is written
in one transaction together with the log cursor; every due timer is deleted in the transaction of its effect.
A crash anywhere leaves either all of it or none: on restart the log is re-read from the stored cursor and
the timers still in the table fire, each once.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
import zoneinfo

from google.protobuf import json_format
from opentelemetry import trace
from sqlalchemy import Table
from sqlalchemy.engine import Connection

from svc_campaign.clock import Clock, utc_iso
from svc_campaign.config import CampaignSettings
from svc_campaign.erasure import ERASED, erase_customer, erased_at
from svc_campaign.exits import exit_in_flight
from svc_campaign.experiments import Experiments, bucket
from svc_campaign.graph import CompiledGraph, validate
from svc_campaign.journey_walk import Walker
from svc_campaign.policy import PolicyGate
from svc_campaign.profiles import ProfileDirectory
from svc_campaign.running import EPOCH, BatchStats, RunningJourney
from svc_campaign.store._journeys import SHARE_LOCK_DIALECTS, JourneyStore
from svc_campaign.store._scheduled import ScheduleStore
from svc_campaign.store._timers import (
    PARTICIPANT_COLUMNS,
    TIMER_COLUMNS,
    TIMER_SHARE_DIALECTS,
    TimerStore,
    due_timers,
    timer_share,
)
from svc_campaign.timers import TimerFiring, trigger_timer_id
from svc_campaign.triggers import ALL_EVENTS, ScheduledEntry, event_time, json_properties
from svc_common.db import Database
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import event_pb2
from svc_common.telemetry import batch_span

log = logging.getLogger("qiming.campaign.engine")
_tracer = trace.get_tracer("qiming.campaign")
LOG_BATCH_SPAN = "campaign log batch"
"""The span of one batch of log events (``timers.TIMER_BATCH_SPAN``: of due timers): its statements, its calls to
svc_profile (``BatchGetProfiles``, ``GetProfile``) and its log lines (``customer erased``) share its trace."""
NEVER = -math.inf
"""``_loaded_at`` of journeys not loaded (0.0 was "loaded" while the monotonic clock was below the refresh period)."""


class Engine(TimerFiring):
    def __init__(
        self,
        database: Database,
        tables: dict[str, Table],
        clock: Clock,
        profiles: ProfileDirectory,
        gate: PolicyGate,
        experiments: Experiments,
        settings: CampaignSettings,
    ) -> None:
        self.db = database
        self.t = tables
        self.clock = clock
        self.settings = settings
        self.experiments = experiments
        self._graphs: dict[tuple[str, int], CompiledGraph] = {}
        self._journeys: dict[str, RunningJourney] = {}
        self._by_type: dict[str, list[str]] = {}
        self._waits: set[str] = set()
        self._goals: set[str] = set()
        self._scheduled: list[str] = []
        self._loaded_at = NEVER
        self._lock = threading.Lock()
        self.journey_store = JourneyStore(tables)
        self.timer_store = TimerStore(tables)
        self.schedule_store = ScheduleStore(tables)
        self.walker = Walker(self, tables, profiles, gate, experiments, settings)

    # -- journeys in memory ---------------------------------------------------------------------------

    def invalidate(self) -> None:
        self._loaded_at = NEVER

    def graph(self, conn: Connection, journey_id: str, version: int) -> CompiledGraph:
        key = (journey_id, version)
        graph = self._graphs.get(key)
        if graph is None:
            document = self.journey_store.graph_document(conn, journey_id, version)
            parsed = json_format.ParseDict(document, pb.JourneyGraph())
            # Published graphs were valid when published; templates/experiments are looked up at send time.
            problems, compiled = validate(parsed, lambda _t: 0, lambda _e: None, trusted=True)
            if compiled is None:
                raise RuntimeError(f"journey {journey_id} v{version} no longer compiles: {problems[0].message}")
            self._graphs[key] = graph = compiled
        return graph

    def refresh(self, conn: Connection, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._loaded_at < self.settings.journey_refresh_seconds:
            return
        rows = self.journey_store.live(conn)
        journeys: dict[str, RunningJourney] = {}
        by_type: dict[str, list[str]] = {}
        waits: set[str] = set()
        goals: set[str] = set()
        scheduled: list[str] = []
        for row in rows:
            running = RunningJourney(
                row["journey_id"],
                row["journey_state"],
                row["published_version"],
                row["priority"],
                row["purpose"],
                json_format.ParseDict(row["entry_rules"], pb.EntryRules()),
                row["start_at"],
                row["end_at"],
                row["updated_at"],
            )
            journeys[running.journey_id] = running
            graph = self.graph(conn, running.journey_id, running.version)
            if isinstance(graph.trigger, ScheduledEntry):
                scheduled.append(running.journey_id)
            for event_type in graph.trigger.event_types:
                by_type.setdefault(event_type, []).append(running.journey_id)
        # Customers may still be on older versions: the waits and goals of every version listen too (graphs are
        # cached, and the version table is small: no scan of the participants).
        for journey_id, version in self.journey_store.versions(conn, list(journeys)):
            graph = self.graph(conn, journey_id, version)
            waits.update(n.wait_event.event_type for n in graph.wait_events() if n.wait_event)
            goals.update(n.goal_event.event_type for n in graph.goals() if n.goal_event)
        with self._lock:
            self._journeys, self._by_type, self._waits, self._goals = journeys, by_type, waits, goals
            self._scheduled = scheduled
            self._loaded_at = time.monotonic()

    def journey(self, journey_id: str) -> RunningJourney | None:
        return self._journeys.get(journey_id)

    def scheduled_journeys(self) -> list[str]:
        """Running or paused journeys whose trigger is a schedule."""
        return list(self._scheduled)

    # -- the log --------------------------------------------------------------------------------------

    def load_cursor(self) -> str:
        with self.db.connection() as conn:
            return self.journey_store.cursor(conn, self.settings.consumer_name)

    def handle(self, events: list[event_pb2.Event], cursor: str = "") -> BatchStats:
        """Apply a batch of log events and store ``cursor``, all in one transaction, in a span of its own (a trace
        per batch, not one per statement; the calls to svc_profile carry it)."""
        with batch_span(_tracer, LOG_BATCH_SPAN, {"qiming.events": len(events)}):
            return self._handle(events, cursor)

    def _handle(self, events: list[event_pb2.Event], cursor: str) -> BatchStats:
        started = time.perf_counter()
        batch = BatchStats(events=len(events))
        with self.db.connection(write=True) as conn:
            self.refresh(conn)
            now = self.clock.now()
            try:
                states = self._entry_states(conn, events)
                entering = {e.user_id for e in events if e.user_id and e.event_type in self._by_type}
                if ALL_EVENTS in self._by_type:
                    entering = {e.user_id for e in events if e.user_id}
                if len(entering) > 1:
                    self.walker.prefetch(conn, entering, now)
                erased = erased_at(conn, self.t, entering) if entering else {}
                for event in events:
                    if event.user_id:
                        self._on_event(conn, event, now, batch, states, erased)
                self.walker.flush(conn)
            except BaseException:
                self.walker.discard()
                raise
            if cursor:
                self.journey_store.save_cursor(conn, self.settings.consumer_name, cursor, now)
        batch.seconds = time.perf_counter() - started
        return batch

    def _entry_states(self, conn: Connection, events: list[event_pb2.Event]) -> dict[str, str]:
        """The states of the journeys these events may enter (see entry_states)."""
        ids = {j for e in events if e.user_id for j in self._by_type.get(e.event_type, ())}
        if any(e.user_id for e in events):
            ids.update(self._by_type.get(ALL_EVENTS, ()))
        return self.entry_states(conn, ids)

    def entry_states(self, conn: Connection, journey_ids: set[str]) -> dict[str, str]:
        """The states of journeys about to take entries, read now (not from the cache), on PostgreSQL ``FOR
        SHARE`` until the transaction ends: a stop (``Journeys.transition`` locks the row ``FOR UPDATE``) waits
        for the entries and then ends them, or the entries wait for the stop and see STOPPED. With the cached
        state a stop during a batch, or by another process, left entries and QUEUED messages behind."""
        return self.journey_store.entry_states(conn, journey_ids)

    def journey_states(self, conn: Connection, journey_ids: set[str]) -> dict[str, str]:
        """The states of these journeys as committed now (no lock), not as cached."""
        return self.journey_store.states(conn, journey_ids)

    def _on_event(
        self,
        conn: Connection,
        event: event_pb2.Event,
        now: dt.datetime,
        batch: BatchStats,
        states: dict[str, str],
        erased: dict[str, dt.datetime],
    ) -> None:
        user = event.user_id
        if event.event_type == ERASED:
            self.walker.flush(conn)  # entries earlier in this batch are erased too
            # The customer's gate lock first: a scheduled run entering them in another transaction either entered
            # them before (and they leave now) or waits and then sees them on the suppression list.
            self.walker.gate.lock_customers(conn, [user])
            done = erase_customer(conn, self.t, user, now, event_time(event))
            erased[user] = done.at
            profile_id = event.properties["profile_id"].string_value if "profile_id" in event.properties else ""
            what = {"journeys_ended": done.journeys, "messages_blanked": done.messages}
            log.info("customer erased", extra={"customer_id": user, "profile_id": profile_id, **what})
            return
        if user in erased and event_time(event) <= erased[user]:
            return  # from before the customer's erasure, arriving late: it brings nobody back (erasure.py)
        for journey_id in (*self._by_type.get(event.event_type, ()), *self._by_type.get(ALL_EVENTS, ())):
            journey = self._journeys[journey_id]
            if states.get(journey_id) != "RUNNING":
                continue
            trigger = self.graph(conn, journey_id, journey.version).trigger
            state = self._load_state(conn, journey, user) if trigger.stateful else {}
            step = trigger.on_event(state, event)
            self._apply(conn, journey, user, step, now)
            if step.fire:
                context = {
                    "event": json_properties(event),
                    "event_id": event.event_id,
                    "event_type": event.event_type,
                    "event_at": utc_iso(event_time(event)),  # goals before it convert nothing (Walker.on_goal_event)
                }
                if self.walker.enter(conn, journey, user, context, f"event:{event.event_id}", now, batch):
                    batch.entered += 1
        if event.event_type in self._waits:
            self.walker.on_awaited_event(conn, event, now, batch)
        if event.event_type in self._goals:
            self.walker.on_goal_event(conn, event, now)
        self.experiments.on_event(conn, event)

    # -- stopping -------------------------------------------------------------------------------------

    def stop_journey(self, conn: Connection, journey_id: str, reason: str, now: dt.datetime) -> int:
        """Everyone in the journey exits; its timers, trigger state and unsent messages go."""
        left = exit_in_flight(
            conn,
            self.t,
            "journey_id",
            journey_id,
            exit_reason=f"stopped:{reason}",
            suppression="journey_stopped",
            now=now,
        )
        self.schedule_store.cancel_journey(conn, journey_id, now)
        self.invalidate()
        return left


def local_day_start(now: dt.datetime, zone: str) -> dt.datetime:
    local = now.astimezone(zoneinfo.ZoneInfo(zone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)


__all__ = [
    "EPOCH",
    "LOG_BATCH_SPAN",
    "PARTICIPANT_COLUMNS",
    "SHARE_LOCK_DIALECTS",
    "TIMER_COLUMNS",
    "TIMER_SHARE_DIALECTS",
    "BatchStats",
    "Engine",
    "RunningJourney",
    "bucket",
    "due_timers",
    "event_time",
    "local_day_start",
    "timer_share",
    "trigger_timer_id",
]
