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
from collections.abc import Iterable

from sqlalchemy import Table, delete, select, update
from sqlalchemy.engine import Connection

from svc_campaign.exits import exit_in_flight
from svc_common.db import upsert

ERASED = "$profile_erased"
REASON = "customer_erased"


def erase_customer(
    conn: Connection, t: dict[str, Table], user_id: str, now: dt.datetime, erased: dt.datetime | None = None
) -> dt.datetime:
    """Everything in flight for ``user_id`` stops. ``erased``: when the erasure happened (the ``$profile_erased``
    event's time; default ``now``), kept on the suppression list — the later one when the customer was erased
    before — so that a log read late or replayed judges events against the erasure, not against when it was
    read. Returns the time kept."""
    exit_in_flight(conn, t, "user_id", user_id, exit_reason=REASON, suppression=REASON, now=now)
    m = t["message"]
    conn.execute(update(m).where(m.c.user_id == user_id).values(title="", body="", link=""))
    members = t["scheduled_member"]
    conn.execute(delete(members).where(members.c.user_id == user_id))
    at = erased or now
    before = erased_at(conn, t, [user_id]).get(user_id)
    if before is None or before < at:
        upsert(conn, t["erased"], [{"user_id": user_id, "erased_at": at}], keys=["user_id"], updates=["erased_at"])
    return max(at, before) if before is not None else at


def erased_at(conn: Connection, t: dict[str, Table], users: Iterable[str]) -> dict[str, dt.datetime]:
    """When each of ``users`` that was erased was erased (absent: never)."""
    e = t["erased"].c
    found: dict[str, dt.datetime] = {}
    users = list(users)
    for start in range(0, len(users), 500):
        chunk = users[start : start + 500]
        found.update(
            (row.user_id, row.erased_at)
            for row in conn.execute(select(e.user_id, e.erased_at).where(e.user_id.in_(chunk)))
        )
    return found


__all__ = ["ERASED", "REASON", "erase_customer", "erased_at"]
