"""Trigger state and timers of the engine: arming, cancelling and firing due timers (see svc_campaign.engine).

Every due timer is deleted in the transaction of its effect, and decides on the state of its journey read in that
transaction (not the engine's cache, which another process's stop or pause reaches only at the next refresh).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from sqlalchemy.engine import Connection

from svc_campaign.outbox import stable_id
from svc_campaign.running import BatchStats, RunningJourney
from svc_campaign.store._timers import PARTICIPANT_COLUMNS
from svc_campaign.triggers import Step
from svc_common.telemetry import batch_span

if TYPE_CHECKING:
    from svc_campaign.engine import Engine

_PARTICIPANT = itemgetter(*(f"p_{c}" for c in PARTICIPANT_COLUMNS))
TIMER_BATCH_SPAN = "campaign timer batch"
_tracer = trace.get_tracer("qiming.campaign")


def trigger_timer_id(journey_id: str, user: str, key: str) -> str:
    return "t:" + stable_id(journey_id, user, key)


class TimerFiring:
    """The engine's trigger state and timers (a mixin of :class:`svc_campaign.engine.Engine`)."""

    # -- trigger state --------------------------------------------------------------------------------

    def _load_state(self: Engine, conn: Connection, journey: RunningJourney, user: str) -> dict[str, Any]:
        state = self.timer_store.trigger_state(conn, journey.journey_id, user)
        if state is None or state.get("v") != journey.version:
            return {}
        return state

    def _apply(
        self: Engine, conn: Connection, journey: RunningJourney, user: str, step: Step, now: dt.datetime
    ) -> None:
        if step.state is not None:
            if step.state:
                state = {**step.state, "v": journey.version}
                self.timer_store.save_trigger_state(conn, journey.journey_id, user, state, now)
            else:
                self.timer_store.drop_trigger_state(conn, journey.journey_id, user)
        for key in step.cancel:
            self.timer_store.cancel(conn, trigger_timer_id(journey.journey_id, user, key))
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
        self: Engine,
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
        self.timer_store.arm(conn, row)

    # -- firing ---------------------------------------------------------------------------------------

    @property
    def bulk_claim(self: Engine) -> bool:
        """False: claim due timers with one DELETE each even where DELETE ... RETURNING exists (tests compare)."""
        return self.timer_store.bulk_claim

    @bulk_claim.setter
    def bulk_claim(self: Engine, value: bool) -> None:
        self.timer_store.bulk_claim = value

    def fire_due_timers(self: Engine, limit: int | None = None, share: tuple[int, int] | None = None) -> BatchStats:
        """Fire the timers due now, each deleted in the transaction of its effect (exactly once). ``share``
        ``(k, n)``: only the timers of customers in share k of n (PostgreSQL; see ``timer_share``), so that n loops
        can fire at once without two of them ever handling the same customer."""
        started = time.perf_counter()
        batch = BatchStats()
        # A span (a trace) per batch that found due timers, open until its commit: its statements and its calls to
        # svc_profile share it. A poll that finds none starts no trace (one every 200 ms would bury the calls').
        with contextlib.ExitStack() as span, self.db.connection(write=True) as conn:
            self.refresh(conn)
            now = self.clock.now()
            rows = self.timer_store.due(conn, now, limit or self.settings.timer_batch_size, share)
            if rows:
                span.enter_context(batch_span(_tracer, TIMER_BATCH_SPAN, {"qiming.timers": len(rows)}))
            try:
                # The journeys' states as they are now, not as cached: another process may have stopped or paused
                # one. Timers of a journey a transition holds right now wait for a later batch (see timer_states).
                states = self.timer_states(conn, {r["journey_id"] for r in rows})
                rows = [r for r in rows if r["journey_id"] in states]
                # The timers of participants (wait, goal) are deleted together up front: nothing in the batch can
                # re-arm or cancel one before it fires (a participant has one timer, and only its own walk arms
                # it). Trigger timers stay one by one: firing one may cancel or re-arm another of the batch.
                claimed = self.timer_store.claim(conn, [r["timer_id"] for r in rows if r["kind"] != "trigger"])
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
                        if not self.timer_store.delete(conn, row["timer_id"]):
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

    def timer_states(self: Engine, conn: Connection, journey_ids: set[str]) -> dict[str, str]:
        """The states of the journeys of a batch of due timers, read now, in one statement; on PostgreSQL ``FOR
        SHARE SKIP LOCKED``: a journey a transition holds (``FOR UPDATE``: a stop, perhaps waiting for this batch's
        timer rows to delete them) is left out, and its timers wait for a later batch, after the stop has deleted
        them or the pause is visible (waiting for the row instead could deadlock with that stop). The cache is
        reloaded when it disagrees on a running journey (started or republished by another process)."""
        found = self.journey_store.timer_states(conn, journey_ids)
        if any(
            state in ("RUNNING", "PAUSED")
            and (journey_id not in self._journeys or self._journeys[journey_id].version != version)
            for journey_id, state, version in found
        ):
            self.refresh(conn, force=True)
        return {journey_id: state for journey_id, state, _ in found}

    def _fire(
        self: Engine,
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

    def pending_timers(self: Engine) -> int:
        with self.db.connection() as conn:
            return self.timer_store.count(conn)


__all__ = ["TIMER_BATCH_SPAN", "TimerFiring", "trigger_timer_id"]
