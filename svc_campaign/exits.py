"""Taking customers out of journeys in bulk: everyone in a stopped journey, or one erased customer everywhere."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.engine import Connection

from svc_campaign.outbox import withdraw


def exit_in_flight(
    conn: Connection,
    t: dict[str, Table],
    column: str,
    value: str,
    *,
    exit_reason: str,
    suppression: str,
    now: dt.datetime,
) -> int:
    """Every participation still going where ``column`` (``journey_id`` or ``user_id``) is ``value`` ends with
    ``exit_reason`` (a visit ``exited:<suppression>`` records it); those rows' timers and trigger state go, and
    their unsent messages are suppressed with ``suppression``, except one at the gateway right now (leased): it
    only takes the reason, and the gateway's answer decides (see ``outbox.CANCEL_REASONS``). Returns how many
    participations ended."""
    i = t["instance"]
    going = i.c[column] == value, i.c.status != "done"
    active = conn.execute(select(i.c.instance_id, i.c.journey_id, i.c.current_node).where(*going)).all()
    if active:
        visits = [
            {
                "instance_id": r.instance_id,
                "journey_id": r.journey_id,
                "node_id": r.current_node,
                "outcome": f"exited:{suppression}",
                "at": now,
            }
            for r in active
        ]
        conn.execute(insert(t["visit"]), visits)
        conn.execute(
            update(i)
            .where(*going)
            .values(status="done", exit_reason=exit_reason[:64], updated_at=now, next_action_at=None)
        )
    conn.execute(delete(t["timer"]).where(t["timer"].c[column] == value))
    conn.execute(delete(t["trigger_state"]).where(t["trigger_state"].c[column] == value))
    m = t["message"]
    conn.execute(withdraw(m, [m.c[column] == value], suppression, now))
    return len(active)


__all__ = ["exit_in_flight"]
