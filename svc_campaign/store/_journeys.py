"""Journeys as the engine reads them (running ones, published graphs, states now) and the log cursor."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from svc_common.db import upsert

SHARE_LOCK_DIALECTS = ("postgresql",)
"""Where an event batch reads the state of the journeys it may enter ``FOR SHARE`` (see ``entry_states``)."""


class JourneyStore:
    def __init__(self, tables: dict[str, Table]) -> None:
        self.t = tables
        # Built once (a batch of due timers asks every time: building and compiling it each time cost as much as a
        # batch's other reads together); the ids are an expanding parameter.
        j = tables["journey"].c
        ids = bindparam("b_journeys", expanding=True)
        self._timer_states = select(j.journey_id, j.journey_state, j.published_version).where(j.journey_id.in_(ids))
        self._timer_states_locking = self._timer_states.with_for_update(read=True, skip_locked=True)
        self._existing = select(j.journey_id).where(j.journey_id.in_(ids))

    def graph_document(self, conn: Connection, journey_id: str, version: int) -> dict[str, Any]:
        """The published graph of ``version`` (protobuf JSON)."""
        v = self.t["journey_version"].c
        return conn.execute(select(v.graph).where(v.journey_id == journey_id, v.version_no == version)).one().graph

    def live(self, conn: Connection) -> Sequence[RowMapping]:
        """Running and paused journeys, whole rows."""
        j = self.t["journey"].c
        return (
            conn.execute(select(self.t["journey"]).where(j.journey_state.in_(("RUNNING", "PAUSED")))).mappings().all()
        )

    def versions(self, conn: Connection, journey_ids: list[str]) -> list[tuple[str, int]]:
        """Every published version of these journeys."""
        if not journey_ids:
            return []
        v = self.t["journey_version"].c
        return [tuple(r) for r in conn.execute(select(v.journey_id, v.version_no).where(v.journey_id.in_(journey_ids)))]

    def entry_states(self, conn: Connection, journey_ids: set[str]) -> dict[str, str]:
        """The states of journeys about to take entries, read now, on PostgreSQL ``FOR SHARE`` until the
        transaction ends, in journey id order (one order: no deadlock between batches)."""
        if not journey_ids:
            return {}
        j = self.t["journey"].c
        query = select(j.journey_id, j.journey_state).where(j.journey_id.in_(sorted(journey_ids)))
        if conn.dialect.name in SHARE_LOCK_DIALECTS:
            query = query.order_by(j.journey_id).with_for_update(read=True)
        return dict(conn.execute(query).tuples().all())

    def states(self, conn: Connection, journey_ids: set[str]) -> dict[str, str]:
        """The states of these journeys as committed now (no lock)."""
        if not journey_ids:
            return {}
        j = self.t["journey"].c
        query = select(j.journey_id, j.journey_state).where(j.journey_id.in_(sorted(journey_ids)))
        return dict(conn.execute(query).tuples().all())

    def timer_states(self, conn: Connection, journey_ids: set[str]) -> list[tuple[str, str, int]]:
        """(journey, state, published version) of these journeys, read now in one statement; on PostgreSQL ``FOR
        SHARE SKIP LOCKED``: a journey another transaction holds ``FOR UPDATE`` (a transition) is left out, one that
        does not exist comes back STOPPED (a second statement, only when some were left out)."""
        if not journey_ids:
            return []
        ids = {"b_journeys": sorted(journey_ids)}
        locking = conn.dialect.name in SHARE_LOCK_DIALECTS
        found = [tuple(r) for r in conn.execute(self._timer_states_locking if locking else self._timer_states, ids)]
        if locking and len(found) < len(journey_ids):
            exist = set(conn.execute(self._existing, ids).scalars())
            found += [(gone, "STOPPED", 0) for gone in journey_ids - exist]
        return found  # type: ignore[return-value]

    # -- definitions (drafts, versions, states) -------------------------------------------------------

    def row(self, conn: Connection, journey_id: str, *, lock: bool = False) -> RowMapping | None:
        """The journey's row; ``lock``: ``FOR UPDATE`` until the transaction ends (a transition)."""
        query = select(self.t["journey"]).where(self.t["journey"].c.journey_id == journey_id)
        return conn.execute(query.with_for_update() if lock else query).mappings().first()

    def exists(self, conn: Connection, journey_id: str) -> bool:
        j = self.t["journey"].c
        return conn.execute(select(j.journey_id).where(j.journey_id == journey_id)).first() is not None

    def add(self, conn: Connection, row: dict[str, Any]) -> None:
        conn.execute(insert(self.t["journey"]).values(**row))

    def update(self, conn: Connection, journey_id: str, changes: dict[str, Any]) -> None:
        conn.execute(update(self.t["journey"]).where(self.t["journey"].c.journey_id == journey_id).values(**changes))

    def published(self, conn: Connection, journey_id: str, version: int) -> dict[str, Any] | None:
        """The graph of a published version (protobuf JSON); None when there is no such version."""
        v = self.t["journey_version"].c
        row = conn.execute(select(v.graph).where(v.journey_id == journey_id, v.version_no == version)).first()
        return row.graph if row is not None else None

    def add_version(
        self,
        conn: Connection,
        journey_id: str,
        version: int,
        graph: dict[str, Any],
        entry_rules: dict[str, Any],
        now: dt.datetime,
    ) -> None:
        conn.execute(
            insert(self.t["journey_version"]).values(
                journey_id=journey_id, version_no=version, graph=graph, entry_rules=entry_rules, published_at=now
            )
        )

    def rows(self, conn: Connection, states: list[str], after: str, limit: int) -> list[RowMapping]:
        """Journeys after ``after`` in id order (in ``states`` when given)."""
        j = self.t["journey"].c
        query = select(self.t["journey"]).where(j.journey_id > after).order_by(j.journey_id).limit(limit)
        if states:
            query = query.where(j.journey_state.in_(states))
        return list(conn.execute(query).mappings())

    # -- the log cursor -------------------------------------------------------------------------------

    def cursor(self, conn: Connection, consumer: str) -> str:
        c = self.t["consumer"].c
        row = conn.execute(select(c.log_cursor).where(c.consumer_name == consumer)).first()
        return row.log_cursor if row is not None else ""

    def save_cursor(self, conn: Connection, consumer: str, cursor: str, now: dt.datetime) -> None:
        row = {"consumer_name": consumer, "log_cursor": cursor, "updated_at": now}
        upsert(conn, self.t["consumer"], [row], keys=["consumer_name"], updates=["log_cursor", "updated_at"])


__all__ = ["SHARE_LOCK_DIALECTS", "JourneyStore"]
