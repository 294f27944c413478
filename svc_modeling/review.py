"""Periodic review: stability (PSI) of models' features and scores, retraining when they shift, and what
changed in driver effects — on demand (RunReview, a job) or on a cron schedule.

A schedule's ``refresh_dataset_ids`` name the fresh data. Each that is a profile snapshot (``BuildFromProfiles``)
is first rebuilt — the same population, features, label and treatment at the freshest snapshot whose label is
known (now minus the label's horizon) — so every review runs on O-data as of its run; any other dataset (an
import, a survey fusion: X-data comes from the broker's survey tool) is used as stored. For each model, the
first of them holding all the model's columns is compared with (and, on a shift, retrained on) in place of the
model's training dataset. A retrained version is registered as a CANDIDATE: promoting it
stays a decision (SetModelStage). Driver effects are re-estimated on the fresh data with the analysis's
method and graph, and reported when they moved by more than two standard errors of the difference.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from typing import Any

import numpy as np
from google.protobuf import json_format

from svc_common.errors import FieldViolation, InvalidArgument, NotFound, QimingError
from svc_common.pb.qiming.common.v1 import job_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_modeling.catalog import DatasetCatalog
from svc_modeling.config import ModelingSettings
from svc_modeling.cron import Cron
from svc_modeling.drivers import DriverService
from svc_modeling.frame import Frame
from svc_modeling.jobs import JobContext, JobRunner
from svc_modeling.methods import drivers as driver_methods
from svc_modeling.methods import stability
from svc_modeling.methods.propensity import FittedModel
from svc_modeling.models import ModelRegistry
from svc_modeling.profiles import ProfileSnapshots
from svc_modeling.store import SqlModelingStore, utcnow

log = logging.getLogger("qiming.modeling.review")
SCORE_SAMPLE_ROWS = 50_000


def _schedule_message(row: dict[str, Any]) -> pb.ReviewSchedule:
    schedule = json_format.ParseDict(row["body"], pb.ReviewSchedule())
    schedule.next_run_at.FromDatetime(row["next_run_at"])
    return schedule


class ReviewService:
    def __init__(
        self,
        settings: ModelingSettings,
        store: SqlModelingStore,
        catalog: DatasetCatalog,
        jobs: JobRunner,
        models: ModelRegistry,
        drivers: DriverService,
        snapshots: ProfileSnapshots | None = None,
    ) -> None:
        self.settings = settings
        self._store = store
        self._catalog = catalog
        self._jobs = jobs
        self._models = models
        self._drivers = drivers
        self._snapshots = snapshots
        self._task: asyncio.Task[None] | None = None

    # -- schedules ------------------------------------------------------------------------------------

    def create_schedule(self, schedule: pb.ReviewSchedule, now: dt.datetime | None = None) -> pb.ReviewSchedule:
        if not schedule.model_names and not schedule.analysis_ids:
            raise InvalidArgument(
                "a review needs models or analyses to review",
                violations=[
                    FieldViolation("schedule.model_names", "name at least one model or analysis", "MISSING_FIELD")
                ],
            )
        cron = Cron.parse(schedule.cron, schedule.timezone)
        threshold = schedule.retrain_psi_threshold or 0.25
        if not 0 < threshold <= 10:
            raise InvalidArgument(
                f"schedule.retrain_psi_threshold {threshold:g} is out of range: above 0 and at most 10 (0: 0.25)",
                violations=[FieldViolation("schedule.retrain_psi_threshold", "above 0 and at most 10, e.g. 0.25")],
            )
        for name in schedule.model_names:
            self._models.get(name)
        for analysis_id in schedule.analysis_ids:
            self._drivers.get(analysis_id)
        for dataset_id in schedule.refresh_dataset_ids:
            self._catalog.get(dataset_id)
        stored = pb.ReviewSchedule()
        stored.CopyFrom(schedule)
        stored.schedule_id = str(uuid.uuid4())
        stored.retrain_psi_threshold = threshold
        stored.timezone = schedule.timezone or "Asia/Shanghai"
        stored.ClearField("next_run_at")
        next_run = cron.next_after(now or utcnow())
        body = json_format.MessageToDict(stored, preserving_proto_field_name=True)
        # Stored with what it names, held until the schedule is deleted: none of them is deleted meanwhile.
        self._store.add_schedule(
            stored.schedule_id,
            body,
            next_run,
            dataset_ids=list(stored.refresh_dataset_ids),
            model_names=list(stored.model_names),
            analysis_ids=list(stored.analysis_ids),
        )
        return self.get_schedule(stored.schedule_id)

    def delete_schedule(self, schedule_id: str) -> None:
        """Delete a schedule (its reports stay) and release the datasets, models and analyses it names; a review of it
        that is pending or running goes on and holds what it uses until it ends."""
        if not schedule_id or not self._store.delete_schedule(schedule_id):
            raise NotFound(f"no review schedule {schedule_id!r}", metadata={"schedule_id": schedule_id})

    def get_schedule(self, schedule_id: str) -> pb.ReviewSchedule:
        row = self._store.get_schedule(schedule_id) if schedule_id else None
        if row is None:
            raise NotFound(f"no review schedule {schedule_id!r}", metadata={"schedule_id": schedule_id})
        return _schedule_message(row)

    def list_schedules(self, after: str, limit: int) -> list[pb.ReviewSchedule]:
        return [_schedule_message(r) for r in self._store.list_schedules(after, limit)]

    # -- the scheduler --------------------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="modeling-review-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.run_due)
            except Exception:  # a failing check must not stop the scheduler
                log.exception("review scheduler check failed")
            await asyncio.sleep(self.settings.review_check_interval_seconds)

    def run_due(self, now: dt.datetime | None = None) -> list[job_pb2.Job]:
        """Start the reviews whose time has come; move each schedule to its next run."""
        now = now or utcnow()
        started = []
        for row in self._store.due_schedules(now):
            schedule = _schedule_message(row)
            following = Cron.parse(schedule.cron, schedule.timezone).next_after(now)
            if self._store.advance_schedule(row["schedule_id"], row["next_run_at"], following):
                try:
                    started.append(self.run(row["schedule_id"], "scheduler"))
                except QimingError as exc:  # a fresh dataset deleted: this review cannot start, the others still do
                    log.warning(
                        "a scheduled review could not start",
                        extra={"schedule_id": row["schedule_id"], "error": exc.message},
                    )
        return started

    # -- running a review -----------------------------------------------------------------------------

    def run(self, schedule_id: str, created_by: str = "") -> job_pb2.Job:
        """Start a review (a job). The job holds what it uses until it ends, also if the schedule is deleted
        meanwhile: the refresh datasets, each model's version that it reviews (production, else latest: chosen
        here), the analyses, and the datasets it rebuilds."""
        schedule = self.get_schedule(schedule_id)
        reviewed: dict[str, int] = {}
        for name in schedule.model_names:
            row = self._store.get_model(name, 0)
            if row is not None:  # none: the review reports the model as not reviewed
                reviewed[name] = int(row["version"])
        analysis_ids = [a for a in schedule.analysis_ids if self._store.get_analysis(a) is not None]

        def job(ctx: JobContext) -> str:
            report = pb.ReviewReport(report_id=str(uuid.uuid4()), schedule_id=schedule_id)
            now = utcnow()
            created_at = now.replace(microsecond=now.microsecond // 1000 * 1000)  # what every database keeps
            report.created_at.FromDatetime(created_at)
            steps = max(1, len(schedule.model_names) + len(schedule.analysis_ids))
            notes: list[str] = []
            # The rebuilt datasets replace the stored ones in this run only (the job holds both); the schedule keeps
            # naming the datasets it was created with, which it holds.
            fresh_ids = [self._refreshed(ctx, dataset_id, notes) for dataset_id in schedule.refresh_dataset_ids]
            del schedule.refresh_dataset_ids[:]
            schedule.refresh_dataset_ids.extend(fresh_ids)
            # One model or analysis that cannot be reviewed (its training dataset deleted, say) is reported as
            # such; the others are still reviewed.
            for i, name in enumerate(schedule.model_names):
                ctx.progress(100 * i / steps, f"reviewing model {name}")
                try:
                    notes.append(self._review_model(ctx, schedule, name, reviewed.get(name, 0), report))
                except QimingError as exc:
                    notes.append(f"{name}: not reviewed ({exc.message}).")
            for j, analysis_id in enumerate(schedule.analysis_ids):
                ctx.progress(100 * (len(schedule.model_names) + j) / steps, f"re-estimating analysis {analysis_id}")
                try:
                    notes.append(self._review_analysis(schedule, analysis_id, report))
                except QimingError as exc:
                    notes.append(f"analysis {analysis_id}: not reviewed ({exc.message}).")
            report.summary = " ".join(n for n in notes if n)
            body = json_format.MessageToDict(report, preserving_proto_field_name=True)
            self._store.add_report(report.report_id, schedule_id, body, created_at)
            return report.report_id

        return self._jobs.submit(
            "run_review",
            job,
            created_by,
            list(schedule.refresh_dataset_ids),
            models=sorted(reviewed.items()),
            analysis_ids=analysis_ids,
        )

    def _refreshed(self, ctx: JobContext, dataset_id: str, notes: list[str]) -> str:
        """``dataset_id`` rebuilt at a fresh snapshot when it is a profile snapshot; else itself."""
        if self._snapshots is None:
            return dataset_id
        dataset = self._catalog.get(dataset_id)  # metadata only: the rows are not needed to rebuild
        fresh = self._snapshots.refresh(dataset, ctx, "review")  # held by this job from its insert (held_by_job)
        if fresh is None:
            return dataset_id
        rebuilt = self._catalog.get(fresh)
        notes.append(
            f"Profile snapshot {dataset.name!r} rebuilt at {rebuilt.lineage.get('snapshot_at', '?')} as {fresh}."
        )
        return fresh

    def _fresh(self, schedule: pb.ReviewSchedule, columns: list[str], reference_id: str) -> tuple[str, Frame]:
        for dataset_id in schedule.refresh_dataset_ids:
            _dataset, frame = self._catalog.load(dataset_id)
            if all(frame.spec(c) is not None for c in columns):
                return dataset_id, frame
        return reference_id, self._catalog.load(reference_id)[1]

    def _review_model(
        self, ctx: JobContext, schedule: pb.ReviewSchedule, name: str, number: int, report: pb.ReviewReport
    ) -> str:
        version, model = self._models.artifact(name, number)
        features = list(model.encoder.features)
        columns = [*features, version.label_column] if isinstance(model, FittedModel) else features
        _ref_dataset, reference = self._catalog.load(version.dataset_id)
        fresh_id, fresh = self._fresh(schedule, columns, version.dataset_id)
        worst = 0.0
        for feature in features:
            if reference.is_string(feature):
                value = stability.psi_categorical(reference.data[feature], fresh.data[feature])
            else:
                value = stability.psi_numeric(
                    reference.data[feature].to_numpy(dtype=float), fresh.data[feature].to_numpy(dtype=float)
                )
            worst = max(worst, value)
            report.stability.add(name=feature, psi=value, shifted=value > schedule.retrain_psi_threshold)
        if isinstance(model, FittedModel):
            scores = [model.predict_matrix(model.encoder.transform(_sample(f.data))) for f in (reference, fresh)]
            value = stability.psi_numeric(scores[0], scores[1])
            worst = max(worst, value)
            report.stability.add(name=f"score:{name}", psi=value, shifted=value > schedule.retrain_psi_threshold)
        if worst <= schedule.retrain_psi_threshold:
            return f"{name} v{version.version}: stable (largest PSI {worst:.3f})."
        if not isinstance(model, FittedModel) or fresh_id == version.dataset_id:
            why = (
                "no fresh dataset holds its columns"
                if fresh_id == version.dataset_id
                else "uplift models are retrained by TrainUplift"
            )
            return f"{name} v{version.version}: shifted (largest PSI {worst:.3f}), not retrained: {why}."
        request = pb.TrainModelRequest(
            model_name=name,
            dataset_id=fresh_id,
            label_column=version.label_column,
            feature_columns=features,
            task=version.task,
            algorithm=version.algorithm,
            hyperparameters=dict(version.hyperparameters),
            random_seed=int(version.lineage.get("random_seed", "0") or 0),
        )
        try:
            result = self._models.prepare_training(request, "review")(ctx)
        except QimingError as exc:  # the fresh data cannot train this model: say so, the review goes on
            return (
                f"{name} v{version.version}: shifted (largest PSI {worst:.3f}), not retrained: the fresh data "
                f"{fresh_id} cannot train it ({exc.message})."
            )
        new = self._models.get(name, int(result.split("/")[1]))
        report.model_changes.add(
            model_name=name,
            old_version=version.version,
            new_version=new.version,
            old_auc=version.metrics.auc,
            new_auc=new.metrics.auc,
        )
        return (
            f"{name}: shifted (largest PSI {worst:.3f} > {schedule.retrain_psi_threshold:g}); retrained on fresh data "
            f"as version {new.version} (AUC {version.metrics.auc:.3f} → {new.metrics.auc:.3f}), a candidate to promote."
        )

    def _review_analysis(self, schedule: pb.ReviewSchedule, analysis_id: str, report: pb.ReviewReport) -> str:
        analysis, model = self._drivers.artifact(analysis_id)
        encoder = model.encoder
        names = list(encoder.features)  # type: ignore[attr-defined]
        edges = [(e.cause, e.effect) for e in analysis.graph]
        fresh_id, fresh = self._fresh(schedule, [*names, analysis.outcome_column], analysis.dataset_id)
        if fresh_id == analysis.dataset_id:
            return f"analysis {analysis_id}: no fresh dataset holds its columns; not re-estimated."
        y = fresh.data[analysis.outcome_column].to_numpy(dtype=float)
        # The analysis's own encoding (text confounders by its categories) and adjustment sets, and its seed:
        # on the same data the same estimate comes back.
        x = encoder.transform(fresh.data)  # type: ignore[attr-defined]
        categorical = encoder.categorical_indices  # type: ignore[attr-defined]
        moved = []
        for driver in analysis.drivers:
            adjust = [
                names.index(c)
                for c in driver_methods.graph_adjustment(driver.factor, analysis.outcome_column, names, edges)
            ]
            w = driver_methods.adjustment(x, adjust, categorical, analysis.method)
            new = driver_methods.dml_effect(y, x[:, names.index(driver.factor)], w, analysis.method, model.seed)
            spread = float(np.hypot(driver.effect.std_error, new.std_error)) or 1e-12
            if abs(new.value - driver.effect.value) > 2 * spread:
                moved.append(driver.factor)
                report.driver_changes.add(
                    factor=driver.factor, old_effect=driver.effect, new_effect=pb.Estimate(**new.as_dict())
                )
        if not moved:
            return f"analysis {analysis_id}: driver effects unchanged on the fresh data."
        return f"analysis {analysis_id}: effects moved for {', '.join(moved)}."

    def get_report(self, report_id: str) -> pb.ReviewReport:
        row = self._store.get_report(report_id) if report_id else None
        if row is None:
            raise NotFound(f"no review report {report_id!r}", metadata={"report_id": report_id})
        return json_format.ParseDict(row["body"], pb.ReviewReport())

    def list_reports(
        self, schedule_id: str, after: tuple[dt.datetime, str] | None, limit: int
    ) -> list[pb.ReviewReport]:
        return [
            json_format.ParseDict(r["body"], pb.ReviewReport())
            for r in self._store.list_reports(schedule_id, after, limit)
        ]


def _sample(data: Any) -> Any:
    if len(data) <= SCORE_SAMPLE_ROWS:
        return data
    return data.sample(SCORE_SAMPLE_ROWS, random_state=0)
