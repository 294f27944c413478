"""The durable outbox: a message row is written in the transaction of its cause (a journey step or a
``SendMessage`` call), with its policy outcome: QUEUED, DEFERRED (quiet hours, with the time it may go) or
SUPPRESSED (with the reason). The dispatcher delivers QUEUED and due DEFERRED rows; receipts move them on.
Events for svc_collect's log ($message_sent, $message_delivered, $message_clicked) are written to a second
outbox in the same transactions and published afterwards."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection, RowMapping

from svc_campaign.content import template_facts
from svc_campaign.store._outbox import UNSENT as UNSENT
from svc_campaign.store._outbox import add_message, add_pending_event, preempt_messages
from svc_campaign.store._outbox import in_flight as in_flight
from svc_campaign.store._outbox import withdraw as withdraw
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import event_pb2, types_pb2

STATUS_EVENT = {
    "SENT": "$message_sent",
    "DELIVERED": "$message_delivered",
    "CLICKED": "$message_clicked",
    "FAILED": "$message_failed",
}


CANCEL_REASONS = frozenset({"journey_stopped", "customer_erased", "preempted_by_priority"})
"""Why an unsent message is withdrawn. A message at the gateway at that moment (its lease live) keeps its status
and only takes the reason, as a cancel request: the gateway's answer decides (accepted: SENT, the reason kept as
a note; not accepted: SUPPRESSED with the reason, never retried)."""


def stable_id(*parts: object) -> str:
    digest = _SHA256.copy()  # a copy of an empty hash: OpenSSL 3 looks the algorithm up for every new one
    digest.update("\x1f".join(map(str, parts)).encode())
    return digest.hexdigest()[:32]


_SHA256 = hashlib.sha256()


def ordered_id(at: dt.datetime, *parts: object) -> str:
    """32 hex digits like :func:`stable_id` (the same parts and time give the same id), led by the time in
    milliseconds (48 bits, as in UUIDv7): rows written together sit together in the primary key and in indexes
    made from the id (the outbox's idempotency key), instead of one random page of each per row."""
    stamp = _STAMPS.get(at) if at.tzinfo is dt.UTC else None
    if stamp is None:
        millis = (at - _EPOCH) // _MILLI
        stamp = (f"{millis & 0xFFFFFFFFFFFF:012x}", at.astimezone(dt.UTC).isoformat())
        if at.tzinfo is dt.UTC:  # a batch's messages share their time: worked out once (see clock.utc_iso)
            if len(_STAMPS) >= 4096:
                _STAMPS.clear()
            _STAMPS[at] = stamp
    return stamp[0] + stable_id(*parts, stamp[1])[:20]


_STAMPS: dict[dt.datetime, tuple[str, str]] = {}


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MILLI = dt.timedelta(milliseconds=1)


def new_message(
    *,
    message_id: str,
    user_id: str,
    channel: int,
    template: pb.Template,
    now: dt.datetime,
    purpose: str,
    is_marketing: bool,
    priority: int = 0,
    journey_id: str = "",
    node_id: str = "",
    instance_id: str = "",
    experiment_id: str = "",
    variant: str = "",
    idempotency_key: str = "",
) -> dict[str, Any]:
    facts = template_facts(template)
    return {
        "message_id": message_id,
        "user_id": user_id,
        "channel": channel,
        "template_id": facts.template_id,
        "template_version": facts.version,
        "journey_id": journey_id,
        "node_id": node_id,
        "instance_id": instance_id,
        "experiment_id": experiment_id,
        "variant": variant,
        "status": "QUEUED",
        "title": "",
        "body": "",
        "link": "",
        "purpose": purpose,
        "is_marketing": is_marketing,
        "priority": priority,
        "idempotency_key": idempotency_key or f"qiming-{message_id}",
        "attempts": 0,
        "next_attempt_at": now,
        "lease_until": None,
        "failure_reason": "",
        "suppression_reason": "",
        "gateway_message_id": "",
        "created_at": now,
        "scheduled_at": None,
        "sent_at": None,
        "delivered_at": None,
        "clicked_at": None,
    }


def insert_message(
    conn: Connection,
    tables: dict[str, Table],
    row: dict[str, Any] | None,
    preempt: list[str],
    now: dt.datetime | None = None,
) -> bool:
    """Suppress the ``preempt``-ed unsent messages (one already at the gateway only takes the reason: see
    :data:`CANCEL_REASONS`), then insert ``row`` (None: only the first part). ``now``: the row's ``created_at``
    when not given; with neither, any leased message counts as at the gateway. False when a stored message of
    ``preempt`` was not suppressed (a delivery round claimed or sent it since the gate read it): it may reach the
    customer, so the touch that wanted its room must not go too."""
    kept = 0
    if preempt:
        kept = preempt_messages(conn, tables, preempt, now or (row["created_at"] if row is not None else None))
    if row is not None:
        add_message(conn, tables, row)
    return kept == 0


def message_event(row: RowMapping | dict[str, Any], status: str, at: dt.datetime) -> event_pb2.Event:
    """The log event of a message reaching ``status`` (a deterministic id: re-publishing is harmless)."""
    event = event_pb2.Event(
        event_id=str(uuid.UUID(hex=stable_id("campaign", row["message_id"], status))),
        event_type=STATUS_EVENT[status],
        user_id=row["user_id"],
        channel=types_pb2.CHANNEL_SERVER,
    )
    event.occurred_at.FromDatetime(at)
    props = {
        "message_id": row["message_id"],
        "channel": pb.ChannelType.Name(row["channel"]).removeprefix("CHANNEL_TYPE_").lower(),
        "template_id": row["template_id"],
        "journey_id": row["journey_id"],
        "node_id": row["node_id"],
        "experiment_id": row["experiment_id"],
        "variant": row["variant"],
    }
    for name, value in props.items():
        if value:
            event.properties[name].string_value = value
    return event


def queue_event(conn: Connection, tables: dict[str, Table], event: event_pb2.Event, now: dt.datetime) -> None:
    add_pending_event(conn, tables, event.event_id, event.SerializeToString(), now, event.user_id)


def to_proto(row: RowMapping | dict[str, Any]) -> pb.Message:
    message = pb.Message(
        message_id=row["message_id"],
        user=types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=row["user_id"]),
        channel=row["channel"],
        template_id=row["template_id"],
        template_version=row["template_version"],
        journey_id=row["journey_id"],
        node_id=row["node_id"],
        experiment_id=row["experiment_id"],
        variant=row["variant"],
        status=pb.MessageStatus.Value(f"MESSAGE_STATUS_{row['status']}"),
        title=row["title"],
        body=row["body"],
        attempts=row["attempts"],
        failure_reason=row["failure_reason"],
        suppression_reason=row["suppression_reason"],
        idempotency_key=row["idempotency_key"],
        is_marketing=row["is_marketing"],
    )
    for name in ("created_at", "scheduled_at", "sent_at", "delivered_at", "clicked_at"):
        if row[name] is not None:
            getattr(message, name).FromDatetime(row[name])
    return message
