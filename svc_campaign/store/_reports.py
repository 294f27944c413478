"""What the journey report and a customer's progress read: visits, participants and receipts, counted per node."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, Table, case, func, select
from sqlalchemy.engine import Connection, RowMapping


class ReportStore:
    def __init__(self, tables: dict[str, Table]) -> None:
        self.t = tables

    def visits(
        self, conn: Connection, journey_id: str, start: dt.datetime | None, end: dt.datetime | None
    ) -> tuple[Sequence[Row[Any]], Sequence[Row[Any]]]:
        """The journey's visits in [start, end): (node, outcome, visits, participants) and (node, participants)."""
        v = self.t["visit"].c
        where = [v.journey_id == journey_id]
        if start:
            where.append(v.at >= start)
        if end:
            where.append(v.at < end)
        rows = conn.execute(
            select(v.node_id, v.outcome, func.count(), func.count(v.instance_id.distinct()))
            .where(*where)
            .group_by(v.node_id, v.outcome)
        ).all()
        distinct = conn.execute(
            select(v.node_id, func.count(v.instance_id.distinct())).where(*where).group_by(v.node_id)
        ).all()
        return rows, distinct

    def waiting(self, conn: Connection, journey_id: str) -> Sequence[Row[Any]]:
        """(node, participants waiting there) now."""
        i = self.t["instance"].c
        return conn.execute(
            select(i.current_node, func.count())
            .where(i.journey_id == journey_id, i.status == "waiting")
            .group_by(i.current_node)
        ).all()

    def receipts(
        self, conn: Connection, journey_id: str, start: dt.datetime | None, end: dt.datetime | None
    ) -> Sequence[Row[Any]]:
        """(node, delivered, clicked) of the journey's messages created in [start, end)."""
        m = self.t["message"].c
        mwhere = [m.journey_id == journey_id]
        if start:
            mwhere.append(m.created_at >= start)
        if end:
            mwhere.append(m.created_at < end)
        return conn.execute(
            select(
                m.node_id,
                func.sum(case((m.delivered_at.is_not(None), 1), else_=0)),
                func.sum(case((m.clicked_at.is_not(None), 1), else_=0)),
            )
            .where(*mwhere)
            .group_by(m.node_id)
        ).all()

    def totals(self, conn: Connection, journey_id: str, start: dt.datetime | None, end: dt.datetime | None) -> Row[Any]:
        """(entered, converted, in progress) of the participants who entered in [start, end)."""
        i = self.t["instance"].c
        iwhere = [i.journey_id == journey_id]
        if start:
            iwhere.append(i.entered_at >= start)
        if end:
            iwhere.append(i.entered_at < end)
        return conn.execute(
            select(
                func.count(),
                func.sum(case((i.converted_at.is_not(None), 1), else_=0)),
                func.sum(case((i.status != "done", 1), else_=0)),
            ).where(*iwhere)
        ).one()

    def latest(self, conn: Connection, journey_id: str, user_id: str) -> RowMapping | None:
        """The customer's latest participation in the journey."""
        i = self.t["instance"].c
        return (
            conn.execute(
                select(self.t["instance"])
                .where(i.journey_id == journey_id, i.user_id == user_id)
                .order_by(i.entered_at.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )

    def path(self, conn: Connection, instance_id: str) -> Sequence[Row[Any]]:
        """(node, at, outcome) of a participant's visits in order."""
        v = self.t["visit"].c
        return conn.execute(
            select(v.node_id, v.at, v.outcome).where(v.instance_id == instance_id).order_by(v.visit_id)
        ).all()


__all__ = ["ReportStore"]
