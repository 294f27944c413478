"""A customer erased in svc_profile (PIPL deletion, ``DeleteProfile``) while journeys still hold them.

svc_profile publishes ``$profile_erased`` to the log, one event per customer id the person had. On it, in the
transaction of the batch that carries it, the customer leaves every journey (exit reason ``customer_erased``),
their timers and trigger state go, and messages not sent yet are suppressed with that reason — nothing
reaches a customer after the erasure is in the log. The rendered text of every message to them is blanked
(it may hold their name or other profile fields); the record that a touch happened (channel, template,
times, status) stays in the contact history, which brokers must keep for their regulators. Consent records
stay as they are: a withdrawal must stay provable.

Nothing brings them back: they leave the member lists of scheduled runs still entering, and the customer id goes
on a suppression list (``campaign_erased``, with the time) so that an event of theirs from before the erasure that
reaches the log later (an app uploading its backlog, the rest of the same batch) enters no journey. An event that
happened after the erasure is a new relationship (a re-opened account) and is handled as any other.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection

from svc_campaign.exits import exit_in_flight
from svc_campaign.store._outbox import blank_messages
from svc_campaign.store._participants import erased_at, leave_scheduled_runs, mark_erased

ERASED = "$profile_erased"
REASON = "customer_erased"


class Erased(NamedTuple):
    at: dt.datetime
    """The erasure time kept on the suppression list."""
    journeys: int
    """Participations it ended."""
    messages: int
    """The customer's messages, their texts blanked."""


def erase_customer(
    conn: Connection, t: dict[str, Table], user_id: str, now: dt.datetime, erased: dt.datetime | None = None
) -> Erased:
    """Everything in flight for ``user_id`` stops. ``erased``: when the erasure happened (the ``$profile_erased``
    event's time; default ``now``), kept on the suppression list — the later one when the customer was erased
    before — so that a log read late or replayed judges events against the erasure, not against when it was
    read. Returns the time kept and what it ended and blanked (for the log line an auditor reads)."""
    journeys = exit_in_flight(conn, t, "user_id", user_id, exit_reason=REASON, suppression=REASON, now=now)
    m = t["message"].c
    messages = conn.execute(select(func.count()).where(m.user_id == user_id)).scalar_one()
    blank_messages(conn, t, user_id)
    leave_scheduled_runs(conn, t, user_id)
    at = erased or now
    before = erased_at(conn, t, [user_id]).get(user_id)
    if before is None or before < at:
        mark_erased(conn, t, user_id, at)
    return Erased(max(at, before) if before is not None else at, journeys, int(messages))


__all__ = ["ERASED", "REASON", "Erased", "erase_customer", "erased_at"]
