"""What the journey report and a customer's progress read: visits, participants and receipts, counted per node."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Row, String, Subquery, Table, case, func, literal, select, union_all
from sqlalchemy.engine import Connection, RowMapping


class ReportStore:
    def __init__(self, tables: dict[str, Table]) -> None:
        self.t = tables

    def visits(
        self, conn: Connection, journey_id: str, start: dt.datetime | None, end: dt.datetime | None
    ) -> tuple[Sequence[Row[Any]], Sequence[Row[Any]]]:
        """The journey's visits in [start, end): (node, outcome, visits, participants) and (node, participants).
        An exit node's visits are the participants' ``exited_at`` (campaign_0008), counted with the visit rows."""
        visits = self._visits(journey_id, start, end)
        rows = conn.execute(
            select(
                visits.c.node_id, visits.c.outcome, func.count(), func.count(visits.c.instance_id.distinct())
            ).group_by(visits.c.node_id, visits.c.outcome)
        ).all()
        distinct = conn.execute(
            select(visits.c.node_id, func.count(visits.c.instance_id.distinct())).group_by(visits.c.node_id)
        ).all()
        return rows, distinct

    def _visits(self, journey_id: str, start: dt.datetime | None, end: dt.datetime | None) -> Subquery:
        """(node_id, outcome, instance_id) of the journey's visit rows in [start, end) and of its participants who
        left at an exit node in that time (outcome ``exited``), with the send just before that exit where the
        participant row keeps it (``final_send_node``, ``final_send_outcome``)."""
        v, i = self.t["visit"].c, self.t["instance"].c
        visited, left = [v.journey_id == journey_id], [i.journey_id == journey_id, i.exited_at.is_not(None)]
        if start:
            visited.append(v.at >= start)
            left.append(i.exited_at >= start)
        if end:
            visited.append(v.at < end)
            left.append(i.exited_at < end)
        rows = select(v.node_id, v.outcome, v.instance_id).where(*visited)
        exits = select(i.current_node, literal("exited", String(96)), i.instance_id).where(*left)
        sends = select(i.final_send_node, i.final_send_outcome, i.instance_id).where(
            *left, i.final_send_node.is_not(None)
        )
        return union_all(rows, exits, sends).subquery("visits")

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

    def path(self, conn: Connection, instance_id: str) -> list[Visit]:
        """(node, at, outcome) of a participant's visits in order. Its exit at an exit node (``exited_at``, after the
        send just before it where the row keeps that too) comes after every visit row but its conversions: nothing
        else is recorded of a participant once it has left, and a conversion after it (within the goal's window
        after a send) is recorded later."""
        v, i = self.t["visit"].c, self.t["instance"].c
        path = [
            Visit(*r)
            for r in conn.execute(
                select(v.node_id, v.at, v.outcome).where(v.instance_id == instance_id).order_by(v.visit_id)
            )
        ]
        exited = conn.execute(
            select(i.current_node, i.exited_at, i.final_send_node, i.final_send_outcome).where(
                i.instance_id == instance_id
            )
        ).first()
        if exited is not None and exited.exited_at is not None:
            at = next((n for n, visit in enumerate(path) if visit.outcome == "converted"), len(path))
            last = [Visit(exited.current_node, exited.exited_at, "exited")]
            if exited.final_send_node is not None:
                last.insert(0, Visit(exited.final_send_node, exited.exited_at, exited.final_send_outcome))
            path[at:at] = last
        return path


class Visit(NamedTuple):
    """A node a participant passed: when, and what happened there."""

    node_id: str
    at: dt.datetime
    outcome: str


__all__ = ["ReportStore", "Visit"]
