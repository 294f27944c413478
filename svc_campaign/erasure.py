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

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.engine import Connection

ERASED = "$profile_erased"
REASON = "customer_erased"


def erase_customer(conn: Connection, t: dict[str, Table], user_id: str, now: dt.datetime) -> int:
    """Everything in flight for ``user_id`` stops; returns how many journeys they left."""
    i = t["instance"]
    active = conn.execute(
        select(i.c.instance_id, i.c.journey_id, i.c.current_node).where(i.c.user_id == user_id, i.c.status != "done")
    ).all()
    if active:
        conn.execute(
            insert(t["visit"]),
            [
                {
                    "instance_id": r.instance_id,
                    "journey_id": r.journey_id,
                    "node_id": r.current_node,
                    "outcome": f"exited:{REASON}",
                    "at": now,
                }
                for r in active
            ],
        )
        conn.execute(
            update(i)
            .where(i.c.user_id == user_id, i.c.status != "done")
            .values(status="done", exit_reason=REASON, updated_at=now, next_action_at=None)
        )
    conn.execute(delete(t["timer"]).where(t["timer"].c.user_id == user_id))
    conn.execute(delete(t["trigger_state"]).where(t["trigger_state"].c.user_id == user_id))
    m = t["message"]
    conn.execute(
        update(m)
        .where(m.c.user_id == user_id, m.c.status.in_(("QUEUED", "DEFERRED")))
        .values(status="SUPPRESSED", suppression_reason=REASON, next_attempt_at=None)
    )
    conn.execute(update(m).where(m.c.user_id == user_id).values(title="", body="", link=""))
    return len(active)


__all__ = ["ERASED", "REASON", "erase_customer"]
