"""Sending from a journey (or a one-off ``SendMessage``): templates and the contact policy (cached briefly), the
policy gate over the channel and its fallbacks, and the message row with its outcome. Mixed into
:class:`svc_campaign.journey_walk.Walker`."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from google.protobuf import json_format
from sqlalchemy.engine import Connection

from svc_campaign.checks import is_service_purpose
from svc_campaign.graph import CompiledNode
from svc_campaign.outbox import UNSENT, insert_message, new_message, ordered_id
from svc_campaign.policy import Decision, Touch
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2


class Sender:
    """Needs ``self.t``, ``self.gate``, ``self.settings``, ``self.engine``, ``self._templates``, ``self._policies``
    and the batched writes (``self._writes()``, ``self.pending_messages()``, ``self._known()``)."""

    def invalidate(self) -> None:
        self._templates.clear()
        self._policies.forget()

    def template(self, conn: Connection, template_id: str) -> pb.Template | None:
        hit = self._templates.get(template_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        document = self.template_store.document(conn, template_id)
        found = json_format.ParseDict(document, pb.Template()) if document is not None else None
        self._templates[template_id] = (time.monotonic() + self.settings.journey_refresh_seconds, found)
        return found

    def policy(self, conn: Connection) -> pb.ContactPolicy:
        return self._policies.get(conn)

    # -- entry ----------------------------------------------------------------------------------------

    def _send(
        self,
        conn: Connection,
        instance: dict[str, Any],
        node_id: str,
        send: CompiledNode,
        context: dict[str, Any],
        profile: profile_pb2.Profile | None,
        now: dt.datetime,
        cause: str = "",
    ) -> str:
        journey = self.engine.journey(instance["journey_id"])
        priority = journey.priority if journey else 0
        purpose = (journey.purpose if journey else "") or "marketing"
        # A send of a marketing journey is marketing whatever its flag: a version published by an earlier release
        # (before PublishJourney refused is_marketing = false there) may already be running; StartJourney refuses it.
        is_marketing = send.is_marketing or not is_service_purpose(purpose)
        template = self.template(conn, send.template_id)
        message_id = journey_message_id(now, instance["instance_id"], node_id, cause)
        fields = {
            "journey_id": instance["journey_id"],
            "node_id": node_id,
            "instance_id": instance["instance_id"],
            "experiment_id": context.get("experiment_id", ""),
            "variant": context.get("variant", ""),
        }
        if template is None:
            row = new_message(
                message_id=message_id,
                user_id=instance["user_id"],
                channel=send.channels[0],
                template=pb.Template(template_id=send.template_id),
                now=now,
                purpose=purpose,
                is_marketing=is_marketing,
                priority=priority,
                **fields,
            )
            row.update(status="SUPPRESSED", suppression_reason="unknown_template", next_attempt_at=None)
            insert_message(conn, self.t, row, [])
            return "suppressed:unknown_template"
        row, reason = self.decide(
            conn,
            instance["user_id"],
            list(send.channels),
            template,
            purpose,
            is_marketing,
            priority,
            profile,
            _event_values(context),
            now,
            message_id,
            fields,
        )
        return {"QUEUED": "sent", "DEFERRED": "deferred"}.get(row["status"], f"suppressed:{reason}")

    def decide(
        self,
        conn: Connection,
        user: str,
        channels: list[int],
        template: pb.Template,
        purpose: str,
        is_marketing: bool,
        priority: int,
        profile: profile_pb2.Profile | None,
        event: dict[str, Any],
        now: dt.datetime,
        message_id: str,
        fields: dict[str, Any],
        idempotency_key: str = "",
    ) -> tuple[dict[str, Any], str]:
        """Run the gate over the channel and its fallbacks; write the message (queued, deferred or suppressed)."""
        policy = self.policy(conn)
        # The customer's pending messages and what was read ahead, looked up once for every channel tried.
        pending, known = self.pending_messages(user), self._known(user)
        first: tuple[int, Any] | None = None
        deferred: tuple[int, Any] | None = None
        for channel in channels:
            decision = self.gate.check(
                conn,
                policy,
                Touch(user, channel, template, purpose, is_marketing, priority, profile, event, pending, *known),
                now,
            )
            first = first or (channel, decision)
            if decision.allowed and decision.deferred_until is None:
                row = self._write(
                    conn,
                    user,
                    channel,
                    template,
                    purpose,
                    is_marketing,
                    priority,
                    now,
                    message_id,
                    fields,
                    decision,
                    idempotency_key,
                )
                return row, row["suppression_reason"] if row["status"] == "SUPPRESSED" else ""
            if decision.allowed and deferred is None:
                deferred = (channel, decision)
        channel, decision = deferred or first  # type: ignore[misc]
        row = self._write(
            conn,
            user,
            channel,
            template,
            purpose,
            is_marketing,
            priority,
            now,
            message_id,
            fields,
            decision,
            idempotency_key,
        )
        return row, decision.reason

    def _write(
        self, conn, user, channel, template, purpose, is_marketing, priority, now, message_id, fields, decision, key
    ):
        row = new_message(
            message_id=message_id,
            user_id=user,
            channel=channel,
            template=template,
            now=now,
            purpose=purpose,
            is_marketing=is_marketing,
            priority=priority,
            idempotency_key=key,
            **fields,
        )
        row["title"], row["body"], row["link"] = decision.rendered
        if decision.allowed and decision.preempt and not self._preempt(conn, user, decision.preempt, now):
            # A message it would take the room of was claimed by a delivery round meanwhile: the cap holds.
            decision = Decision(False, decision.preempt_reason, rendered=decision.rendered)
        if not decision.allowed:
            row.update(status="SUPPRESSED", suppression_reason=decision.reason, next_attempt_at=None)
        elif decision.deferred_until is not None:
            row.update(
                status="DEFERRED",
                scheduled_at=decision.deferred_until,
                next_attempt_at=decision.deferred_until,
                suppression_reason=decision.reason,
            )
        writes = self._writes()
        writes.messages.append(row)
        writes.messages_by_user.setdefault(user, []).append(row)
        return row

    def _preempt(self, conn: Connection, user: str, preempt: list[str], now: dt.datetime) -> bool:
        """Suppress the messages ``preempt`` names, this batch's and stored ones; False when a stored one could not
        be (see ``insert_message``)."""
        writes = self._writes()
        for pending in writes.messages:
            if pending["message_id"] in preempt and pending["status"] in UNSENT:
                pending.update(status="SUPPRESSED", suppression_reason="preempted_by_priority", next_attempt_at=None)
        done = insert_message(conn, self.t, None, preempt, now)
        recent = writes.recent.get(user)
        if recent:
            writes.recent[user] = [r._replace(status="SUPPRESSED") if r.message_id in preempt else r for r in recent]
        return done

    # -- events and timers for customers already in ---------------------------------------------------


def journey_message_id(at: dt.datetime, instance_id: str, node_id: str, cause: str) -> str:
    """The id of a journey's message (its idempotency key is made from it): time-ordered, so a batch's messages are
    appended to the outbox's key and idempotency index (see ordered_id); of the participant, the node and the cause
    of the walk that reached it (the entry, an awaited event, a timer). One walk passes a node once (every cycle
    has a wait), so a participant sent from one node twice in one batch (a wait looping back to its send, ended by
    a second event) gets two ids: one id twice failed the batch's insert, and the log stalled on it for ever."""
    return ordered_id(at, instance_id, node_id, cause)


def _event_values(context: dict[str, Any]) -> dict[str, Any]:
    return context.get("event", {}) if isinstance(context, dict) else {}
