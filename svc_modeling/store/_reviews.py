"""Review schedules and reports of svc_modeling's store, and what a schedule holds between its runs.

A schedule is stored with what it names (``modeling_schedule_dataset``, ``_model``, ``_analysis``) in one
transaction that first locks those rows against a delete (as a job holds its datasets), and deleting the schedule
deletes them: so a refresh dataset, a model's reviewed version or an analysis is not deleted while a schedule names
it, and a schedule never names one that was deleted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from svc_common.errors import NotFound


class ReviewRows:
    """Mixed into :class:`SqlModelingStore` (which sets the tables and the database)."""

    _db: Any
    _schedule: Table
    _report: Table
    _schedule_dataset: Table
    _schedule_model: Table
    _schedule_analysis: Table

    def add_schedule(
        self,
        schedule_id: str,
        body: dict[str, Any],
        next_run_at: dt.datetime,
        *,
        dataset_ids: Sequence[str] = (),
        model_names: Sequence[str] = (),
        analysis_ids: Sequence[str] = (),
    ) -> None:
        """Store a schedule with what it names; NOT_FOUND naming one that was deleted meanwhile (nothing stored)."""
        with self._db.connection(write=True) as conn:
            missing = self._hold_datasets(conn, dataset_ids)
            if missing:
                raise NotFound(
                    f"no dataset {missing[0]!r}: it was deleted before the review schedule could be stored",
                    metadata={"dataset_id": missing[0]},
                )
            names = self._hold_model_names(conn, model_names)
            if names:
                raise NotFound(
                    f"no model {names[0]!r}: it was deleted before the review schedule could be stored",
                    metadata={"model_name": names[0]},
                )
            gone = self._hold_analyses(conn, analysis_ids)
            if gone:
                raise NotFound(
                    f"no driver analysis {gone[0]!r}: it was deleted before the review schedule could be stored",
                    metadata={"analysis_id": gone[0]},
                )
            conn.execute(
                insert(self._schedule).values(
                    schedule_id=schedule_id, body=body, next_run_at=next_run_at, created_at=dt.datetime.now(dt.UTC)
                )
            )
            for table, column, values in (
                (self._schedule_dataset, "dataset_id", dataset_ids),
                (self._schedule_model, "model_name", model_names),
                (self._schedule_analysis, "analysis_id", analysis_ids),
            ):
                rows = [{"schedule_id": schedule_id, column: v} for v in sorted(set(values))]
                if rows:
                    conn.execute(insert(table), rows)

    def delete_schedule(self, schedule_id: str) -> bool:
        """Delete a schedule and release what it names (its reports stay). False: no such schedule."""
        c = self._schedule.c
        with self._db.connection(write=True) as conn:
            found = conn.execute(
                select(c.schedule_id).where(c.schedule_id == schedule_id).with_for_update()
            ).scalar_one_or_none()
            if found is None:
                return False
            for table in (self._schedule_dataset, self._schedule_model, self._schedule_analysis):
                conn.execute(delete(table).where(table.c.schedule_id == schedule_id))
            conn.execute(delete(self._schedule).where(c.schedule_id == schedule_id))
            return True

    def _schedules_naming(self, conn: Connection, table: Table, where: Any, sample: int) -> tuple[int, list[str]]:
        """How many schedules ``table`` links by ``where``, and up to ``sample`` of their ids."""
        count = conn.execute(select(func.count()).select_from(table).where(where)).scalar_one()
        if not count:
            return 0, []
        query = select(table.c.schedule_id).where(where).order_by(table.c.schedule_id).limit(sample)
        return int(count), list(conn.execute(query).scalars())

    def get_schedule(self, schedule_id: str) -> dict[str, Any] | None:
        with self._db.connection() as conn:
            row = conn.execute(select(self._schedule).where(self._schedule.c.schedule_id == schedule_id)).one_or_none()
        return dict(row._mapping) if row is not None else None

    def list_schedules(self, after: str, limit: int) -> list[dict[str, Any]]:
        c = self._schedule.c
        query = select(self._schedule).where(c.schedule_id > after).order_by(c.schedule_id).limit(limit)
        with self._db.connection() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def due_schedules(self, now: dt.datetime) -> list[dict[str, Any]]:
        c = self._schedule.c
        with self._db.connection() as conn:
            return [dict(r._mapping) for r in conn.execute(select(self._schedule).where(c.next_run_at <= now))]

    def advance_schedule(self, schedule_id: str, seen: dt.datetime, next_run_at: dt.datetime) -> bool:
        """Move the next run on, only if nobody else did (one replica starts each due review)."""
        c = self._schedule.c
        with self._db.connection(write=True) as conn:
            changed = conn.execute(
                update(self._schedule)
                .where(c.schedule_id == schedule_id, c.next_run_at == seen)
                .values(next_run_at=next_run_at)
            )
            return changed.rowcount > 0

    def add_report(self, report_id: str, schedule_id: str, body: dict[str, Any], created_at: dt.datetime) -> None:
        with self._db.connection(write=True) as conn:
            conn.execute(
                insert(self._report).values(
                    report_id=report_id, schedule_id=schedule_id, body=body, created_at=created_at
                )
            )

    def get_report(self, report_id: str) -> dict[str, Any] | None:
        with self._db.connection() as conn:
            row = conn.execute(select(self._report).where(self._report.c.report_id == report_id)).one_or_none()
        return dict(row._mapping) if row is not None else None

    def list_reports(self, schedule_id: str, after: tuple[dt.datetime, str] | None, limit: int) -> list[dict[str, Any]]:
        c = self._report.c
        query = select(self._report).order_by(c.created_at.desc(), c.report_id.desc()).limit(limit)
        if schedule_id:
            query = query.where(c.schedule_id == schedule_id)
        if after is not None:
            query = query.where(or_(c.created_at < after[0], and_(c.created_at == after[0], c.report_id < after[1])))
        with self._db.connection() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
