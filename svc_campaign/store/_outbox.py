"""The outbox's writes from a journey step or ``SendMessage``: withdrawing unsent messages, inserting one, blanking
an erased customer's texts, and the pending log events (see svc_campaign.outbox for what the rows mean)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, case, func, insert, select, update
from sqlalchemy.engine import Connection

from svc_common.db import upsert

UNSENT = ("QUEUED", "DEFERRED")


def in_flight(message: Table, now: dt.datetime | None) -> ColumnElement[bool]:
    """The message is leased to a dispatcher round now: at the gateway, or about to be. Without ``now``, any lease
    counts, an expired one too (a round that crashed: whether the gateway took it is unknown)."""
    m = message.c
    if now is None:
        return m.lease_until.is_not(None)
    return and_(m.lease_until.is_not(None), m.lease_until > now)


def withdraw(message: Table, where: list[ColumnElement[bool]], reason: str, now: dt.datetime | None) -> Any:
    """The UPDATE that suppresses the unsent messages ``where`` with ``reason``, except those in flight, which
    only take the reason (a cancel request, see ``outbox.CANCEL_REASONS``). One statement, so that on PostgreSQL a
    row whose lease a concurrent claim commits meanwhile is judged once, on the row as that claim left it."""
    m = message.c
    live = in_flight(message, now)
    return (
        update(message)
        .where(*where, m.status.in_(UNSENT))
        .values(
            status=case((live, m.status), else_="SUPPRESSED"),
            suppression_reason=reason,
            next_attempt_at=case((live, m.next_attempt_at), else_=None),
        )
    )


def preempt_messages(conn: Connection, tables: dict[str, Table], ids: list[str], at: dt.datetime | None) -> int:
    """Withdraw these messages (``preempted_by_priority``); returns how many of them are still not SUPPRESSED."""
    m = tables["message"]
    conn.execute(withdraw(m, [m.c.message_id.in_(ids)], "preempted_by_priority", at))
    left = select(func.count()).where(m.c.message_id.in_(ids), m.c.status != "SUPPRESSED")
    return conn.execute(left).scalar_one()


def add_message(conn: Connection, tables: dict[str, Table], row: dict[str, Any]) -> None:
    conn.execute(insert(tables["message"]), row)


def blank_messages(conn: Connection, tables: dict[str, Table], user_id: str) -> None:
    """The rendered texts of every message to ``user_id`` are blanked (the fact of each touch stays)."""
    m = tables["message"]
    conn.execute(update(m).where(m.c.user_id == user_id).values(title="", body="", link=""))


def add_pending_event(
    conn: Connection,
    tables: dict[str, Table],
    event_id: str,
    payload: bytes,
    now: dt.datetime,
    person_key: str | None = None,
) -> None:
    """A log event to publish after commit (once per id); ``person_key`` (the customer number) keeps a customer's
    events in order."""
    row = {"event_id": event_id, "payload": payload, "created_at": now, "person_key": person_key or None}
    upsert(conn, tables["pending_event"], [row], keys=["event_id"])


__all__ = ["UNSENT", "add_message", "add_pending_event", "blank_messages", "in_flight", "preempt_messages", "withdraw"]
