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
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from google.protobuf import json_format
from sqlalchemy import Select, Table, bindparam, delete, func, select, update
from sqlalchemy.engine import Connection

from svc_campaign.clock import Clock
from svc_campaign.config import CampaignSettings
from svc_campaign.erasure import ERASED, erase_customer, erased_at
from svc_campaign.exits import exit_in_flight
from svc_campaign.experiments import Experiments, bucket
from svc_campaign.graph import CompiledGraph, validate
from svc_campaign.journey_walk import Walker
from svc_campaign.outbox import stable_id
from svc_campaign.policy import ARRAY_DIALECTS, PolicyGate
from svc_campaign.profiles import ProfileDirectory
from svc_campaign.store._bulk import DriverRows, among
from svc_campaign.triggers import ALL_EVENTS, ScheduledEntry, Step, event_time, json_properties
from svc_common.db import Database, upsert
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import event_pb2

log = logging.getLogger("qiming.campaign.engine")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
NEVER = -math.inf
"""``_loaded_at`` of journeys not loaded (0.0 was "loaded" while the monotonic clock was below the refresh period)."""
BULK_RETURNING = ("sqlite", "postgresql", "opengauss")
TIMER_SHARE_DIALECTS = ("postgresql",)
"""Where ``timer_workers`` loops fire timers at once, each for its share of the customers (see ``timer_share``)."""
SHARE_LOCK_DIALECTS = ("postgresql",)
"""Where an event batch reads the state of the journeys it may enter ``FOR SHARE`` (see Engine.entry_states)."""


@dataclass
class RunningJourney:
    journey_id: str
    state: str
    version: int
    priority: int
    purpose: str
    entry_rules: pb.EntryRules
    start_at: dt.datetime | None
    end_at: dt.datetime | None
    since: dt.datetime = EPOCH
    """When the journey last changed (started, resumed, published): a recurring schedule counts from here."""


@dataclass
class BatchStats:
    events: int = 0
    entered: int = 0
    messages: int = 0
    timers_fired: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


class Engine:
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
        self.walker = Walker(self, tables, profiles, gate, experiments, settings)
        timer = tables["timer"]
        self._delete_timer = delete(timer).where(timer.c.timer_id == bindparam("b_timer"))
        self._delete_timers = (
            delete(timer).where(timer.c.timer_id.in_(bindparam("b_timers", expanding=True))).returning(timer.c.timer_id)
        )
        # PostgreSQL: the ids as one array parameter (``= ANY``), not 200 binds to expand, convert and parse.
        self._delete_timers_array = delete(timer).where(among(timer.c.timer_id, "b_timers")).returning(timer.c.timer_id)
        self._due = DriverRows(lambda dialect: due_timers(tables, dialect))
        self._due_shares: dict[int, DriverRows] = {}
        """By the number of shares (see due_timers)."""
        self.bulk_claim = True
        """False: claim due timers with one DELETE each even where DELETE ... RETURNING exists (tests compare)."""

    # -- journeys in memory ---------------------------------------------------------------------------

    def invalidate(self) -> None:
        self._loaded_at = NEVER

    def graph(self, conn: Connection, journey_id: str, version: int) -> CompiledGraph:
        key = (journey_id, version)
        graph = self._graphs.get(key)
        if graph is None:
            v = self.t["journey_version"].c
            row = conn.execute(select(v.graph).where(v.journey_id == journey_id, v.version_no == version)).one()
            parsed = json_format.ParseDict(row.graph, pb.JourneyGraph())
            # Published graphs were valid when published; templates/experiments are looked up at send time.
            problems, compiled = validate(parsed, lambda _t: 0, lambda _e: None, trusted=True)
            if compiled is None:
                raise RuntimeError(f"journey {journey_id} v{version} no longer compiles: {problems[0].message}")
            self._graphs[key] = graph = compiled
        return graph

    def refresh(self, conn: Connection, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._loaded_at < self.settings.journey_refresh_seconds:
            return
        j = self.t["journey"].c
        rows = (
            conn.execute(select(self.t["journey"]).where(j.journey_state.in_(("RUNNING", "PAUSED")))).mappings().all()
        )
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
        v = self.t["journey_version"].c
        versions = (
            conn.execute(select(v.journey_id, v.version_no).where(v.journey_id.in_(list(journeys)))).all()
            if journeys
            else []
        )
        for journey_id, version in versions:
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
        c = self.t["consumer"].c
        with self.db.connection() as conn:
            row = conn.execute(select(c.log_cursor).where(c.consumer_name == self.settings.consumer_name)).first()
        return row.log_cursor if row is not None else ""

    def handle(self, events: list[event_pb2.Event], cursor: str = "") -> BatchStats:
        """Apply a batch of log events and store ``cursor``, all in one transaction."""
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
                upsert(
                    conn,
                    self.t["consumer"],
                    [{"consumer_name": self.settings.consumer_name, "log_cursor": cursor, "updated_at": now}],
                    keys=["consumer_name"],
                    updates=["log_cursor", "updated_at"],
                )
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
        if not journey_ids:
            return {}
        j = self.t["journey"].c
        query = select(j.journey_id, j.journey_state).where(j.journey_id.in_(sorted(journey_ids)))
        if conn.dialect.name in SHARE_LOCK_DIALECTS:
            query = query.order_by(j.journey_id).with_for_update(read=True)  # one order: no deadlock between batches
        return dict(conn.execute(query).tuples().all())

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
            erased[user] = erase_customer(conn, self.t, user, now, event_time(event))
            log.info("customer erased")
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
                context = {"event": json_properties(event), "event_id": event.event_id, "event_type": event.event_type}
                if self.walker.enter(conn, journey, user, context, f"event:{event.event_id}", now, batch):
                    batch.entered += 1
        if event.event_type in self._waits:
            self.walker.on_awaited_event(conn, event, now, batch)
        if event.event_type in self._goals:
            self.walker.on_goal_event(conn, event, now)
        self.experiments.on_event(conn, event)

    # -- trigger state and timers ---------------------------------------------------------------------

    def _load_state(self, conn: Connection, journey: RunningJourney, user: str) -> dict[str, Any]:
        s = self.t["trigger_state"].c
        row = conn.execute(select(s.state).where(s.journey_id == journey.journey_id, s.user_id == user)).first()
        if row is None or row.state.get("v") != journey.version:
            return {}
        return row.state

    def _apply(self, conn: Connection, journey: RunningJourney, user: str, step: Step, now: dt.datetime) -> None:
        s = self.t["trigger_state"]
        if step.state is not None:
            if step.state:
                upsert(
                    conn,
                    s,
                    [
                        {
                            "journey_id": journey.journey_id,
                            "user_id": user,
                            "state": {**step.state, "v": journey.version},
                            "updated_at": now,
                        }
                    ],
                    keys=["journey_id", "user_id"],
                    updates=["state", "updated_at"],
                )
            else:
                conn.execute(delete(s).where(s.c.journey_id == journey.journey_id, s.c.user_id == user))
        timer = self.t["timer"]
        for key in step.cancel:
            conn.execute(delete(timer).where(timer.c.timer_id == trigger_timer_id(journey.journey_id, user, key)))
        for key, due, payload in step.arm:
            self.arm(
                conn,
                trigger_timer_id(journey.journey_id, user, key),
                due,
                "trigger",
                journey.journey_id,
                user,
                "",
                {**payload, "key_name": key, "v": journey.version},
            )

    def arm(
        self,
        conn: Connection,
        timer_id: str,
        due: dt.datetime,
        kind: str,
        journey_id: str,
        user: str,
        instance_id: str,
        payload: dict[str, Any],
    ) -> None:
        row = {
            "timer_id": timer_id,
            "due_at": due,
            "kind": kind,
            "journey_id": journey_id,
            "user_id": user,
            "instance_id": instance_id,
            "payload": payload,
        }
        upsert(conn, self.t["timer"], [row], keys=["timer_id"], updates=["due_at", "kind", "instance_id", "payload"])

    def fire_due_timers(self, limit: int | None = None, share: tuple[int, int] | None = None) -> BatchStats:
        """Fire the timers due now, each deleted in the transaction of its effect (exactly once). ``share``
        ``(k, n)``: only the timers of customers in share k of n (PostgreSQL; see ``timer_share``), so that n loops
        can fire at once without two of them ever handling the same customer."""
        started = time.perf_counter()
        batch = BatchStats()
        with self.db.connection(write=True) as conn:
            self.refresh(conn)
            now = self.clock.now()
            # The due timers with their participants (one statement, on the driver; see due_timers).
            size = limit or self.settings.timer_batch_size
            if share is None or share[1] == 1:
                rows = self._due.fetch(conn, now=now, limit=size)
            else:
                k, n = share
                due = self._due_shares.get(n)
                if due is None:
                    due = self._due_shares[n] = DriverRows(lambda dialect: due_timers(self.t, dialect, shares=n))
                others = {f"other_{at}": j for at, j in enumerate(j for j in range(n) if j != k)}
                rows = due.fetch(conn, now=now, limit=size, shares=n, **others)
            try:
                # The journeys' states as they are now, not as cached: another process may have stopped or paused
                # one. Timers of a journey a transition holds right now wait for a later batch (see timer_states).
                states = self.timer_states(conn, {r["journey_id"] for r in rows})
                rows = [r for r in rows if r["journey_id"] in states]
                # The timers of participants (wait, goal) are deleted together up front: nothing in the batch can
                # re-arm or cancel one before it fires (a participant has one timer, and only its own walk arms
                # it). Trigger timers stay one by one: firing one may cancel or re-arm another of the batch.
                claimed = self._claim(conn, [r["timer_id"] for r in rows if r["kind"] != "trigger"])
                # Read ahead for the whole batch: the waiting participants came with their timers (as the table held
                # them at the start of this transaction: a participant has one timer, so nothing in the batch
                # changes another's participant first), and what the policy gate asks per customer.
                waiting = {
                    r["instance_id"]: dict(zip(PARTICIPANT_COLUMNS, _PARTICIPANT(r), strict=True))
                    for r in rows
                    if r["timer_id"] in claimed and r["p_instance_id"] is not None
                }
                users = {r["user_id"] for r in rows}
                if len(users) > 1:
                    # Only a trigger timer enters customers: the others need no participations read ahead.
                    entries = any(r["kind"] == "trigger" for r in rows)
                    self.walker.prefetch(conn, users, now, entries=entries)
                for row in rows:
                    if row["kind"] == "trigger":
                        if conn.execute(self._delete_timer, {"b_timer": row["timer_id"]}).rowcount != 1:
                            continue  # cancelled earlier in this batch, or another worker fired it
                    elif row["timer_id"] not in claimed:
                        continue  # another worker fired it
                    batch.timers_fired += 1
                    self._fire(conn, row, now, batch, states[row["journey_id"]], waiting)
                self.walker.flush(conn)
            except BaseException:
                self.walker.discard()
                raise
        batch.seconds = time.perf_counter() - started
        return batch

    def journey_states(self, conn: Connection, journey_ids: set[str]) -> dict[str, str]:
        """The states of these journeys as committed now (no lock), not as cached."""
        if not journey_ids:
            return {}
        j = self.t["journey"].c
        query = select(j.journey_id, j.journey_state).where(j.journey_id.in_(sorted(journey_ids)))
        return dict(conn.execute(query).tuples().all())

    def timer_states(self, conn: Connection, journey_ids: set[str]) -> dict[str, str]:
        """The states of the journeys of a batch of due timers, read now, in one statement; on PostgreSQL ``FOR
        SHARE SKIP LOCKED``: a journey a transition holds (``FOR UPDATE``: a stop, perhaps waiting for this batch's
        timer rows to delete them) is left out, and its timers wait for a later batch, after the stop has deleted
        them or the pause is visible (waiting for the row instead could deadlock with that stop). The cache is
        reloaded when it disagrees on a running journey (started or republished by another process)."""
        if not journey_ids:
            return {}
        j = self.t["journey"].c
        query = select(j.journey_id, j.journey_state, j.published_version).where(j.journey_id.in_(sorted(journey_ids)))
        locking = conn.dialect.name in SHARE_LOCK_DIALECTS
        found = conn.execute(query.with_for_update(read=True, skip_locked=True) if locking else query).all()
        if locking and len(found) < len(journey_ids):
            # Left out: held by a transition (its timers wait), or no such journey (they lapse, as STOPPED).
            exist = set(conn.execute(select(j.journey_id).where(j.journey_id.in_(sorted(journey_ids)))).scalars())
            found += [(gone, "STOPPED", 0) for gone in journey_ids - exist]
        if any(
            state in ("RUNNING", "PAUSED")
            and (journey_id not in self._journeys or self._journeys[journey_id].version != version)
            for journey_id, state, version in found
        ):
            self.refresh(conn, force=True)
        return {journey_id: state for journey_id, state, _ in found}

    def _claim(self, conn: Connection, timer_ids: list[str]) -> set[str]:
        """Delete these timers; return those this transaction deleted (another worker may have fired some). One
        ``DELETE ... RETURNING`` per 500 where the database returns many rows from it (Dameng's is Oracle's
        ``RETURNING ... INTO``: one row; SQLite before 3.35 has none), else one DELETE each (its row count says)."""
        if not timer_ids:
            return set()
        if not (self.bulk_claim and conn.dialect.name in BULK_RETURNING and conn.dialect.delete_returning):
            return {t for t in timer_ids if conn.execute(self._delete_timer, {"b_timer": t}).rowcount == 1}
        claimed: set[str] = set()
        statement = self._delete_timers_array if conn.dialect.name in ARRAY_DIALECTS else self._delete_timers
        for start in range(0, len(timer_ids), 500):
            chunk = timer_ids[start : start + 500]
            claimed.update(conn.execute(statement, {"b_timers": chunk}).scalars())
        return claimed

    def _fire(
        self,
        conn: Connection,
        row: dict[str, Any],
        now: dt.datetime,
        batch: BatchStats,
        state: str,
        waiting: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        if state == "PAUSED":
            # Paused: waiting customers keep waiting; look again later.
            self.arm(
                conn,
                row["timer_id"],
                now + dt.timedelta(seconds=self.settings.paused_recheck_seconds),
                row["kind"],
                row["journey_id"],
                row["user_id"],
                row["instance_id"],
                row["payload"],
            )
            return
        journey = self._journeys.get(row["journey_id"])
        if state != "RUNNING" or journey is None:
            return  # stopped (or no longer running): the timer lapses
        if row["kind"] == "trigger":
            payload = row["payload"]
            if payload.get("v") != journey.version:
                return
            trigger = self.graph(conn, journey.journey_id, journey.version).trigger
            step = trigger.on_timer(self._load_state(conn, journey, row["user_id"]), payload)
            self._apply(conn, journey, row["user_id"], step, now)
            if step.fire:
                context = {"event": step.event or {}, "event_id": "", "event_type": ""}
                key = f"timer:{row['timer_id']}:{row['due_at'].isoformat()}"
                if self.walker.enter(conn, journey, row["user_id"], context, key, now, batch):
                    batch.entered += 1
        else:
            self.walker.on_timer(conn, row, now, batch, (waiting or {}).get(row["instance_id"]))

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
        r = self.t["scheduled_run"]
        runs = select(r.c.run_id).where(r.c.journey_id == journey_id, r.c.run_state.in_(("exporting", "entering")))
        conn.execute(delete(self.t["scheduled_member"]).where(self.t["scheduled_member"].c.run_id.in_(runs)))
        conn.execute(
            update(r)
            .where(r.c.journey_id == journey_id, r.c.run_state.in_(("exporting", "entering")))
            .values(run_state="cancelled", finished_at=now, updated_at=now)
        )
        self.invalidate()
        return left

    def pending_timers(self) -> int:
        with self.db.connection() as conn:
            return conn.execute(select(func.count()).select_from(self.t["timer"])).scalar_one()


TIMER_COLUMNS = ("timer_id", "due_at", "kind", "journey_id", "user_id", "instance_id", "payload")
PARTICIPANT_COLUMNS = ("instance_id", "journey_id", "version_no", "user_id", "status", "current_node", "entry_event")
"""What a timer and the walk after it read of the participant (not the times and exit details)."""
_PARTICIPANT = itemgetter(*(f"p_{c}" for c in PARTICIPANT_COLUMNS))


def timer_share(user_id: Any) -> Any:
    """Which of ``shares`` timer loops fires a customer's timers (PostgreSQL: ``hashtext`` of the user id, its
    sign bit cleared, modulo ``shares``); all of one customer's timers fall in one share."""
    return func.hashtext(user_id).op("&")(0x7FFFFFFF) % bindparam("shares")


def due_timers(t: dict[str, Table], dialect: Any, *, shares: int = 1) -> Select[Any]:
    """The first due timers (bind ``now``, ``limit``) with their participants' columns (``p_<column>``, None for
    a trigger timer or a participant that is gone). By due time alone: the index on due_at gives the first rows
    without sorting all that are due (ties, e.g. 100,000 timers armed by one batch, would otherwise be sorted in
    full for every batch). PostgreSQL locks the timer rows, skipping those another worker holds. ``shares``
    above 1: only the customers of one share (PostgreSQL only, see ``timer_share``), written as "not in any other
    share" (binds ``other_0``, ...): PostgreSQL, with no statistics on the expression, takes ``= k`` to keep 1 row
    in 200 and would then join and sort every due timer rather than read the due-time index until ``limit`` rows
    match (seen at a batch of 500: a sort spilled to disk per batch); ``<>`` it takes to keep 199 in 200."""
    timer, instance = t["timer"], t["instance"]
    query = (
        select(*(timer.c[c] for c in TIMER_COLUMNS), *(instance.c[c].label(f"p_{c}") for c in PARTICIPANT_COLUMNS))
        .select_from(timer.outerjoin(instance, instance.c.instance_id == timer.c.instance_id))
        .where(timer.c.due_at <= bindparam("now", type_=timer.c.due_at.type))
        .order_by(timer.c.due_at)
        .limit(bindparam("limit"))
    )
    for at in range(shares - 1):
        query = query.where(timer_share(timer.c.user_id) != bindparam(f"other_{at}"))
    if dialect.name == "postgresql":
        query = query.with_for_update(of=timer, skip_locked=True)
    return query


def trigger_timer_id(journey_id: str, user: str, key: str) -> str:
    return "t:" + stable_id(journey_id, user, key)


def local_day_start(now: dt.datetime, zone: str) -> dt.datetime:
    local = now.astimezone(zoneinfo.ZoneInfo(zone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)


__all__ = ["BatchStats", "Engine", "RunningJourney", "bucket", "event_time", "local_day_start"]
