"""Driver analyses of svc_modeling's store: each holds the dataset it was estimated on, and is not deleted while a
review schedule names it or a pending or running job (a review) uses it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Table, insert, select


class AnalysisRows:
    """Mixed into :class:`SqlModelingStore` (which sets the tables, the database and the helpers used here)."""

    _db: Any
    _analysis: Table
    _job_analysis: Table
    _schedule_analysis: Table

    def add_analysis(self, analysis_id: str, dataset_id: str, body: dict[str, Any], artifact: bytes) -> None:
        with self._db.connection(write=True) as conn:
            blob_id = self._put_blob(conn, artifact)  # first: the dataset row is locked only for the insert
            self._require_dataset(conn, dataset_id, f"analysis {analysis_id!r}")
            conn.execute(
                insert(self._analysis).values(
                    analysis_id=analysis_id,
                    dataset_id=dataset_id,
                    body=body,
                    artifact_blob_id=blob_id,
                    created_at=dt.datetime.now(dt.UTC),
                )
            )

    def analysis_exists(self, analysis_id: str) -> bool:
        c = self._analysis.c
        with self._db.connection() as conn:
            return conn.execute(select(c.analysis_id).where(c.analysis_id == analysis_id)).first() is not None

    def get_analysis(self, analysis_id: str) -> dict[str, Any] | None:
        with self._db.connection() as conn:
            row = conn.execute(select(self._analysis).where(self._analysis.c.analysis_id == analysis_id)).one_or_none()
        return dict(row._mapping) if row is not None else None

    def delete_analysis(self, analysis_id: str, sample: int = 5) -> dict[str, Any] | None:
        """Delete a driver analysis unless a review schedule names it or a pending or running job (a review) uses
        it, in one transaction that locks its row first. None: no such analysis. Else ``counts`` of the ``schedules``
        and ``jobs`` using it and up to ``sample`` of each; nothing counted: deleted."""
        c = self._analysis.c
        with self._db.connection(write=True) as conn:
            blob_id = conn.execute(
                select(c.artifact_blob_id).where(c.analysis_id == analysis_id).with_for_update()
            ).scalar_one_or_none()
            if blob_id is None:
                return None
            ja, link = self._job_analysis, self._schedule_analysis
            jobs = self._running_jobs(conn, ja, ja.c.analysis_id == analysis_id, sample)
            schedules = self._schedules_naming(conn, link, link.c.analysis_id == analysis_id, sample)
            users = {"counts": {"jobs": jobs[0], "schedules": schedules[0]}, "jobs": jobs[1], "schedules": schedules[1]}
            if not jobs[0] and not schedules[0]:
                self._delete_owner(conn, self._analysis, c.analysis_id == analysis_id, blob_id)
            return users
