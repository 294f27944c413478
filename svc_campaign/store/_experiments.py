"""Experiments (stored as protobuf JSON with their state, goal and winner) and the customers' sticky assignments
with their exposure, click and conversion."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Float, Row, Table, and_, case, func, insert, select, update
from sqlalchemy.engine import Connection

from svc_campaign.clock import window_start


class ExperimentStore:
    def __init__(self, tables: dict[str, Table]) -> None:
        self._t = tables["experiment"]
        self._a = tables["assignment"]

    # -- definitions ----------------------------------------------------------------------------------

    def add(self, conn: Connection, row: dict[str, Any]) -> None:
        conn.execute(insert(self._t).values(**row))

    def document(self, conn: Connection, experiment_id: str) -> dict[str, Any] | None:
        row = conn.execute(select(self._t.c.document).where(self._t.c.experiment_id == experiment_id)).first()
        return row.document if row is not None else None

    def documents(self, conn: Connection, after: str, limit: int) -> list[dict[str, Any]]:
        query = select(self._t.c.document).where(self._t.c.experiment_id > after)
        return [r.document for r in conn.execute(query.order_by(self._t.c.experiment_id).limit(limit)).all()]

    def running(self, conn: Connection) -> list[dict[str, Any]]:
        """The documents of running experiments."""
        rows = conn.execute(select(self._t.c.document).where(self._t.c.experiment_state == "RUNNING")).all()
        return [r.document for r in rows]

    def running_ids(self, conn: Connection) -> list[str]:
        t = self._t.c
        return list(conn.execute(select(t.experiment_id).where(t.experiment_state == "RUNNING")).scalars().all())

    def save(self, conn: Connection, experiment_id: str, values: dict[str, Any]) -> None:
        conn.execute(update(self._t).where(self._t.c.experiment_id == experiment_id).values(**values))

    # -- assignments ----------------------------------------------------------------------------------

    def assignment(self, conn: Connection, experiment_id: str, user_id: str) -> Row[Any] | None:
        """(variant, exposed_at) of the customer's assignment."""
        a = self._a.c
        return conn.execute(
            select(a.variant, a.exposed_at).where(a.experiment_id == experiment_id, a.user_id == user_id)
        ).first()

    def expose(self, conn: Connection, experiment_id: str, user_id: str, at: dt.datetime) -> None:
        a = self._a.c
        conn.execute(
            update(self._a).where(a.experiment_id == experiment_id, a.user_id == user_id).values(exposed_at=at)
        )

    def assign(self, conn: Connection, row: dict[str, Any]) -> None:
        conn.execute(insert(self._a).values(**row))

    def assign_many(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        conn.execute(insert(self._a), rows)

    def record(
        self,
        conn: Connection,
        experiment_id: str,
        user_id: str,
        kind: str,
        at: dt.datetime,
        value_fen: int = 0,
        window: dt.timedelta | None = None,
    ) -> None:
        """The first exposure, click or conversion (with its value added) of an assignment. A conversion counts only
        for an exposure at or before ``at`` and, with a ``window``, no longer than that before it (as ``convert``)."""
        a = self._a.c
        where = and_(a.experiment_id == experiment_id, a.user_id == user_id)
        if kind == "conversion":
            where = and_(where, a.exposed_at.is_not(None), a.exposed_at <= at)
            if window is not None:
                where = and_(where, a.exposed_at >= window_start(at, window))
        if kind == "exposure":
            conn.execute(update(self._a).where(where, a.exposed_at.is_(None)).values(exposed_at=at))
        elif kind == "click":
            conn.execute(update(self._a).where(where, a.clicked_at.is_(None)).values(clicked_at=at))
        elif kind == "conversion":
            conn.execute(
                update(self._a)
                .where(where, a.converted_at.is_(None))
                .values(converted_at=at, value_fen=a.value_fen + value_fen)
            )

    def convert(
        self, conn: Connection, experiment_id: str, user_id: str, at: dt.datetime, window: dt.timedelta, value_fen: int
    ) -> None:
        """A goal at ``at`` converts the customer's exposure within ``window`` before it (once)."""
        a = self._a.c
        conn.execute(
            update(self._a)
            .where(
                a.experiment_id == experiment_id,
                a.user_id == user_id,
                a.converted_at.is_(None),
                a.exposed_at.is_not(None),
                a.exposed_at <= at,
                a.exposed_at >= window_start(at, window),
            )
            .values(converted_at=at, value_fen=value_fen)
        )

    # -- results --------------------------------------------------------------------------------------

    def counts(self, conn: Connection, experiment_id: str, clicks: bool) -> Sequence[Row[Any]]:
        """Per variant of the exposed: (variant, exposed, successes, value sum, value sum of squares); a success is a
        click (``clicks``) or a conversion."""
        a = self._a.c
        success = a.clicked_at if clicks else a.converted_at
        value = a.value_fen.cast(Float())
        return conn.execute(
            select(
                a.variant,
                func.count(),
                func.sum(case((success.is_not(None), 1), else_=0)),
                func.sum(value),
                func.sum(value * value),
            )
            .where(a.experiment_id == experiment_id, a.exposed_at.is_not(None))
            .group_by(a.variant)
        ).all()

    def clicks(self, conn: Connection, experiment_id: str) -> dict[str, int]:
        """Exposed customers who clicked, per variant."""
        a = self._a.c
        return dict(
            conn.execute(
                select(a.variant, func.count())
                .where(a.experiment_id == experiment_id, a.exposed_at.is_not(None), a.clicked_at.is_not(None))
                .group_by(a.variant)
            ).all()
        )


__all__ = ["ExperimentStore"]
