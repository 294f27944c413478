"""Scheduled segment entry: at a time (once, or at each time of a cron expression) everyone in a svc_profile
segment enters the journey.

A **run** is a row (``campaign_scheduled_run``) created once per scheduled time (its id is derived from the
journey and the time). It goes ``exporting`` → ``entering`` → ``done``:

- *exporting*: the members are streamed from ``SegmentService.ExportMembers`` (profile id order, with customer
  ids) into ``campaign_scheduled_member``, a page per transaction together with the last profile id read; a
  restart asks svc_profile for the members after that id (``after_profile_id``), and skips any it already has.
- *entering*: ``schedule_batch_size`` members per transaction go through the same entry rules, caps and policy
  gate as any trigger, and the run's cursor (the last profile id handled) is stored in that transaction, so a
  restart resumes after the last committed batch and nobody enters twice. Between two batches the log follower
  and the timers have their turn: a large broadcast does not hold up event triggers.

Paused journeys' runs wait; a stopped journey's runs are cancelled. A recurring schedule counts from the later
of its last run and the time the journey last started (or resumed): times while it did not run are skipped; a
time missed while the service was down runs late if it is at most ``schedule_catch_up_seconds`` old.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from sqlalchemy import Table
from sqlalchemy.engine import Connection

from svc_campaign.erasure import erased_at
from svc_campaign.outbox import stable_id
from svc_campaign.profiles import ExportFailed, SegmentMembers
from svc_campaign.running import BatchStats
from svc_campaign.store._scheduled import ACTIVE as ACTIVE
from svc_campaign.store._scheduled import ScheduleStore
from svc_campaign.triggers import ScheduledEntry
from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.telemetry import batch_span

if TYPE_CHECKING:
    from svc_campaign.engine import Engine, RunningJourney

log = logging.getLogger("qiming.campaign.scheduled")
_tracer = trace.get_tracer("qiming.campaign")
RUN_STEP_SPAN = "campaign scheduled run step"
"""The span of one step of a scheduled run (an export of members, or a batch of entries)."""
SCHEDULED_EVENT = "$scheduled"
RETRY_AFTER = dt.timedelta(seconds=10)
"""A run whose export failed is tried again after this long."""


class Scheduler:
    def __init__(self, engine: Engine, tables: dict[str, Table], members: SegmentMembers) -> None:
        self.engine = engine
        self.db = engine.db
        self.t = tables
        self.members = members
        self.store = ScheduleStore(tables)
        self.settings = engine.settings

    def run_once(self) -> int:
        """Create the runs that came due, then do one step of the oldest active run (one export, or one batch of
        entries). Returns how much was done (0: nothing to do now)."""
        with self.db.connection(write=True) as conn:
            self.engine.refresh(conn)
            # The journeys' states as they are now: the cache may not have seen another process start, pause or stop
            # one (it cancelled the runs of a journey started elsewhere a moment ago).
            states = self.engine.journey_states(conn, set(self.engine.scheduled_journeys()))
            created = self.plan(conn, self.engine.clock.now(), states)
            runs = self.store.active(conn)
            states.update(self.engine.journey_states(conn, {r["journey_id"] for r in runs} - states.keys()))
            for run in runs:
                if states.get(run["journey_id"]) not in ("RUNNING", "PAUSED"):
                    self._cancel(conn, [run["run_id"]])
        now = self.engine.clock.now()
        for run in runs:
            journey = self.engine.journey(run["journey_id"])
            if journey is None or states.get(run["journey_id"]) != "RUNNING":
                continue  # stopped (cancelled above), paused (the run waits), or not in the cache yet (next time)
            if run["last_error"] and now - run["updated_at"] < RETRY_AFTER:
                continue  # its export failed a moment ago: the other runs go first
            # A span (a trace) per step: its statements and its calls to svc_profile (ExportMembers,
            # BatchGetProfiles) share it, as a log batch's do (engine.LOG_BATCH_SPAN).
            step = run["run_state"]
            with batch_span(_tracer, RUN_STEP_SPAN, {"qiming.run_id": run["run_id"], "qiming.step": step}):
                done = self._export(run) if step == "exporting" else self._enter(run, journey)
            if done:
                return done + created
        return created

    # -- planning -------------------------------------------------------------------------------------

    def plan(self, conn: Connection, now: dt.datetime, states: dict[str, str]) -> int:
        """Create a run for each running scheduled journey whose time came (idempotent); ``states``: the journeys'
        states read in this transaction."""
        created = 0
        for journey_id in self.engine.scheduled_journeys():
            journey = self.engine.journey(journey_id)
            if journey is None or states.get(journey_id) != "RUNNING":
                continue
            trigger = self.engine.graph(conn, journey_id, journey.version).trigger
            assert isinstance(trigger, ScheduledEntry)
            due = self._due(conn, journey, trigger, now)
            if due is None:
                continue
            if trigger.cron is not None:
                run_id = stable_id(journey_id, "cron", due.isoformat())
            else:  # once per run_at (per journey when it has none), however often the journey is republished
                run_id = stable_id(journey_id, "once", trigger.run_at.isoformat() if trigger.run_at else "")
            if self.store.exists(conn, run_id):
                continue
            self.store.add(
                conn,
                {
                    "run_id": run_id,
                    "journey_id": journey_id,
                    "segment_id": trigger.segment_id,
                    "scheduled_for": due,
                    "run_state": "exporting",
                    "members": 0,
                    "processed": 0,
                    "entered": 0,
                    "without_customer_id": 0,
                    "export_after": "",
                    "entry_after": "",
                    "last_error": "",
                    "started_at": now,
                    "updated_at": now,
                    "finished_at": None,
                },
            )
            log.info("scheduled run %s of journey %s (segment %s) for %s", run_id, journey_id, trigger.segment_id, due)
            created += 1
        return created

    def _due(
        self, conn: Connection, journey: RunningJourney, trigger: ScheduledEntry, now: dt.datetime
    ) -> dt.datetime | None:
        if trigger.cron is None:
            due = trigger.run_at or journey.since
            return due if due <= now else None
        last = self.store.last_time(conn, journey.journey_id)
        catch_up = now - dt.timedelta(seconds=self.settings.schedule_catch_up_seconds)
        anchor = max(t for t in (last, journey.since, catch_up - dt.timedelta(microseconds=1)) if t is not None)
        return trigger.cron.latest_until(anchor, now)

    # -- exporting ------------------------------------------------------------------------------------

    def _export(self, run: dict[str, Any]) -> int:
        pages = 0
        try:
            # Resume after the last member stored (svc_profile's order): a restart does not stream the pages again.
            for page in self.members.export(run["segment_id"], run.get("export_after") or ""):
                if not page:
                    continue
                with self.db.connection(write=True) as conn:
                    if not self._still(conn, run["run_id"], "exporting"):
                        return pages
                    # After a restart the stream starts again: skip what is stored (by id, not by comparing ids:
                    # svc_profile's database may collate them differently from this one).
                    stored = self.store.stored(conn, run["run_id"], [p for p, _ in page])
                    fresh = [(pid, user) for pid, user in page if pid not in stored]
                    if not fresh:
                        continue
                    # Members without a customer id are kept too (user id ""), so a restart does not count them twice.
                    rows = [{"run_id": run["run_id"], "profile_id": p, "user_id": u} for p, u in fresh]
                    self.store.add_members(conn, rows)
                    with_id = sum(1 for _, u in fresh if u)
                    now = self.engine.clock.now()
                    self.store.exported(conn, run["run_id"], fresh[-1][0], with_id, len(fresh) - with_id, now)
                pages += 1
        except (ExportFailed, InvalidArgument) as exc:
            log.warning("scheduled run %s: export of segment %s failed: %s", run["run_id"], run["segment_id"], exc)
            with self.db.connection(write=True) as conn:
                self.store.update(
                    conn, run["run_id"], {"last_error": str(exc)[:1000], "updated_at": self.engine.clock.now()}
                )
            return 0
        with self.db.connection(write=True) as conn:
            if self._still(conn, run["run_id"], "exporting"):
                values = {"run_state": "entering", "last_error": "", "updated_at": self.engine.clock.now()}
                self.store.update(conn, run["run_id"], values)
        return pages + 1

    def _still(self, conn: Connection, run_id: str, state: str) -> bool:
        return self.store.state(conn, run_id) == state

    # -- entering -------------------------------------------------------------------------------------

    def _enter(self, run: dict[str, Any], journey: RunningJourney) -> int:
        walker = self.engine.walker
        with self.db.connection(write=True) as conn:
            now = self.engine.clock.now()
            # The journey's state read now (FOR SHARE on PostgreSQL) and first: a stop waits for these entries and
            # ends them, or they wait for the stop and see it (the cached state would let them race it).
            if self.engine.entry_states(conn, {run["journey_id"]}).get(run["journey_id"]) != "RUNNING":
                return 0
            if not self._still(conn, run["run_id"], "entering"):
                return 0
            cursor = self.store.entry_after(conn, run["run_id"])
            rows = self.store.members_after(conn, run["run_id"], cursor, self.settings.schedule_batch_size)
            if not rows:
                self.store.finish(conn, run["run_id"], now)
                log.info("scheduled run %s of journey %s done", run["run_id"], run["journey_id"])
                return 1
            batch: BatchStats = BatchStats(events=len(rows))
            context = {
                "event": {"segment_id": run["segment_id"], "run_id": run["run_id"]},
                "event_id": "",
                "event_type": SCHEDULED_EVENT,
            }
            entered, key = 0, f"run:{run['run_id']}"
            try:
                users = {u for _, u in rows if u}
                walker.prefetch(conn, users, now)  # their gate locks: an erasure in another transaction waits, or
                gone = erased_at(conn, self.t, users)  # committed first and its suppression row is seen here
                for _, user in rows:
                    if user and user not in gone and walker.enter(conn, journey, user, context, key, now, batch):
                        entered += 1
                walker.flush(conn)
            except BaseException:
                walker.discard()
                raise
            processed = sum(1 for _, u in rows if u)
            self.store.entered(conn, run["run_id"], rows[-1].profile_id, processed, entered, now)
        return len(rows)

    def _cancel(self, conn: Connection, run_ids: list[str]) -> None:
        self.store.cancel(conn, run_ids, self.engine.clock.now())

    # -- reading --------------------------------------------------------------------------------------

    def list_runs(self, conn: Connection, journey_id: str, limit: int) -> list[pb.ScheduledRun]:
        return [run_to_proto(row) for row in self.store.runs(conn, journey_id, limit or 50)]


_STATES = {
    "exporting": pb.ScheduledRun.STATE_EXPORTING,
    "entering": pb.ScheduledRun.STATE_ENTERING,
    "done": pb.ScheduledRun.STATE_DONE,
    "cancelled": pb.ScheduledRun.STATE_CANCELLED,
}


def run_to_proto(row: Any) -> pb.ScheduledRun:
    out = pb.ScheduledRun(
        run_id=row["run_id"],
        journey_id=row["journey_id"],
        segment_id=row["segment_id"],
        state=_STATES.get(row["run_state"], pb.ScheduledRun.STATE_UNSPECIFIED),
        members=row["members"],
        processed=row["processed"],
        entered=row["entered"],
        without_customer_id=row["without_customer_id"],
        last_error=row["last_error"],
    )
    out.scheduled_for.FromDatetime(row["scheduled_for"])
    out.started_at.FromDatetime(row["started_at"])
    if row["finished_at"] is not None:
        out.finished_at.FromDatetime(row["finished_at"])
    return out
