"""A customer erased in svc_profile (PIPL deletion, ``DeleteProfile``) while journeys still hold them.

svc_profile publishes ``$profile_erased`` to the log, one event per customer id the person had. On it, in the
transaction of the batch that carries it, the customer leaves every journey (exit reason ``customer_erased``),
their timers and trigger state go, and messages not sent yet are suppressed with that reason — nothing
reaches a customer after the erasure is in the log. The rendered text of every message to them is blanked
(it may hold their name or other profile fields); the record that a touch happened (channel, template,
times, status) stays in the contact history, which brokers must keep for their regulators. Consent records
stay as they are: a withdrawal must stay provable.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Table, update
from sqlalchemy.engine import Connection

from svc_campaign.exits import exit_in_flight

ERASED = "$profile_erased"
REASON = "customer_erased"


def erase_customer(conn: Connection, t: dict[str, Table], user_id: str, now: dt.datetime) -> int:
    """Everything in flight for ``user_id`` stops; returns how many journeys they left."""
    left = exit_in_flight(conn, t, "user_id", user_id, exit_reason=REASON, suppression=REASON, now=now)
    m = t["message"]
    conn.execute(update(m).where(m.c.user_id == user_id).values(title="", body="", link=""))
    return left


__all__ = ["ERASED", "REASON", "erase_customer"]
