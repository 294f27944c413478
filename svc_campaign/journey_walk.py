"""Walking customers through a journey's nodes: entry rules, waits, branches, splits, sends, goals, exits.

A customer (an *instance*) stays on the version they entered; each node they pass is recorded as a visit
with its outcome (``sent``, ``suppressed:no_consent``, ``branch:0``, ``split:B``, ``timeout`` ...), which is
what reports and ``GetJourneyProgress`` read; the plain exit at an exit node is the participant's ``exited_at``
instead of a visit row (campaign_0008; svc_campaign.store._reports reads both).
"""

from __future__ import annotations

import datetime as dt
import threading
import zoneinfo
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection

from svc_campaign.batch import BatchedWrites, Previous
from svc_campaign.clock import GOAL_CLOCK_SLACK, later, span, utc_iso, window_start
from svc_campaign.config import CampaignSettings
from svc_campaign.experiments import Experiments, bucket
from svc_campaign.outbox import ordered_id
from svc_campaign.policy import PolicyCache, PolicyGate
from svc_campaign.profiles import PersonSubject, ProfileDirectory
from svc_campaign.sending import Sender, _event_values
from svc_campaign.store._participants import ParticipantStore
from svc_campaign.store._templates import TemplateStore
from svc_campaign.store._timers import TimerStore
from svc_campaign.triggers import event_time
from svc_common.conditions import evaluate
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import event_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2

if TYPE_CHECKING:
    from svc_campaign.engine import BatchStats, Engine, RunningJourney

MAX_STEPS = 100
_UNSET = object()


def _entry_event_time(context: dict[str, Any] | None) -> dt.datetime | None:
    """The own time of the event that entered a participant (``event_at`` of its entry context, 0.2.9 on); None for
    an entry by a timer or a schedule, or one made before 0.2.9."""
    text = (context or {}).get("event_at")
    return dt.datetime.fromisoformat(text) if text else None


def instance_timer_id(instance_id: str) -> str:
    return f"i:{instance_id}"


class Walker(BatchedWrites, Sender):
    def __init__(
        self,
        engine: Engine,
        tables: dict[str, Table],
        profiles: ProfileDirectory,
        gate: PolicyGate,
        experiments: Experiments,
        settings: CampaignSettings,
    ) -> None:
        self.engine = engine
        self.t = tables
        self.profiles = profiles
        self.gate = gate
        self.experiments = experiments
        self.settings = settings
        self._templates: dict[str, tuple[float, pb.Template | None]] = {}
        self._policies = PolicyCache(tables["policy"], settings.journey_refresh_seconds)
        # Visits wait here (per thread: the follower and the timer loop each have their transaction) and are
        # written in one statement before the transaction commits.
        self._local = threading.local()
        self.store = ParticipantStore(tables)
        self.template_store = TemplateStore(tables)
        self.timer_store = TimerStore(tables)

    def enter(
        self,
        conn: Connection,
        journey: RunningJourney,
        user: str,
        context: dict[str, Any],
        entry_key: str,
        now: dt.datetime,
        batch: BatchStats,
    ) -> bool:
        if (journey.start_at and now < journey.start_at) or (journey.end_at and now >= journey.end_at):
            return False
        rules = journey.entry_rules
        writes = self._writes()
        previous = next(
            (
                Previous(p["status"], p["entered_at"])
                for p in reversed(writes.participants)
                if p["user_id"] == user and p["journey_id"] == journey.journey_id
            ),
            None,
        )
        if previous is None:
            if user in writes.known_users and (user, journey.journey_id) not in writes.dropped:
                previous = writes.previous.get((user, journey.journey_id))
            else:
                self.flush_updates(conn)  # the query sees participants changed earlier in this transaction
                previous = self.store.previous(conn, user, journey.journey_id)
        if previous is not None:
            if previous.status != "done" or not rules.allow_reentry:
                return False
            if rules.reentry_cooldown_seconds and now - previous.entered_at < span(rules.reentry_cooldown_seconds):
                return False
        if rules.max_entries or rules.max_entries_per_day:
            self.flush(conn)  # entries earlier in this batch count
            if rules.max_entries and self.store.entries(conn, journey.journey_id) >= rules.max_entries:
                return False
            if rules.max_entries_per_day:
                zone = zoneinfo.ZoneInfo(self.settings.timezone)
                day = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
                if self.store.entries(conn, journey.journey_id, day) >= rules.max_entries_per_day:
                    return False
        profile: Any = _UNSET
        if rules.audience_segment_id:
            profile = self.profiles.get(user)
            if profile is None or rules.audience_segment_id not in profile.segment_ids:
                return False
        instance = {
            # Time-ordered (see ordered_id): customers who entered together are together in the participants' key,
            # their timers' key and their visits' index, so a batch of timers that come due together touches a
            # few pages of each instead of one random page per customer.
            "instance_id": ordered_id(now, journey.journey_id, user, entry_key),
            "journey_id": journey.journey_id,
            "version_no": journey.version,
            "user_id": user,
            "status": "active",
            "current_node": "",
            "entry_event": context,
            "waiting_for": None,
            "next_action_at": None,
            "entered_at": now,
            "updated_at": now,
            "last_send_at": None,
            "converted_at": None,
            "exit_reason": "",
            "exited_at": None,
            "final_send_node": None,
            "final_send_outcome": None,
        }
        graph = self.engine.graph(conn, journey.journey_id, journey.version)
        self.walk(conn, instance, graph.entry, now, batch, profile, new=True, cause=f"enter:{entry_key}")
        return True

    # -- the walk -------------------------------------------------------------------------------------

    def _visit(
        self, conn: Connection, instance: dict[str, Any], node_id: str, outcome: str, now: dt.datetime
    ) -> dict[str, Any]:
        """Record a visit (written at the next flush); returns its row."""
        row = {
            "instance_id": instance["instance_id"],
            "journey_id": instance["journey_id"],
            "node_id": node_id,
            "outcome": outcome[:96],
            "at": now,
        }
        self._pending().append(row)
        return row

    def walk(
        self,
        conn: Connection,
        instance: dict[str, Any],
        node_id: str,
        now: dt.datetime,
        batch: BatchStats,
        profile: Any = _UNSET,
        *,
        new: bool = False,
        cause: str = "",
    ) -> None:
        """Walk from ``node_id`` until a wait, a goal or an exit; ``new``: the participant row is inserted (with
        its state after the walk: one statement instead of two). ``cause``: what moves the participant now
        (``enter:<entry key>``, ``event:<id>`` of an awaited event, ``timer:<due>``); a wait for an event records
        it, and the walk's message ids hold it (see journey_message_id)."""
        graph = self.engine.graph(conn, instance["journey_id"], instance["version_no"])
        changes: dict[str, Any] = {"status": "active", "waiting_for": None, "next_action_at": None}
        context = instance["entry_event"]

        def person() -> profile_pb2.Profile | None:
            nonlocal profile
            if profile is _UNSET:
                profile = self.profiles.get(instance["user_id"])
            return profile

        sent: dict[str, Any] | None = None  # the visit of this walk's latest send (still the last visit: just before)
        for _ in range(MAX_STEPS):
            compiled = graph.nodes[node_id]
            node = compiled.node
            changes["current_node"] = node_id
            kind = compiled.kind
            if kind == "trigger":
                self._visit(conn, instance, node_id, "entered", now)
                node_id = compiled.next_node_id
            elif kind == "wait":
                due, waiting_for = self._wait_until(node.wait, now, cause)
                self.engine.arm(
                    conn,
                    instance_timer_id(instance["instance_id"]),
                    due,
                    "wait",
                    instance["journey_id"],
                    instance["user_id"],
                    instance["instance_id"],
                    {"node": node_id},
                )
                changes.update(status="waiting", next_action_at=due, waiting_for=waiting_for)
                self._visit(conn, instance, node_id, "waiting", now)
                break
            elif kind == "branch":
                subject = PersonSubject(person(), _event_values(context))
                chosen = next((n for n, c in enumerate(compiled.branch_conditions) if evaluate(c, subject)), None)
                self._visit(
                    conn, instance, node_id, f"branch:{chosen}" if chosen is not None else "branch:default", now
                )
                node_id = node.branch.arms[chosen].next_node_id if chosen is not None else node.branch.default_node_id
            elif kind == "split":
                variant = self._split(conn, instance, node_id, node.split, now)
                context = {**context, "experiment_id": node.split.experiment_id, "variant": variant}
                changes["entry_event"] = context
                self._visit(conn, instance, node_id, f"split:{variant}", now)
                node_id = next(a.next_node_id for a in node.split.arms if a.variant == variant)
            elif kind == "send":
                outcome = self._send(conn, instance, node_id, compiled, context, person(), now, cause)
                sent = self._visit(conn, instance, node_id, outcome, now)
                if outcome in ("sent", "deferred"):
                    changes["last_send_at"] = now
                    batch.messages += 1
                suppressed = outcome.startswith("suppressed")
                node_id = (
                    compiled.suppressed_node_id if suppressed and compiled.suppressed_node_id else compiled.next_node_id
                )
            elif kind == "goal":
                due = later(now, node.goal.attribution_window_seconds)
                self.engine.arm(
                    conn,
                    instance_timer_id(instance["instance_id"]),
                    due,
                    "goal",
                    instance["journey_id"],
                    instance["user_id"],
                    instance["instance_id"],
                    {"node": node_id},
                )
                changes.update(status="waiting", next_action_at=due)
                self._visit(conn, instance, node_id, "waiting_for_goal", now)
                break
            else:  # exit
                # The visit "exited" is the participant's exited_at (campaign_0008), not a visit row; so is the visit
                # of a send just before it in this walk (a journey's usual end), in final_send_node and _outcome.
                changes.update(status="done", exit_reason=compiled.exit_reason, exited_at=now)
                pending = self._pending()
                if sent is not None and pending and pending[-1] is sent:
                    pending.pop()
                    changes.update(final_send_node=sent["node_id"], final_send_outcome=sent["outcome"])
                break
        else:
            changes.update(status="done", exit_reason="step_limit")
            self._visit(conn, instance, node_id, "exited:step_limit", now)
        changes["updated_at"] = now
        instance.update(changes)
        if new:
            self._writes().participants.append(instance)
        else:
            self.update_participant(instance["instance_id"], changes)
            self._writes().dropped.add((instance["user_id"], instance["journey_id"]))

    def _wait_until(self, wait: pb.WaitNode, now: dt.datetime, cause: str) -> tuple[dt.datetime, dict[str, Any] | None]:
        which = wait.WhichOneof("kind")
        if which == "duration_seconds":
            return later(now, wait.duration_seconds), None
        if which == "until_time_of_day":
            tod = wait.until_time_of_day
            zone = zoneinfo.ZoneInfo(tod.timezone or self.settings.timezone)
            local = now.astimezone(zone)
            target = local.replace(hour=tod.hour, minute=tod.minute, second=0, microsecond=0)
            if target <= local:
                target = (local + dt.timedelta(days=1)).replace(
                    hour=tod.hour, minute=tod.minute, second=0, microsecond=0
                )
            return target.astimezone(dt.UTC), None
        until = wait.until_event
        # ``begun_by``: what moved the customer here (``event:<id>`` for the event that entered them or ended their
        # previous wait): that event did not come after the wait began, so it does not end it.
        return later(now, until.timeout_seconds), {
            "event_type": until.event.event_type,
            "begun_by": cause.removeprefix("enter:"),
        }

    def _split(
        self, conn: Connection, instance: dict[str, Any], node_id: str, split: pb.SplitNode, now: dt.datetime
    ) -> str:
        if split.experiment_id:
            experiment = self.experiments.get(conn, split.experiment_id, missing_ok=True)
            if experiment is not None:
                return self.experiments.assign(conn, experiment, instance["user_id"], now, expose=True)
        # Salted with the node: two splits of one journey are independent coins. Not with the version: a customer
        # keeps their arm of a split node across republished versions (a republish does not reshuffle anyone).
        point, edge = bucket(f"{instance['journey_id']}:{node_id}", instance["user_id"]), 0
        for arm in split.arms:
            edge += arm.weight_bps
            if point < edge:
                return arm.variant
        return split.arms[-1].variant

    def _load(self, conn: Connection, instance_id: str) -> dict[str, Any] | None:
        self.flush(conn)
        return self.store.load(conn, instance_id)

    def on_timer(
        self,
        conn: Connection,
        timer: dict[str, Any],
        now: dt.datetime,
        batch: BatchStats,
        loaded: dict[str, Any] | None = None,
    ) -> None:
        """``loaded``: the participant as read at the start of this transaction (one timer per participant, so
        nothing earlier in the batch changed it); None: read it now."""
        instance = loaded if loaded is not None else self._load(conn, timer["instance_id"])
        node_id = timer["payload"].get("node", "")
        if instance is None or instance["status"] != "waiting" or instance["current_node"] != node_id:
            return
        graph = self.engine.graph(conn, instance["journey_id"], instance["version_no"])
        compiled = graph.nodes[node_id]
        if timer["kind"] == "goal":
            self._visit(conn, instance, node_id, "exited:goal_window_ended", now)
            changes = {"status": "done", "exit_reason": "goal_window_ended", "next_action_at": None, "updated_at": now}
            self.update_participant(instance["instance_id"], changes)
            self._writes().dropped.add((instance["user_id"], instance["journey_id"]))
            return
        cause = f"timer:{utc_iso(timer['due_at'])}"
        if compiled.wait_kind == "until_event":
            self._visit(conn, instance, node_id, "timeout", now)
            self.walk(conn, instance, compiled.timeout_node_id, now, batch, cause=cause)
        else:
            self.walk(conn, instance, compiled.next_node_id, now, batch, cause=cause)

    def on_awaited_event(self, conn: Connection, event: event_pb2.Event, now: dt.datetime, batch: BatchStats) -> None:
        self.flush(conn)  # customers who entered earlier in this batch may be the ones waiting
        rows = self.store.waiting_for_events(conn, event.user_id)
        cause = f"event:{event.event_id}"
        for row in rows:
            instance = dict(row)
            waiting_for = instance["waiting_for"] or {}
            if waiting_for.get("event_type") != event.event_type or waiting_for.get("begun_by") == cause:
                continue  # another event, or the one whose walk began this wait (it did not come after it)
            graph = self.engine.graph(conn, instance["journey_id"], instance["version_no"])
            compiled = graph.nodes[instance["current_node"]]
            if compiled.wait_event is None or not compiled.wait_event(event):
                continue
            at_wait = ("waiting", instance["current_node"], instance["waiting_for"])
            found, claimed = self._claim(
                conn, instance, lambda r, at_wait=at_wait: (r["status"], r["current_node"], r["waiting_for"]) == at_wait
            )
            if found is None or not claimed:
                continue  # the wait's timeout fired meanwhile, in another transaction: it took the other exit
            instance = found
            self._visit(conn, instance, instance["current_node"], "event", now)
            self.walk(conn, instance, compiled.next_node_id, now, batch, cause=cause)

    def on_goal_event(self, conn: Connection, event: event_pb2.Event, now: dt.datetime) -> None:
        """A goal event converts a customer in the journey, or one who left within the window after a send; one
        that happened before the event that entered the customer converts nothing (until 0.2.9 it did: a late
        upload of the day before, a time of year 1). Event times are compared with event times, not with the
        service's clock, so a consumer catching up after a stop still converts what came after the entry."""
        self.flush(conn)
        rows = self.store.unconverted(conn, event.user_id)
        at = event_time(event)
        for row in rows:
            if (row["entry_event"] or {}).get("event_id") == event.event_id:
                continue  # the event that entered the customer is not a conversion of that participation
            graph = self.engine.graph(conn, row["journey_id"], row["version_no"])
            goals = [g for g in graph.goals() if g.goal_event is not None and g.goal_event(event)]
            if not goals:
                continue
            began = _entry_event_time(row["entry_event"])
            if began is not None and at < window_start(began, GOAL_CLOCK_SLACK):
                continue  # it happened before the event that began this participation (a late upload, year 1)
            instance, in_journey = dict(row), False
            if row["status"] != "done":
                # Converting ends the participation: a move, claimed as the timer loop claims one (its goal
                # window, or a wait's timer, may be firing in another transaction right now).
                found, in_journey = self._claim(conn, instance, lambda r: r["status"] != "done")
                if found is None or found["converted_at"] is not None:
                    continue
                instance = found
            for goal in goals:
                window = span(goal.node.goal.attribution_window_seconds)
                sent = instance["last_send_at"]
                recent_send = sent is not None and sent >= window_start(at, window)
                if not (in_journey or recent_send):
                    continue
                self._visit(conn, instance, goal.node.node_id, "converted", now)
                changes: dict[str, Any] = {"converted_at": at, "updated_at": now}
                if in_journey:
                    changes.update(
                        status="done", exit_reason="converted", next_action_at=None, current_node=goal.node.node_id
                    )
                self.store.update(conn, row["instance_id"], changes)
                break

    def _claim(
        self, conn: Connection, instance: dict[str, Any], still: Callable[[dict[str, Any]], bool]
    ) -> tuple[dict[str, Any] | None, bool]:
        """Claim the right to move a participant on by deleting its timer, as the timer loop claims a timer that
        fires (PostgreSQL: while another transaction fires it, this delete waits for that one to end, then finds
        nothing; without the check both moved the customer, e.g. down a wait's event exit and its timeout exit).
        Returns the participant and True when claimed. Not claimed: the participant is read again (the other
        transaction has committed) and claimed again while ``still`` holds of it (a paused journey's timer
        re-armed, or a wait moved on to the next); else it is returned with False (None: gone, or still contended
        after a few tries)."""
        for _ in range(3):
            if self.timer_store.delete(conn, instance_timer_id(instance["instance_id"])):
                return instance, True
            found = self._load(conn, instance["instance_id"])
            if found is None or not still(found):
                return found, False
            instance = found
        return None, False
