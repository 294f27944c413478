"""The model registry and the propensity/regression lifecycle: train (a job), version, stage, predict, and
batch-score into a stored, versioned score table.

Artifacts are Python pickles of the fitted objects, stored in the service's own database (modeling_blob)
and only ever written by the service itself; they are loaded only from there.
"""

from __future__ import annotations

import pickle
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import sklearn
from google.protobuf import json_format

from svc_common import __version__
from svc_common.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from svc_common.pb.qiming.common.v1 import job_pb2, types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_modeling.catalog import DatasetCatalog
from svc_modeling.config import ModelingSettings
from svc_modeling.frame import Frame, customer_text
from svc_modeling.guard import timestamp_problem
from svc_modeling.in_use import refuse_if_in_use
from svc_modeling.jobs import JobContext, JobRunner
from svc_modeling.methods import checks, propensity
from svc_modeling.profiles import ProfileSnapshots, restrict
from svc_modeling.snapshot import ID_COLUMN
from svc_modeling.store import SqlModelingStore
from svc_modeling.writeback import NotConnectedTagWriter, ProfileTagWriter, ScoreBatch, check_tag_name

MODEL_NAME_MAX = 128
_MODEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,127}$")
STAGES = {
    pb.MODEL_STAGE_CANDIDATE: "CANDIDATE",
    pb.MODEL_STAGE_PRODUCTION: "PRODUCTION",
    pb.MODEL_STAGE_ARCHIVED: "ARCHIVED",
}


def check_model_name(name: str) -> None:
    if not _MODEL_NAME.match(name):
        raise InvalidArgument(
            f"model_name {name!r} is not valid: lower-case letters, digits and _, starting with a letter (at most "
            f"{MODEL_NAME_MAX} characters)",
            violations=[
                FieldViolation("model_name", "lower-case letters, digits and _, starting with a letter", "INVALID_NAME")
            ],
        )


def library_versions() -> dict[str, str]:
    return {"code_version": __version__, "lightgbm": lightgbm.__version__, "sklearn": sklearn.__version__}


def rows_to_frame(columns: list[str], rows: list[pb.Row]) -> pd.DataFrame:
    """Request rows (typed Values) as a DataFrame; unset values are missing."""
    if len(set(columns)) != len(columns):
        raise InvalidArgument("a column is named twice", violations=[FieldViolation("columns", "unique names")])
    data: dict[str, list[Any]] = {name: [] for name in columns}
    for i, row in enumerate(rows):
        if len(row.values) != len(columns):
            raise InvalidArgument(
                f"rows[{i}] has {len(row.values)} values for {len(columns)} columns",
                violations=[FieldViolation(f"rows[{i}]", "one value per column")],
            )
        for name, value in zip(columns, row.values, strict=True):
            kind = value.WhichOneof("kind")
            if kind is None:
                data[name].append(None)
            elif kind == "string_value":
                data[name].append(value.string_value)
            elif kind == "timestamp_value":
                stamp = value.timestamp_value
                problem = timestamp_problem(stamp.seconds, stamp.nanos)
                if problem:
                    raise InvalidArgument(
                        f"rows[{i}] column {name!r}: timestamp_value is not a valid moment: {problem}",
                        violations=[FieldViolation(f"rows[{i}]", problem)],
                    )
                data[name].append(float(stamp.seconds * 1_000_000 + stamp.nanos // 1000))
            elif kind == "string_list_value":
                raise InvalidArgument(
                    f"rows[{i}] column {name!r}: lists are not model inputs",
                    violations=[FieldViolation(f"rows[{i}]", "send a number, a bool or a string")],
                )
            else:
                data[name].append(float(getattr(value, kind)))
    return pd.DataFrame(data)


class ModelRegistry:
    def __init__(
        self,
        settings: ModelingSettings,
        store: SqlModelingStore,
        catalog: DatasetCatalog,
        jobs: JobRunner,
        writer: ProfileTagWriter | None = None,
        snapshots: ProfileSnapshots | None = None,
    ) -> None:
        self.settings = settings
        self._snapshots = snapshots
        self._store = store
        self._catalog = catalog
        self._jobs = jobs
        self._writer = writer or NotConnectedTagWriter()
        # Keyed by the artifact's blob too: version numbers are never given again (modeling_model_name), but a number
        # deleted before modeling_0006 above every stored one was, and another replica may still hold that model.
        self._artifacts: OrderedDict[tuple[str, int, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    # -- registry -------------------------------------------------------------------------------------

    def register(
        self, version: pb.ModelVersion, artifact: Any, extra: Mapping[str, Any] | None = None
    ) -> pb.ModelVersion:
        """Store the next version; ``extra`` is kept beside the message (e.g. per-intervention summaries)."""
        body = {**json_format.MessageToDict(version, preserving_proto_field_name=True), **(extra or {})}
        task = pb.ModelTask.Name(version.task).removeprefix("MODEL_TASK_")
        number = self._store.add_model(
            version.model_name, task, body, pickle.dumps(artifact, protocol=5), dataset_id=version.dataset_id
        )
        row = self._row(version.model_name, number)
        with self._lock:
            self._artifacts[(version.model_name, number, row["artifact_blob_id"])] = artifact
            self._trim()
        return self._message(row)

    def _row(self, name: str, version: int) -> dict[str, Any]:
        row = self._store.get_model(name, version) if name else None
        if row is None:
            what = f"version {version} of model {name!r}" if version else f"model {name!r}"
            raise NotFound(f"no {what}", metadata={"model_name": name, "version": str(version)})
        return row

    @staticmethod
    def _message(row: Mapping[str, Any]) -> pb.ModelVersion:
        version = json_format.ParseDict(row["body"], pb.ModelVersion(), ignore_unknown_fields=True)
        version.version = row["version"]
        version.stage = pb.ModelStage.Value(f"MODEL_STAGE_{row['stage']}")
        version.created_at.FromDatetime(row["created_at"])
        return version

    def get(self, name: str, version: int = 0) -> pb.ModelVersion:
        return self._message(self._row(name, version))

    def get_with_extra(self, name: str, version: int = 0) -> tuple[pb.ModelVersion, dict[str, Any]]:
        row = self._row(name, version)
        return self._message(row), row["body"]

    def list(self, name: str, after: tuple[str, int] | None, limit: int) -> list[pb.ModelVersion]:
        return [self._message(r) for r in self._store.list_models(name, after, limit)]

    def delete(self, name: str, version: int = 0) -> list[int]:
        """Delete a version (0: every version) with its artifacts; NOT_FOUND when there is none, FAILED_PRECONDITION
        (``MODEL_IN_USE``) naming the pending or running jobs that use it and the review schedules that review it."""
        if version < 0:
            raise InvalidArgument(
                f"version {version} is out of range: 0 (every version) or a version number",
                violations=[FieldViolation("version", "0 (all) or above")],
            )
        users = self._store.delete_model(name, version) if name else None
        what = f"version {version} of model {name!r}" if version else f"model {name!r}"
        if users is None:
            raise NotFound(f"no {what}", metadata={"model_name": name, "version": str(version)})
        reviewed = users["reviewed"]
        refuse_if_in_use(
            what,
            users,
            "MODEL_IN_USE",
            {"model_name": name, "version": str(version), "reviewed_version": str(reviewed)},
            schedules_advice=(
                "promote another version (ModelService.SetModelStage: a review takes the production version, else "
                f"the latest, now v{reviewed}) or delete the review schedules (ReviewService.DeleteReviewSchedule)"
            ),
        )
        deleted = users["deleted"]
        with self._lock:
            for key in [k for k in self._artifacts if k[0] == name and k[1] in deleted]:
                self._artifacts.pop(key, None)
        return deleted

    def set_stage(self, name: str, version: int, stage: int) -> pb.ModelVersion:
        if stage not in STAGES:
            raise InvalidArgument(
                "stage is required", violations=[FieldViolation("stage", "CANDIDATE, PRODUCTION or ARCHIVED")]
            )
        if not version:
            raise InvalidArgument(
                "name the version", violations=[FieldViolation("version", "a version number", "MISSING_FIELD")]
            )
        self._row(name, version)
        self._store.set_model_stage(name, version, STAGES[stage])
        return self.get(name, version)

    def artifact(self, name: str, version: int = 0) -> tuple[pb.ModelVersion, Any]:
        row = self._row(name, version)
        key = (row["model_name"], row["version"], row["artifact_blob_id"])
        with self._lock:
            cached = self._artifacts.get(key)
            if cached is not None:
                self._artifacts.move_to_end(key)
        if cached is None:
            cached = pickle.loads(self._store.get_blob(row["artifact_blob_id"]))
            with self._lock:
                self._artifacts[key] = cached
                self._trim()
        return self._message(row), cached

    def _trim(self) -> None:
        while len(self._artifacts) > 16:
            self._artifacts.popitem(last=False)

    # -- propensity / regression ----------------------------------------------------------------------

    def train(self, request: pb.TrainModelRequest, created_by: str = "") -> job_pb2.Job:
        run = self.prepare_training(request, created_by)
        return self._jobs.submit("train_model", run, created_by, [request.dataset_id])

    def prepare_training(self, request: pb.TrainModelRequest, created_by: str = "") -> Callable[[JobContext], str]:
        """Check the request (raising the precise error) and return the job function that trains and registers
        the new version (used by TrainModel and by reviews that retrain)."""
        check_model_name(request.model_name)
        task = request.task or pb.MODEL_TASK_PROPENSITY
        if task not in (pb.MODEL_TASK_PROPENSITY, pb.MODEL_TASK_REGRESSION):
            raise InvalidArgument(
                "TrainModel trains PROPENSITY or REGRESSION models",
                violations=[FieldViolation("task", "use UpliftService.TrainUplift for uplift models")],
            )
        algorithm = request.algorithm or "lightgbm"
        if algorithm not in propensity.ALGORITHMS:
            raise InvalidArgument(
                f"unknown algorithm {algorithm!r}",
                violations=[FieldViolation("algorithm", f"one of {propensity.ALGORITHMS}")],
            )
        test_fraction = request.test_fraction or 0.25
        if not 0.05 <= test_fraction <= 0.5:
            raise InvalidArgument(
                f"test_fraction {test_fraction:g} is out of range: 0.05 to 0.5 (0: 0.25)",
                violations=[FieldViolation("test_fraction", "0.05 to 0.5")],
            )
        params, calibration = propensity.parse_hyperparameters(request.hyperparameters)
        dataset, frame = self._catalog.load(request.dataset_id)
        classify = task == pb.MODEL_TASK_PROPENSITY
        label = request.label_column
        y = (checks.binary_label if classify else checks.numeric_column)(frame, label, "label_column")
        if classify and min(y.sum(), y.size - y.sum()) < 10:
            raise FailedPrecondition(f"label {label!r} has fewer than 10 rows of one class: nothing to learn")
        exclude = [label, *frame.names(pb.COLUMN_ROLE_TREATMENT), *frame.names(pb.COLUMN_ROLE_ID)]
        features = checks.feature_columns(frame, request.feature_columns, [label], "feature_columns")
        features = [f for f in features if request.feature_columns or f not in exclude]
        encoder = checks.FeatureEncoder.fit(frame, features)
        propensity.check_categories(algorithm, encoder, "feature_columns")
        x = encoder.transform(frame.data)
        checks.check_leakage(x, features, y, self.settings.leakage_auc_threshold)
        parent = self._store.get_model(request.model_name, 0)

        def run(ctx: JobContext) -> str:
            model, metrics = propensity.train(
                x, y, encoder, algorithm=algorithm, params=params, calibration=calibration, classify=classify,
                test_fraction=test_fraction, seed=request.random_seed, progress=ctx.progress,
            )  # fmt: skip
            ctx.progress(95, "registering")
            version = pb.ModelVersion(
                model_name=request.model_name,
                task=task,
                dataset_id=dataset.dataset_id,
                label_column=label,
                feature_columns=features,
                algorithm=algorithm,
                hyperparameters={**{k: str(v) for k, v in params.items()}, "calibration": calibration},
                metrics=json_format.ParseDict(metrics, pb.ModelMetrics()),
                lineage={
                    "dataset_digest": dataset.content_digest,
                    "training_job": ctx.job_id,
                    "parent_version": str(parent["version"]) if parent else "",
                    "random_seed": str(request.random_seed),
                    **library_versions(),
                },
                created_by=created_by,
            )
            for name, value in model.importance():
                version.feature_importance.add(feature=name, importance=value)
            registered = self.register(version, model)
            return f"{registered.model_name}/{registered.version}"

        return run

    def predict(self, request: pb.PredictRequest) -> pb.PredictResponse:
        version, model = self.artifact(request.model_name, request.version)
        if not isinstance(model, propensity.FittedModel):
            raise FailedPrecondition(
                f"model {request.model_name!r} is an uplift model: use UpliftService.PredictUplift"
            )
        data = rows_to_frame(list(request.columns), list(request.rows))
        scores = model.predict_matrix(model.encoder.transform(data)) if len(data) else np.array([])
        return pb.PredictResponse(scores=scores.tolist(), model_version=version.version)

    def score_customers(self, request: pb.ScoreCustomersRequest, created_by: str = "") -> job_pb2.Job:
        version, model = self.artifact(request.model_name, request.version)
        if not isinstance(model, propensity.FittedModel):
            raise FailedPrecondition(f"model {request.model_name!r} is an uplift model: use PlanInterventions")
        snapshots = self._snapshots
        if (request.segment_id or not request.dataset_id) and snapshots is None:
            raise FailedPrecondition("scoring a segment or everyone needs svc_profile", reason="PEER_NOT_CONFIGURED")
        if request.dataset_id:
            dataset, frame = self._catalog.load_keyed(request.dataset_id, model.encoder.features, "scores")
            if self._writer.connected:
                _refuse_repeated_ids(dataset, frame)
            if request.segment_id:
                snapshots.require(log=False, segment_id=request.segment_id)  # type: ignore[union-attr]
        else:
            snapshots.require(segment_id=request.segment_id)  # type: ignore[union-attr]
        tag = request.tag_name or f"score_{version.model_name}"
        check_tag_name(tag)  # before the job: svc_profile would refuse the name after the scoring

        def run(ctx: JobContext) -> str:
            source: dict[str, str]
            if request.dataset_id:
                rows, id_column = frame, dataset.customer_id_column
                source = {"source_dataset_id": dataset.dataset_id, "source_digest": dataset.content_digest}
                if request.segment_id:
                    ctx.progress(1, f"reading the members of segment {request.segment_id}")
                    rows = restrict(frame, id_column, snapshots.members(request.segment_id))  # type: ignore[union-attr]
                    source["segment_id"] = request.segment_id
                about = dataset.name
            else:
                rows, snapshot = snapshots.live(request.segment_id, model.encoder.features, ctx)  # type: ignore[union-attr]
                id_column = ID_COLUMN
                source = {f"source_{k}": v for k, v in snapshot.items()}
                about = snapshot["population"]
            n = len(rows.data)
            scores = np.empty(n)
            customers = customer_text(rows.data[id_column])
            wire_ids = np.where(pd.isna(customers), "", customers)  # no id: svc_profile refuses that row
            began = time.perf_counter()
            step = self.settings.score_batch_rows
            scored = began

            def scored_batches() -> Iterator[ScoreBatch]:
                # Each batch goes to svc_profile as soon as it is scored: writing overlaps the scoring of the next.
                nonlocal scored
                for start in range(0, n, step):
                    ctx.progress(90 * start / max(n, 1), f"scoring rows {start}-{min(n, start + step)} of {n}")
                    part = rows.data.iloc[start : start + step]
                    scores[start : start + step] = model.predict_matrix(model.encoder.transform(part))
                    yield ScoreBatch(wire_ids[start : start + step], scores[start : start + step])
                scored = time.perf_counter()
                if connected:
                    ctx.progress(90, "scored: writing the last scores to svc_profile")

            connected = self._writer.connected
            if connected:
                ctx.progress(0, f"scoring {n} rows and writing the scores to svc_profile as tag {tag!r}")
            written = self._writer.write_scores(tag, version.model_name, version.version, scored_batches())
            wrote = time.perf_counter()
            ctx.progress(95, "storing the score table")
            table = self._catalog.create(
                score_table(customers, scores, id_column),
                name=f"{tag}_v{version.version}",
                origin="model_scores",
                description=f"scores of {version.model_name} version {version.version} on {about}",
                lineage={
                    "model_name": version.model_name,
                    "model_version": str(version.version),
                    **source,
                    "tag_name": tag,
                    "scoring_job": ctx.job_id,
                    "profile_writeback": f"written {written}" if connected else "not connected",
                    # Rows without an id are scored but cannot be written back (svc_profile refuses them).
                    "rows_without_customer_id": str(int((wire_ids == "").sum())),
                    # The write-back runs from the start of scoring to svc_profile's reply: it overlaps scoring.
                    "seconds": f"scoring {scored - began:.2f}, write-back {wrote - began if connected else 0:.2f}",
                },
                customer_id_column="customer_id",
                created_by=created_by,
            )
            return table.dataset_id

        model_used = [(version.model_name, int(version.version))]
        return self._jobs.submit("score_customers", run, created_by, [request.dataset_id], models=model_used)


def _refuse_repeated_ids(dataset: pb.Dataset, frame: Frame) -> None:
    """A score written back is one tag per customer: two rows of one customer would leave whichever came last."""
    ids = pd.Series(customer_text(frame.data[dataset.customer_id_column])).dropna()
    ids = ids[ids != ""]
    repeated = ids[ids.duplicated()]
    if len(repeated):
        example = checks.shown(frame, dataset.customer_id_column, repeated.iloc[0])
        raise InvalidArgument(
            f"dataset {dataset.name!r} has {repeated.nunique()} customer ids on more than one row (e.g. {example}): "
            "svc_profile keeps one score per customer; keep one row per customer",
            violations=[FieldViolation("dataset_id", "a dataset with one row per customer")],
        )


def score_table(customers: np.ndarray, scores: np.ndarray, source_id_column: str) -> Frame:
    columns = [
        pb.Column(
            name="customer_id",
            type=types_pb2.VALUE_TYPE_STRING,
            role=pb.COLUMN_ROLE_ID,
            description=f"from {source_id_column}",
        ),
        pb.Column(name="score", type=types_pb2.VALUE_TYPE_DOUBLE, role=pb.COLUMN_ROLE_FEATURE),
    ]
    return Frame(pd.DataFrame({"customer_id": customers, "score": scores}), columns)
