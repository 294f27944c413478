"""The statements on ``profile_job``: each job write is a short transaction of its own (never inside a recompute's
transaction), and every change of ownership is a compare-and-set on (state, owner, heartbeat), so that of several
processes sharing a database exactly one resumes a given job (docs/profile.md, "Recompute jobs")."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.engine import Row

from svc_common.db import Database

RUNNING = "RUNNING"


class JobStore:
    def __init__(self, database: Database, table: Any) -> None:
        self.database = database
        self.t = table
        self._statements = self.statements()

    # -- the statements (compiled for every dialect by tests/test_profile_durable_jobs.py) ---------------
    def statements(self) -> dict[str, Any]:
        t = self.t
        mine = and_(t.c.job_id == bindparam("b_job_id"), t.c.owner_id == bindparam("b_owner"), t.c.state == RUNNING)
        return {
            "insert": insert(t),
            "get": select(t).where(t.c.job_id == bindparam("b_job_id")),
            "progress": update(t)
            .where(mine)
            .values(
                progress_percent=bindparam("b_percent"),
                progress_message=bindparam("b_message"),
                heartbeat_at=bindparam("b_now"),
            ),
            "finish": update(t)
            .where(mine)
            .values(
                state=bindparam("b_state"),
                progress_percent=bindparam("b_percent"),
                progress_message=bindparam("b_message"),
                error_reason=bindparam("b_reason"),
                error_message=bindparam("b_error"),
                finished_at=bindparam("b_now"),
                heartbeat_at=None,
            ),
            "orphans": select(t)
            .where(
                t.c.state == RUNNING,
                or_(t.c.heartbeat_at.is_(None), t.c.heartbeat_at < bindparam("b_cutoff")),
            )
            .order_by(t.c.created_at, t.c.job_id),
            "claim": update(t)
            .where(
                t.c.job_id == bindparam("b_job_id"),
                t.c.state == RUNNING,
                t.c.owner_id == bindparam("b_old_owner"),
                or_(t.c.heartbeat_at.is_(None), t.c.heartbeat_at < bindparam("b_cutoff")),
            )
            .values(
                owner_id=bindparam("b_owner"),
                heartbeat_at=bindparam("b_now"),
                started_at=bindparam("b_now"),
                progress_percent=0.0,
                progress_message=bindparam("b_message"),
            ),
            "release": update(t)
            .where(t.c.owner_id == bindparam("b_owner"), t.c.state == RUNNING)
            .values(heartbeat_at=None),
            "unclaim": update(t)
            .where(t.c.job_id == bindparam("b_job_id"), t.c.owner_id == bindparam("b_owner"), t.c.state == RUNNING)
            .values(owner_id="", heartbeat_at=None),
            "prune": delete(t).where(t.c.state != RUNNING, t.c.finished_at < bindparam("b_before")),
        }

    def _run(self, name: str, **values: Any) -> Any:
        stmt = self._statements[name]
        with self.database.connection(write=name != "get" and name != "orphans") as conn:
            if name == "insert":
                return conn.execute(stmt, values)
            result = conn.execute(stmt, {f"b_{k}": v for k, v in values.items()})
            if name in ("get", "orphans"):
                return result.all()
            return result.rowcount

    # -- one job ----------------------------------------------------------------------------------------
    def insert(self, row: dict[str, Any]) -> None:
        self._run("insert", **row)

    def get(self, job_id: str) -> Row | None:
        rows = self._run("get", job_id=job_id)
        return rows[0] if rows else None

    def progress(self, job_id: str, owner: str, percent: float, message: str, now: dt.datetime) -> bool:
        """Progress and heartbeat of a job this owner runs; False: it no longer does (another process took it
        over after this one's heartbeat went stale, or it ended)."""
        return bool(self._run("progress", job_id=job_id, owner=owner, percent=percent, message=message, now=now))

    def finish(
        self,
        job_id: str,
        owner: str,
        state: str,
        percent: float,
        message: str,
        reason: str,
        error: str,
        now: dt.datetime,
    ) -> bool:
        values = {"percent": percent, "message": message, "reason": reason, "error": error, "now": now}
        return bool(self._run("finish", job_id=job_id, owner=owner, state=state, **values))

    # -- resuming ---------------------------------------------------------------------------------------
    def orphans(self, cutoff: dt.datetime) -> Sequence[Row]:
        """RUNNING jobs whose heartbeat is older than ``cutoff`` (or released), oldest first, whoever owns them:
        the caller skips those it runs itself."""
        return self._run("orphans", cutoff=cutoff)

    def claim(
        self, job_id: str, old_owner: str, owner: str, cutoff: dt.datetime, now: dt.datetime, message: str
    ) -> bool:
        """Take over an orphaned job: one UPDATE that matches only while the job is still RUNNING under the owner
        seen and its heartbeat still stale. Of several processes trying, one gets the row (PostgreSQL re-checks
        the WHERE on the row the winner wrote; SQLite writes one at a time)."""
        values = {"old_owner": old_owner, "owner": owner, "cutoff": cutoff, "now": now, "message": message}
        return bool(self._run("claim", job_id=job_id, **values))

    def release(self, owner: str) -> int:
        """At stop: this owner's jobs still running are left to the next process at once (no heartbeat)."""
        return int(self._run("release", owner=owner))

    def unclaim(self, job_id: str, owner: str) -> bool:
        """Give back a claimed job this owner could not start (the database failed): no owner, no heartbeat, so
        the next look of any process, this one included, claims it again."""
        return bool(self._run("unclaim", job_id=job_id, owner=owner))

    def prune(self, before: dt.datetime) -> int:
        """Ended jobs that ended before ``before``."""
        return int(self._run("prune", before=before))


__all__ = ["RUNNING", "JobStore"]
