"""Participants (a customer in a journey), their visits, customers leaving in bulk, and the erased customers'
suppression list: the statements of the walk, the batched writes, the exits and the erasure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Row, Table, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from svc_campaign.store._bulk import DriverUpdates, DriverWrite
from svc_campaign.store._outbox import withdraw
from svc_common.db import upsert


class ParticipantStore:
    def __init__(self, tables: dict[str, Table]) -> None:
        self.t = tables
        # Hot-path statements, built once (their compiled form is cached; values travel as parameters).
        i = tables["instance"].c
        self._previous = (
            select(i.status, i.entered_at)
            .where(i.user_id == bindparam("b_user"), i.journey_id == bindparam("b_journey"))
            .order_by(i.entered_at.desc())
            .limit(1)
        )
        # A batch's rows go to the driver with executemany (see svc_campaign.store._bulk): every column of the
        # participant and outbox rows; visits without their id (the database numbers them).
        self.insert_participants = DriverWrite(tables["instance"], list(tables["instance"].c.keys()))
        self.update_participants = DriverUpdates(tables["instance"], "instance_id")
        self.insert_visits = DriverWrite(tables["visit"], [c.key for c in tables["visit"].c if c.key != "visit_id"])
        self.insert_messages = DriverWrite(tables["message"], list(tables["message"].c.keys()))

    def previous(self, conn: Connection, user: str, journey_id: str) -> Row[Any] | None:
        """The customer's latest participation in the journey (status, entered_at)."""
        return conn.execute(self._previous, {"b_user": user, "b_journey": journey_id}).first()

    def participations(self, conn: Connection, users: Sequence[str]) -> Iterable[Row[Any]]:
        """(user_id, journey_id, status, entered_at) of every participation of these customers (at most 500), oldest
        first."""
        i = self.t["instance"].c
        return conn.execute(
            select(i.user_id, i.journey_id, i.status, i.entered_at).where(i.user_id.in_(users)).order_by(i.entered_at)
        )

    def entries(self, conn: Connection, journey_id: str, since: dt.datetime | None = None) -> int:
        """How many customers entered the journey (since ``since``)."""
        i = self.t["instance"].c
        count = select(func.count()).select_from(self.t["instance"]).where(i.journey_id == journey_id)
        if since is not None:
            count = count.where(i.entered_at >= since)
        return conn.execute(count).scalar_one()

    def load(self, conn: Connection, instance_id: str) -> dict[str, Any] | None:
        i = self.t["instance"]
        row = conn.execute(select(i).where(i.c.instance_id == instance_id)).mappings().first()
        return dict(row) if row is not None else None

    def waiting_for_events(self, conn: Connection, user: str) -> Sequence[RowMapping]:
        """The customer's participants waiting for an event."""
        i = self.t["instance"].c
        query = select(self.t["instance"]).where(i.user_id == user, i.status == "waiting", i.waiting_for.is_not(None))
        return conn.execute(query).mappings().all()

    def unconverted(self, conn: Connection, user: str) -> Sequence[RowMapping]:
        """The customer's participations not converted yet (in the journey or gone)."""
        i = self.t["instance"].c
        return (
            conn.execute(select(self.t["instance"]).where(i.user_id == user, i.converted_at.is_(None))).mappings().all()
        )

    def update(self, conn: Connection, instance_id: str, changes: dict[str, Any]) -> None:
        i = self.t["instance"]
        conn.execute(update(i).where(i.c.instance_id == instance_id).values(**changes))


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


# -- the erased customers' suppression list ------------------------------------------------------------


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


def mark_erased(conn: Connection, t: dict[str, Table], user_id: str, at: dt.datetime) -> None:
    upsert(conn, t["erased"], [{"user_id": user_id, "erased_at": at}], keys=["user_id"], updates=["erased_at"])


def leave_scheduled_runs(conn: Connection, t: dict[str, Table], user_id: str) -> None:
    """The customer leaves the member lists of scheduled runs still entering."""
    members = t["scheduled_member"]
    conn.execute(delete(members).where(members.c.user_id == user_id))


__all__ = ["ParticipantStore", "erased_at", "exit_in_flight", "leave_scheduled_runs", "mark_erased"]
