"""Scheduled runs (one per journey and time) and the member lists they export and enter."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, Table, delete, func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

ACTIVE = ("exporting", "entering")


class ScheduleStore:
    def __init__(self, tables: dict[str, Table]) -> None:
        self._r = tables["scheduled_run"]
        self._m = tables["scheduled_member"]

    # -- runs -----------------------------------------------------------------------------------------

    def active(self, conn: Connection) -> list[dict[str, Any]]:
        """Runs exporting or entering, oldest scheduled first."""
        r = self._r
        query = select(r).where(r.c.run_state.in_(ACTIVE)).order_by(r.c.scheduled_for, r.c.run_id)
        return [dict(row) for row in conn.execute(query).mappings()]

    def exists(self, conn: Connection, run_id: str) -> bool:
        return conn.execute(select(self._r.c.run_id).where(self._r.c.run_id == run_id)).first() is not None

    def add(self, conn: Connection, row: dict[str, Any]) -> None:
        conn.execute(insert(self._r).values(**row))

    def last_time(self, conn: Connection, journey_id: str) -> dt.datetime | None:
        """The latest scheduled time of the journey's runs."""
        r = self._r.c
        return conn.execute(select(func.max(r.scheduled_for)).where(r.journey_id == journey_id)).scalar()

    def state(self, conn: Connection, run_id: str) -> str | None:
        r = self._r.c
        return conn.execute(select(r.run_state).where(r.run_id == run_id)).scalar()

    def update(self, conn: Connection, run_id: str, values: dict[str, Any]) -> None:
        conn.execute(update(self._r).where(self._r.c.run_id == run_id).values(**values))

    def exported(
        self, conn: Connection, run_id: str, after: str, with_id: int, without_id: int, now: dt.datetime
    ) -> None:
        """A page of members stored: the export's position and the counts."""
        r = self._r
        conn.execute(
            update(r)
            .where(r.c.run_id == run_id)
            .values(
                export_after=after,
                members=r.c.members + with_id,
                without_customer_id=r.c.without_customer_id + without_id,
                updated_at=now,
            )
        )

    def entered(
        self, conn: Connection, run_id: str, after: str, processed: int, entered: int, now: dt.datetime
    ) -> None:
        """A batch of members handled: the entry position and the counts."""
        r = self._r
        conn.execute(
            update(r)
            .where(r.c.run_id == run_id)
            .values(
                entry_after=after,
                processed=r.c.processed + processed,
                entered=r.c.entered + entered,
                updated_at=now,
            )
        )

    def entry_after(self, conn: Connection, run_id: str) -> str:
        return conn.execute(select(self._r.c.entry_after).where(self._r.c.run_id == run_id)).scalar_one()

    def finish(self, conn: Connection, run_id: str, now: dt.datetime) -> None:
        """The run is done: its member list goes, the run row stays."""
        conn.execute(delete(self._m).where(self._m.c.run_id == run_id))
        self.update(conn, run_id, {"run_state": "done", "finished_at": now, "updated_at": now})

    def cancel(self, conn: Connection, run_ids: list[str], now: dt.datetime) -> None:
        r, m = self._r, self._m
        conn.execute(delete(m).where(m.c.run_id.in_(run_ids)))
        conn.execute(
            update(r)
            .where(r.c.run_id.in_(run_ids), r.c.run_state.in_(ACTIVE))
            .values(run_state="cancelled", finished_at=now, updated_at=now)
        )

    def cancel_journey(self, conn: Connection, journey_id: str, now: dt.datetime) -> None:
        """The journey's unfinished runs are cancelled and their member lists deleted (the journey stopped)."""
        r = self._r
        runs = select(r.c.run_id).where(r.c.journey_id == journey_id, r.c.run_state.in_(ACTIVE))
        conn.execute(delete(self._m).where(self._m.c.run_id.in_(runs)))
        conn.execute(
            update(r)
            .where(r.c.journey_id == journey_id, r.c.run_state.in_(ACTIVE))
            .values(run_state="cancelled", finished_at=now, updated_at=now)
        )

    def runs(self, conn: Connection, journey_id: str, limit: int) -> list[RowMapping]:
        """The journey's runs, newest scheduled first."""
        r = self._r
        query = select(r).where(r.c.journey_id == journey_id).order_by(r.c.scheduled_for.desc(), r.c.run_id)
        return list(conn.execute(query.limit(limit)).mappings())

    # -- members --------------------------------------------------------------------------------------

    def stored(self, conn: Connection, run_id: str, profile_ids: list[str]) -> set[str]:
        """Which of these members the run holds already."""
        m = self._m.c
        query = select(m.profile_id).where(m.run_id == run_id, m.profile_id.in_(profile_ids))
        return set(conn.execute(query).scalars())

    def add_members(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        conn.execute(insert(self._m), rows)

    def members_after(self, conn: Connection, run_id: str, after: str, limit: int) -> Sequence[Row[Any]]:
        """(profile_id, user_id) of the run's next members in profile id order."""
        m = self._m.c
        return conn.execute(
            select(m.profile_id, m.user_id)
            .where(m.run_id == run_id, m.profile_id > after)
            .order_by(m.profile_id)
            .limit(limit)
        ).all()


__all__ = ["ACTIVE", "ScheduleStore"]
