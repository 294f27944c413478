"""SQLAlchemy Core store of svc_modeling: blobs in chunks, dataset metadata, jobs, models, analyses.

Rows go in and out as plain dicts (column name → value); the domain builds protobuf messages from them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, and_, case, delete, func, insert, or_, select, true, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from svc_common.db import Database, upsert_statement
from svc_common.errors import Aborted, NotFound
from svc_modeling.store._analyses import AnalysisRows
from svc_modeling.store._erasure import ErasureRows
from svc_modeling.store._reviews import ReviewRows

TERMINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")
UNFINISHED = ("PENDING", "RUNNING")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SqlModelingStore(AnalysisRows, ReviewRows, ErasureRows):
    def __init__(self, database: Database, tables: dict[str, Table], chunk_bytes: int = 8 * 1024 * 1024) -> None:
        self._db = database
        self._blob = tables["blob"]
        self._dataset = tables["dataset"]
        self._job = tables["job"]
        self._model = tables["model"]
        self._model_name = tables["model_name"]
        self._analysis = tables["analysis"]
        self._schedule = tables["schedule"]
        self._report = tables["report"]
        self._job_dataset = tables["job_dataset"]
        self._job_model = tables["job_model"]
        self._job_analysis = tables["job_analysis"]
        self._schedule_dataset = tables["schedule_dataset"]
        self._schedule_model = tables["schedule_model"]
        self._schedule_analysis = tables["schedule_analysis"]
        self._log_cursor = tables["log_cursor"]
        self._chunk = chunk_bytes

    # -- blobs ----------------------------------------------------------------------------------------

    def _put_blob(self, conn: Connection, data: bytes) -> str:
        blob_id = str(uuid.uuid4())
        parts = [data[i : i + self._chunk] for i in range(0, len(data), self._chunk)] or [b""]
        for part_no, chunk in enumerate(parts):
            conn.execute(insert(self._blob).values(blob_id=blob_id, part_no=part_no, chunk=chunk))
        return blob_id

    def _delete_owner(self, conn: Connection, table: Any, where: Any, blob_id: str) -> None:
        """Delete the row(s) of ``table`` matching ``where`` and the blob they own, in ``conn``'s transaction."""
        conn.execute(delete(table).where(where))
        conn.execute(delete(self._blob).where(self._blob.c.blob_id == blob_id))

    def get_blob(self, blob_id: str) -> bytes:
        c = self._blob.c
        with self._db.connection() as conn:
            rows = conn.execute(select(c.chunk).where(c.blob_id == blob_id).order_by(c.part_no)).scalars().all()
        return b"".join(bytes(r) for r in rows)

    # -- datasets -------------------------------------------------------------------------------------

    def add_dataset(self, record: dict[str, Any], data: bytes, held_by_job: str = "") -> str:
        """Store a dataset (returns the id of its rows' blob); ``held_by_job``: a job that made it and goes on using
        it holds it, in the same transaction, so it is not deleted before that job ends (a review's rebuilt refresh
        dataset)."""
        with self._db.connection(write=True) as conn:
            blob_id = self._put_blob(conn, data)
            conn.execute(insert(self._dataset).values(**record, blob_id=blob_id))
            if held_by_job:
                conn.execute(insert(self._job_dataset).values(job_id=held_by_job, dataset_id=record["dataset_id"]))
        return blob_id

    def get_dataset(self, dataset_id: str) -> dict[str, Any] | None:
        with self._db.connection() as conn:
            row = conn.execute(select(self._dataset).where(self._dataset.c.dataset_id == dataset_id)).one_or_none()
        return dict(row._mapping) if row is not None else None

    def list_datasets(self, after: tuple[dt.datetime, str] | None, limit: int) -> list[dict[str, Any]]:
        c = self._dataset.c
        query = select(self._dataset).order_by(c.created_at, c.dataset_id).limit(limit)
        if after is not None:
            query = query.where(or_(c.created_at > after[0], and_(c.created_at == after[0], c.dataset_id > after[1])))
        with self._db.connection() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def _hold_datasets(self, conn: Connection, dataset_ids: Sequence[str]) -> list[str]:
        """Lock these datasets' rows against a delete until the transaction ends (FOR SHARE; SQLite's writer lock
        does it there); returns those that do not exist."""
        wanted = sorted(set(dataset_ids))
        if not wanted:
            return []
        c = self._dataset.c
        found = set(
            conn.execute(select(c.dataset_id).where(c.dataset_id.in_(wanted)).with_for_update(read=True)).scalars()
        )
        return [d for d in wanted if d not in found]

    def _hold_models(self, conn: Connection, versions: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
        """Lock these model versions' rows against a delete until the transaction ends (as :meth:`_hold_datasets`);
        returns those that do not exist."""
        wanted = sorted(set(versions))
        if not wanted:
            return []
        c = self._model.c
        which = or_(*(and_(c.model_name == name, c.version == version) for name, version in wanted))
        query = select(c.model_name, c.version).where(which).order_by(c.model_name, c.version)
        found = {(r.model_name, int(r.version)) for r in conn.execute(query.with_for_update(read=True))}
        return [v for v in wanted if v not in found]

    def _hold_model_names(self, conn: Connection, names: Sequence[str]) -> list[str]:
        """Lock every version of these models against a delete until the transaction ends; returns the names that
        have no version."""
        wanted = sorted(set(names))
        if not wanted:
            return []
        c = self._model.c
        query = select(c.model_name, c.version).where(c.model_name.in_(wanted)).order_by(c.model_name, c.version)
        found = {r.model_name for r in conn.execute(query.with_for_update(read=True))}
        return [n for n in wanted if n not in found]

    def _hold_analyses(self, conn: Connection, analysis_ids: Sequence[str]) -> list[str]:
        """Lock these driver analyses' rows against a delete until the transaction ends; returns those that do not
        exist."""
        wanted = sorted(set(analysis_ids))
        if not wanted:
            return []
        c = self._analysis.c
        query = select(c.analysis_id).where(c.analysis_id.in_(wanted)).order_by(c.analysis_id)
        found = set(conn.execute(query.with_for_update(read=True)).scalars())
        return [a for a in wanted if a not in found]

    def _running_jobs(self, conn: Connection, link: Any, where: Any, sample: int) -> tuple[int, list[tuple[str, ...]]]:
        """How many pending or running jobs ``link`` (a job→use table) ties to what ``where`` names, and up to
        ``sample`` of them (id, kind, state), oldest first."""
        j = self._job.c
        joined = link.join(self._job, j.job_id == link.c.job_id)
        running = and_(where, j.job_state.in_(list(UNFINISHED)))
        count = conn.execute(select(func.count(j.job_id.distinct())).select_from(joined).where(running)).scalar_one()
        if not count:
            return 0, []
        query = select(j.job_id, j.kind, j.job_state, j.created_at).distinct().select_from(joined).where(running)
        rows = conn.execute(query.order_by(j.created_at, j.job_id).limit(sample))
        return int(count), [(r.job_id, r.kind, r.job_state) for r in rows]

    def _require_dataset(self, conn: Connection, dataset_id: str, what: str) -> None:
        if dataset_id and self._hold_datasets(conn, [dataset_id]):
            raise NotFound(
                f"no dataset {dataset_id!r}: it was deleted before the {what} could be stored",
                metadata={"dataset_id": dataset_id},
            )

    def delete_dataset(self, dataset_id: str, sample: int = 5) -> dict[str, Any] | None:
        """Delete a dataset unless a model, a driver analysis, a review schedule or a pending or running job uses it,
        in one
        transaction that locks the dataset's row first (a job, model or analysis being stored meanwhile holds the row
        until it commits, and one that comes after the lock finds the dataset gone). None: no such dataset. Else
        what uses it (:meth:`_dataset_users`); nothing counted: deleted."""
        d = self._dataset.c
        with self._db.connection(write=True) as conn:
            blob_id = conn.execute(
                select(d.blob_id).where(d.dataset_id == dataset_id).with_for_update()
            ).scalar_one_or_none()
            if blob_id is None:
                return None
            users = self._dataset_users(conn, dataset_id, sample)
            if not any(users["counts"].values()):
                self._delete_owner(conn, self._dataset, d.dataset_id == dataset_id, blob_id)
            return users

    def _dataset_users(self, conn: Connection, dataset_id: str, sample: int) -> dict[str, Any]:
        """``counts`` of the model versions, driver analyses, review schedules and pending or running jobs that use the
        dataset, and up to ``sample`` of each: ``models`` (name, version), ``analyses`` (ids), ``schedules`` (ids),
        ``jobs`` (id, kind, state)."""
        m, a = self._model.c, self._analysis.c
        jobs = self._running_jobs(conn, self._job_dataset, self._job_dataset.c.dataset_id == dataset_id, sample)
        link = self._schedule_dataset
        schedules = self._schedules_naming(conn, link, link.c.dataset_id == dataset_id, sample)
        counts = {
            "models": conn.execute(select(func.count()).where(m.dataset_id == dataset_id)).scalar_one(),
            "analyses": conn.execute(select(func.count()).where(a.dataset_id == dataset_id)).scalar_one(),
            "schedules": schedules[0],
            "jobs": jobs[0],
        }
        users: dict[str, Any] = {"counts": counts, "models": [], "analyses": [], "schedules": schedules[1]}
        users["jobs"] = jobs[1]
        if counts["models"]:
            query = select(m.model_name, m.version).where(m.dataset_id == dataset_id)
            rows = conn.execute(query.order_by(m.model_name, m.version).limit(sample))
            users["models"] = [(r.model_name, int(r.version)) for r in rows]
        if counts["analyses"]:
            query = select(a.analysis_id).where(a.dataset_id == dataset_id).order_by(a.analysis_id).limit(sample)
            users["analyses"] = list(conn.execute(query).scalars())
        return users

    # -- jobs -----------------------------------------------------------------------------------------

    def add_job(
        self,
        record: dict[str, Any],
        dataset_ids: Sequence[str] = (),
        models: Sequence[tuple[str, int]] = (),
        analysis_ids: Sequence[str] = (),
    ) -> list[tuple[str, dict[str, str]]]:
        """Store a job and the datasets, model versions (name, version) and driver analyses it uses, in one
        transaction that first locks those rows against a delete. Returns what does not exist (what, metadata),
        e.g. ("dataset 'd1'", {"dataset_id": "d1"}): then nothing is stored."""
        with self._db.connection(write=True) as conn:
            missing = [(f"dataset {d!r}", {"dataset_id": d}) for d in self._hold_datasets(conn, dataset_ids)]
            missing += [
                (f"version {v} of model {n!r}", {"model_name": n, "version": str(v)})
                for n, v in self._hold_models(conn, models)
            ]
            missing += [(f"driver analysis {a!r}", {"analysis_id": a}) for a in self._hold_analyses(conn, analysis_ids)]
            if missing:
                return missing
            conn.execute(insert(self._job).values(**record))
            job_id = record["job_id"]
            for dataset_id in sorted(set(dataset_ids)):
                conn.execute(insert(self._job_dataset).values(job_id=job_id, dataset_id=dataset_id))
            for name, version in sorted(set(models)):
                conn.execute(insert(self._job_model).values(job_id=job_id, model_name=name, version=version))
            for analysis_id in sorted(set(analysis_ids)):
                conn.execute(insert(self._job_analysis).values(job_id=job_id, analysis_id=analysis_id))
            return []

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        with self._db.connection() as conn:
            row = conn.execute(select(self._job).where(self._job.c.job_id == job_id)).one_or_none()
        return dict(row._mapping) if row is not None else None

    def update_job(
        self, job_id: str, only_if_state: Sequence[str] = (), only_if_owner: str = "", **values: Any
    ) -> bool:
        """Update a job; with ``only_if_state``, only while it is in one of those states, with ``only_if_owner``
        only while that process owns it. True if it changed."""
        c = self._job.c
        query = update(self._job).where(c.job_id == job_id).values(**values)
        if only_if_state:
            query = query.where(c.job_state.in_(list(only_if_state)))
        if only_if_owner:
            query = query.where(c.owner_id == only_if_owner)
        with self._db.connection(write=True) as conn:
            return conn.execute(query).rowcount > 0

    def list_jobs(
        self, states: Sequence[str], kind: str, after: tuple[dt.datetime, str] | None, limit: int
    ) -> list[dict[str, Any]]:
        c = self._job.c
        query = select(self._job).order_by(c.created_at.desc(), c.job_id.desc()).limit(limit)
        if states:
            query = query.where(c.job_state.in_(list(states)))
        if kind:
            query = query.where(c.kind == kind)
        if after is not None:
            query = query.where(or_(c.created_at < after[0], and_(c.created_at == after[0], c.job_id < after[1])))
        with self._db.connection() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def heartbeat(self, owner: str, now: dt.datetime, job_ids: Sequence[str]) -> None:
        """This process still holds these of its pending and running jobs."""
        c = self._job.c
        with self._db.connection(write=True) as conn:
            for start in range(0, len(job_ids), 500):
                conn.execute(
                    update(self._job)
                    .where(
                        c.owner_id == owner,
                        c.job_id.in_(list(job_ids[start : start + 500])),
                        c.job_state.in_(["PENDING", "RUNNING"]),
                    )
                    .values(heartbeat_at=now)
                )

    def unfinished_jobs(self, owner: str) -> list[str]:
        """This owner's pending and running jobs."""
        c = self._job.c
        with self._db.connection() as conn:
            return list(
                conn.execute(
                    select(c.job_id).where(c.owner_id == owner, c.job_state.in_(["PENDING", "RUNNING"]))
                ).scalars()
            )

    def cancel_requested(self, owner: str) -> list[str]:
        """This owner's unfinished jobs that someone (any process) asked to cancel."""
        c = self._job.c
        query = select(c.job_id).where(
            c.owner_id == owner,
            c.job_state.in_(["PENDING", "RUNNING"]),
            c.cancel_requested == True,  # noqa: E712 (= compiles on every dialect; IS TRUE does not on Dameng)
        )
        with self._db.connection() as conn:
            return list(conn.execute(query).scalars())

    def fail_orphaned_jobs(self, cutoff: dt.datetime, message: str, not_owner: str = "") -> int:
        """Fail the pending and running jobs whose owner's heartbeat is older than ``cutoff`` (its process died),
        except ``not_owner``'s (the caller's own): one conditional UPDATE, so a job another process keeps alive is
        never touched."""
        c = self._job.c
        with self._db.connection(write=True) as conn:
            return conn.execute(
                update(self._job)
                .where(
                    c.job_state.in_(["PENDING", "RUNNING"]),
                    or_(c.heartbeat_at.is_(None), c.heartbeat_at < cutoff),
                    c.owner_id != not_owner if not_owner else true(),
                )
                .values(job_state="FAILED", error_reason="ABORTED", error_message=message, finished_at=utcnow())
            ).rowcount

    def fail_owned_jobs(self, owner: str, message: str) -> int:
        """At stop: this owner's jobs that did not finish (never started, or could not record their end)."""
        c = self._job.c
        with self._db.connection(write=True) as conn:
            return conn.execute(
                update(self._job)
                .where(c.owner_id == owner, c.job_state.in_(["PENDING", "RUNNING"]))
                .values(job_state="FAILED", error_reason="ABORTED", error_message=message, finished_at=utcnow())
            ).rowcount

    # -- models ---------------------------------------------------------------------------------------

    def add_model(self, model_name: str, task: str, body: dict[str, Any], artifact: bytes, dataset_id: str = "") -> int:
        """Store the next version of ``model_name`` trained on ``dataset_id`` (NOT_FOUND if that was deleted
        meanwhile); returns the version number, one never given to this name before (even to a deleted version).

        The artifact is written first; the dataset's row (shared, exclusive on Dameng) and the name's mark are
        locked only for the row's insert."""
        for _attempt in range(5):
            try:
                with self._db.connection(write=True) as conn:
                    blob_id = self._put_blob(conn, artifact)
                    self._require_dataset(conn, dataset_id, f"model {model_name!r}")
                    version = self._next_version(conn, model_name)
                    body = {**body, "version": str(version)}
                    conn.execute(
                        insert(self._model).values(
                            model_name=model_name,
                            version=version,
                            task=task,
                            stage="CANDIDATE",
                            body=body,
                            artifact_blob_id=blob_id,
                            dataset_id=dataset_id,
                            created_at=utcnow(),
                        )
                    )
                    return version
            except IntegrityError:  # a concurrent first training of the name on Dameng (MERGE): take the next
                continue
        raise Aborted(
            f"model {model_name!r}: could not register a new version, retry", reason="CONCURRENT_MODIFICATION"
        )

    def _next_version(self, conn: Connection, model_name: str) -> int:
        """Take the name's next number: its mark (the highest number it was ever given) is locked until the
        transaction ends, so two registrations of one name at once get different numbers, and a deleted version's
        number is never given again. A version stored without the mark (a replica of before modeling_0006 during a
        rolling upgrade) is above it: the higher of the two counts."""
        n, c = self._model_name.c, self._model.c
        first = upsert_statement(conn.dialect.name, self._model_name, ["model_name", "last_version"], ["model_name"])
        conn.execute(first, {"model_name": model_name, "last_version": 0})  # the name's row, if it had none
        mark = conn.execute(select(n.last_version).where(n.model_name == model_name).with_for_update()).scalar_one()
        latest = conn.execute(select(func.max(c.version)).where(c.model_name == model_name)).scalar()
        version = max(int(mark), int(latest or 0)) + 1
        conn.execute(update(self._model_name).where(n.model_name == model_name).values(last_version=version))
        return version

    def get_model(self, model_name: str, version: int = 0) -> dict[str, Any] | None:
        """``version`` 0: the production version, else the latest."""
        c = self._model.c
        query = select(self._model).where(c.model_name == model_name)
        if version:
            query = query.where(c.version == version)
        else:
            # CASE, not a boolean in ORDER BY: Dameng does not sort by a comparison.
            query = query.order_by(case((c.stage == "PRODUCTION", 0), else_=1), c.version.desc()).limit(1)
        with self._db.connection() as conn:
            row = conn.execute(query).first()
        return dict(row._mapping) if row is not None else None

    def list_models(self, model_name: str, after: tuple[str, int] | None, limit: int) -> list[dict[str, Any]]:
        c = self._model.c
        query = select(self._model).order_by(c.model_name, c.version.desc()).limit(limit)
        if model_name:
            query = query.where(c.model_name == model_name)
        if after is not None:
            query = query.where(or_(c.model_name > after[0], and_(c.model_name == after[0], c.version < after[1])))
        with self._db.connection() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def _lock_model(self, conn: Connection, model_name: str) -> list[Any]:
        """Every version of the model (version, stage, artifact), locked until the transaction ends, in version
        order: a stage change and a delete of one model wait for each other (a review's version is chosen by stage)
        and take the rows in one order (no deadlock)."""
        c = self._model.c
        query = select(c.version, c.stage, c.artifact_blob_id).where(c.model_name == model_name).order_by(c.version)
        return list(conn.execute(query.with_for_update()).all())

    def set_model_stage(self, model_name: str, version: int, stage: str) -> None:
        """One production version per model: promoting one archives the previous production version."""
        c = self._model.c
        with self._db.connection(write=True) as conn:
            self._lock_model(conn, model_name)
            if stage == "PRODUCTION":
                conn.execute(
                    update(self._model)
                    .where(c.model_name == model_name, c.stage == "PRODUCTION", c.version != version)
                    .values(stage="ARCHIVED")
                )
            conn.execute(
                update(self._model).where(c.model_name == model_name, c.version == version).values(stage=stage)
            )

    def delete_model(self, model_name: str, version: int = 0, sample: int = 5) -> dict[str, Any] | None:
        """Delete one version of a model (``version`` 0: every version) with its artifacts, unless a pending or
        running job uses one of them or a review schedule naming the model would review one (its production version,
        else its latest), in one transaction that locks the model's rows first (a job or schedule being stored holds
        its rows until it commits; one that comes after finds them gone). None: no such version. Else what uses them
        (:meth:`_model_users`) and ``deleted``: the versions deleted (none when something uses them). The name's
        mark stays: the numbers are not given again."""
        c = self._model.c
        with self._db.connection(write=True) as conn:
            rows = self._lock_model(conn, model_name)
            targets = [r for r in rows if not version or int(r.version) == version]
            if not targets:
                return None
            users = self._model_users(conn, model_name, rows, [int(r.version) for r in targets], sample)
            users["deleted"] = []
            if not any(users["counts"].values()):
                for row in targets:
                    where = and_(c.model_name == model_name, c.version == row.version)
                    self._delete_owner(conn, self._model, where, row.artifact_blob_id)
                users["deleted"] = sorted(int(r.version) for r in targets)
            return users

    def _model_users(
        self, conn: Connection, model_name: str, rows: Sequence[Any], targets: Sequence[int], sample: int
    ) -> dict[str, Any]:
        """``counts`` of the pending or running jobs using one of the ``targets`` versions and of the review
        schedules that review one (``reviewed``: the version a review takes now, production else latest), and up to
        ``sample`` of each: ``jobs`` (id, kind, state), ``schedules`` (ids)."""
        jm = self._job_model.c
        where = and_(jm.model_name == model_name, jm.version.in_(list(targets)))
        jobs = self._running_jobs(conn, self._job_model, where, sample)
        production = [int(r.version) for r in rows if r.stage == "PRODUCTION"]
        reviewed = production[-1] if production else max(int(r.version) for r in rows)
        schedules = (0, [])
        if reviewed in targets:
            link = self._schedule_model
            schedules = self._schedules_naming(conn, link, link.c.model_name == model_name, sample)
        return {
            "counts": {"jobs": jobs[0], "schedules": schedules[0]},
            "jobs": jobs[1],
            "schedules": schedules[1],
            "reviewed": reviewed,
        }
