"""Timers and trigger state: the statements the engine, the walk and the timer loops run on them.

A due timer is deleted in the transaction of its effect; on PostgreSQL the due rows are read ``FOR UPDATE SKIP
LOCKED`` and, with ``timer_workers`` loops, each loop reads only its share of the customers (``timer_share``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Select, Table, bindparam, delete, func, select
from sqlalchemy.engine import Connection

from svc_campaign.store._bulk import ARRAY_DIALECTS, DriverRows, among
from svc_common.db import upsert

BULK_RETURNING = ("sqlite", "postgresql", "opengauss")
TIMER_SHARE_DIALECTS = ("postgresql",)
"""Where ``timer_workers`` loops fire timers at once, each for its share of the customers (see ``timer_share``)."""
TIMER_COLUMNS = ("timer_id", "due_at", "kind", "journey_id", "user_id", "instance_id", "payload")
PARTICIPANT_COLUMNS = ("instance_id", "journey_id", "version_no", "user_id", "status", "current_node", "entry_event")
"""What a timer and the walk after it read of the participant (not the times and exit details)."""


def timer_share(user_id: Any) -> Any:
    """Which of ``shares`` timer loops fires a customer's timers (PostgreSQL: ``hashtext`` of the user id, its
    sign bit cleared, modulo ``shares``); all of one customer's timers fall in one share."""
    return func.hashtext(user_id).op("&")(0x7FFFFFFF) % bindparam("shares")


def due_timers(t: dict[str, Table], dialect: Any, *, shares: int = 1) -> Select[Any]:
    """The first due timers (bind ``now``, ``limit``) with their participants' columns (``p_<column>``, None for
    a trigger timer or a participant that is gone). By due time alone: the index on due_at gives the first rows
    without sorting all that are due (ties, e.g. 100,000 timers armed by one batch, would otherwise be sorted in
    full for every batch). PostgreSQL locks the timer rows, skipping those another worker holds. ``shares``
    above 1: only the customers of one share (PostgreSQL only, see ``timer_share``), written as "not in any other
    share" (binds ``other_0``, ...): PostgreSQL, with no statistics on the expression, takes ``= k`` to keep 1 row
    in 200 and would then join and sort every due timer rather than read the due-time index until ``limit`` rows
    match (seen at a batch of 500: a sort spilled to disk per batch); ``<>`` it takes to keep 199 in 200."""
    timer, instance = t["timer"], t["instance"]
    query = (
        select(*(timer.c[c] for c in TIMER_COLUMNS), *(instance.c[c].label(f"p_{c}") for c in PARTICIPANT_COLUMNS))
        .select_from(timer.outerjoin(instance, instance.c.instance_id == timer.c.instance_id))
        .where(timer.c.due_at <= bindparam("now", type_=timer.c.due_at.type))
        .order_by(timer.c.due_at)
        .limit(bindparam("limit"))
    )
    for at in range(shares - 1):
        query = query.where(timer_share(timer.c.user_id) != bindparam(f"other_{at}"))
    if dialect.name == "postgresql":
        query = query.with_for_update(of=timer, skip_locked=True)
    return query


class TimerStore:
    def __init__(self, tables: dict[str, Table]) -> None:
        self.t = tables
        timer = tables["timer"]
        self._delete_timer = delete(timer).where(timer.c.timer_id == bindparam("b_timer"))
        self._delete_timers = (
            delete(timer).where(timer.c.timer_id.in_(bindparam("b_timers", expanding=True))).returning(timer.c.timer_id)
        )
        # PostgreSQL: the ids as one array parameter (``= ANY``), not 200 binds to expand, convert and parse.
        self._delete_timers_array = delete(timer).where(among(timer.c.timer_id, "b_timers")).returning(timer.c.timer_id)
        # On the driver: its rows in one fetch (through SQLAlchemy's result, a fetch and a row object per timer).
        self._claim_array = DriverRows(lambda _dialect: self._delete_timers_array)
        self._due = DriverRows(lambda dialect: due_timers(tables, dialect))
        self._due_shares: dict[int, DriverRows] = {}
        """By the number of shares (see due_timers)."""
        self.bulk_claim = True
        """False: claim due timers with one DELETE each even where DELETE ... RETURNING exists (tests compare)."""

    def due(
        self, conn: Connection, now: dt.datetime, limit: int, share: tuple[int, int] | None
    ) -> list[dict[str, Any]]:
        """The due timers with their participants (one statement, on the driver; see due_timers)."""
        if share is None or share[1] == 1:
            return self._due.fetch(conn, now=now, limit=limit)
        k, n = share
        due = self._due_shares.get(n)
        if due is None:
            due = self._due_shares[n] = DriverRows(lambda dialect: due_timers(self.t, dialect, shares=n))
        others = {f"other_{at}": j for at, j in enumerate(j for j in range(n) if j != k)}
        return due.fetch(conn, now=now, limit=limit, shares=n, **others)

    def delete(self, conn: Connection, timer_id: str) -> bool:
        """Delete one timer; False when it was not there (fired or cancelled by another transaction)."""
        return conn.execute(self._delete_timer, {"b_timer": timer_id}).rowcount == 1

    def claim(self, conn: Connection, timer_ids: list[str]) -> set[str]:
        """Delete these timers; return those this transaction deleted (another worker may have fired some). One
        ``DELETE ... RETURNING`` per 500 where the database returns many rows from it (Dameng's is Oracle's
        ``RETURNING ... INTO``: one row; SQLite before 3.35 has none), else one DELETE each (its row count says)."""
        if not timer_ids:
            return set()
        if not (self.bulk_claim and conn.dialect.name in BULK_RETURNING and conn.dialect.delete_returning):
            return {t for t in timer_ids if self.delete(conn, t)}
        claimed: set[str] = set()
        array = conn.dialect.name in ARRAY_DIALECTS
        for start in range(0, len(timer_ids), 500):
            chunk = timer_ids[start : start + 500]
            if array:
                claimed.update(row["timer_id"] for row in self._claim_array.fetch(conn, b_timers=chunk))
            else:
                claimed.update(conn.execute(self._delete_timers, {"b_timers": chunk}).scalars())
        return claimed

    def cancel(self, conn: Connection, timer_id: str) -> None:
        timer = self.t["timer"]
        conn.execute(delete(timer).where(timer.c.timer_id == timer_id))

    def arm(self, conn: Connection, row: dict[str, Any]) -> None:
        """Write a timer (``TIMER_COLUMNS``), replacing one of the same id."""
        upsert(conn, self.t["timer"], [row], keys=["timer_id"], updates=["due_at", "kind", "instance_id", "payload"])

    def count(self, conn: Connection) -> int:
        return conn.execute(select(func.count()).select_from(self.t["timer"])).scalar_one()

    # -- trigger state (a JSON row per journey and customer) -------------------------------------------

    def trigger_state(self, conn: Connection, journey_id: str, user: str) -> dict[str, Any] | None:
        s = self.t["trigger_state"].c
        row = conn.execute(select(s.state).where(s.journey_id == journey_id, s.user_id == user)).first()
        return row.state if row is not None else None

    def save_trigger_state(
        self, conn: Connection, journey_id: str, user: str, state: dict[str, Any], now: dt.datetime
    ) -> None:
        row = {"journey_id": journey_id, "user_id": user, "state": state, "updated_at": now}
        upsert(conn, self.t["trigger_state"], [row], keys=["journey_id", "user_id"], updates=["state", "updated_at"])

    def drop_trigger_state(self, conn: Connection, journey_id: str, user: str) -> None:
        s = self.t["trigger_state"]
        conn.execute(delete(s).where(s.c.journey_id == journey_id, s.c.user_id == user))


__all__ = ["PARTICIPANT_COLUMNS", "TIMER_COLUMNS", "TIMER_SHARE_DIALECTS", "TimerStore", "due_timers", "timer_share"]
