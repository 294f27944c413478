"""Uplift models as a service: train per intervention (a job) with held-out Qini/AUUC beside a random
ranking and a baseline learner, predict per customer, and plan the best intervention under a budget.

Plans are stored as datasets (origin ``intervention_plan``, readable with ReadRows): one row per customer
with the chosen intervention, its expected effect and cost, and the predicted effect of every intervention.
Exporting them as svc_profile segments waits for svc_profile (the plan's lineage says so).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from google.protobuf import json_format

from svc_common.errors import FailedPrecondition, FieldViolation, InvalidArgument
from svc_common.pb.qiming.common.v1 import job_pb2, types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_modeling.catalog import DatasetCatalog
from svc_modeling.config import ModelingSettings
from svc_modeling.frame import Frame
from svc_modeling.jobs import JobContext, JobRunner
from svc_modeling.methods import checks
from svc_modeling.methods import uplift as methods
from svc_modeling.models import ModelRegistry, check_model_name, customer_text, library_versions, rows_to_frame
from svc_modeling.profiles import ProfileSnapshots, check_export_prefix, restrict, segment_names
from svc_modeling.snapshot import ID_COLUMN


def _est(e: methods.Est) -> dict[str, float]:
    return e.as_dict()


class UpliftService:
    def __init__(
        self,
        settings: ModelingSettings,
        catalog: DatasetCatalog,
        jobs: JobRunner,
        models: ModelRegistry,
        snapshots: ProfileSnapshots | None = None,
    ) -> None:
        self.settings = settings
        self._snapshots = snapshots
        self._catalog = catalog
        self._jobs = jobs
        self._models = models

    def train(self, request: pb.TrainUpliftRequest, created_by: str = "") -> job_pb2.Job:
        check_model_name(request.model_name)
        learner = request.learner or "t_learner"
        if learner not in methods.LEARNERS:
            raise InvalidArgument(
                f"unknown learner {learner!r}",
                violations=[FieldViolation("learner", f"one of {', '.join(methods.LEARNERS)}")],
            )
        baseline = "s_learner" if learner == "t_learner" else "t_learner"
        test_fraction = request.test_fraction or 0.3
        if not 0.1 <= test_fraction <= 0.5:
            raise InvalidArgument(
                f"test_fraction {test_fraction:g} is out of range: 0.1 to 0.5 (0: 0.3)",
                violations=[FieldViolation("test_fraction", "0.1 to 0.5")],
            )
        rounds = request.bootstrap_rounds or self.settings.default_bootstrap_rounds
        if not 10 <= rounds <= 10_000:
            raise InvalidArgument(
                f"bootstrap_rounds {rounds} is out of range: 10 to 10000 (0: the service's default)",
                violations=[FieldViolation("bootstrap_rounds", "10 to 10000")],
            )
        for i, intervention in enumerate(request.interventions):
            if intervention.cost_fen < 0:
                raise InvalidArgument(
                    f"intervention {intervention.name!r} has a negative cost",
                    violations=[FieldViolation(f"interventions[{i}].cost_fen", "0 or more")],
                )
        dataset, frame = self._catalog.load(request.dataset_id)
        y = checks.numeric_column(frame, request.outcome_column, "outcome_column")
        named = [i.name for i in request.interventions]
        treatment, arms = checks.treatment_arms(
            frame,
            request.treatment_column,
            request.control_value,
            "treatment_column",
            self.settings.min_rows_per_arm,
            named,
        )
        costs = {i.name: i.cost_fen for i in request.interventions}
        interventions = [(arm, int(costs.get(arm, 0))) for arm in arms]
        exclude = [request.outcome_column, request.treatment_column, *frame.names(pb.COLUMN_ROLE_ID)]
        features = checks.feature_columns(frame, request.feature_columns, exclude, "feature_columns")
        encoder = checks.FeatureEncoder.fit(frame, features)
        x = encoder.transform(frame.data)
        checks.check_leakage(x, features, y, self.settings.leakage_auc_threshold)
        test_mask = _stratified_mask(treatment, test_fraction, request.random_seed)
        for arm in [request.control_value, *arms]:
            held = int(((treatment == arm) & test_mask).sum())
            if held < self.settings.min_rows_per_arm:
                named = checks.shown(frame, request.treatment_column, arm)
                raise FailedPrecondition(
                    f"too few held-out rows in arm {named}: {held}; raise test_fraction or add data",
                    metadata={"arm": checks.HIDDEN if checks.is_sensitive(frame, request.treatment_column) else arm},
                )
        parent = self._models._store.get_model(request.model_name, 0)

        def run(ctx: JobContext) -> str:
            model, quality = methods.train_uplift(
                x, treatment, y, control=request.control_value, interventions=interventions, learner=learner,
                baseline_learner=baseline, test_mask=test_mask, rounds=rounds, seed=request.random_seed,
                encoder=encoder, progress=lambda p, m: ctx.progress(0.95 * p, m),
            )  # fmt: skip
            first = quality[interventions[0][0]]
            metrics = {
                "train_rows": int((~test_mask).sum()),
                "test_rows": int(test_mask.sum()),
                "base_rate": float(y[(treatment == request.control_value) & test_mask].mean()),
                "qini": _est(first.qini),
                "auuc": _est(first.auuc),
                "qini_random": _est(first.qini_random),
                "qini_baseline": _est(first.qini_baseline),
            }
            version = pb.ModelVersion(
                model_name=request.model_name,
                task=pb.MODEL_TASK_UPLIFT,
                dataset_id=dataset.dataset_id,
                label_column=request.outcome_column,
                feature_columns=features,
                algorithm=learner,
                hyperparameters={
                    "treatment_column": request.treatment_column,
                    "control_value": request.control_value,
                    "baseline_learner": baseline,
                    "test_fraction": str(test_fraction),
                    "bootstrap_rounds": str(rounds),
                    "metrics_intervention": interventions[0][0],
                },
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
            summaries = [
                {
                    "intervention": name,
                    "cost_fen": str(cost),
                    "baseline_learner": baseline,
                    "average_effect": _est(quality[name].average_effect),
                    "qini": _est(quality[name].qini),
                    "auuc": _est(quality[name].auuc),
                    "qini_random": _est(quality[name].qini_random),
                    "qini_baseline": _est(quality[name].qini_baseline),
                }
                for name, cost in interventions
            ]
            registered = self._models.register(version, model, {"interventions": summaries})
            return f"{registered.model_name}/{registered.version}"

        return self._jobs.submit("train_uplift", run, created_by, [dataset.dataset_id])

    def _uplift_model(self, name: str, version: int) -> tuple[pb.ModelVersion, methods.UpliftModel]:
        found, model = self._models.artifact(name, version)
        if not isinstance(model, methods.UpliftModel):
            raise FailedPrecondition(f"model {name!r} is not an uplift model: use ModelService")
        return found, model

    def get(self, name: str, version: int) -> pb.GetUpliftModelResponse:
        model, body = self._models.get_with_extra(name, version)
        if model.task != pb.MODEL_TASK_UPLIFT:
            raise FailedPrecondition(f"model {name!r} is not an uplift model: use ModelService.GetModel")
        response = pb.GetUpliftModelResponse(model=model)
        for summary in body.get("interventions", []):
            json_format.ParseDict(summary, response.interventions.add())
        return response

    def predict(self, request: pb.PredictUpliftRequest) -> pb.PredictUpliftResponse:
        _version, model = self._uplift_model(request.model_name, request.version)
        data = rows_to_frame(list(request.columns), list(request.rows))
        response = pb.PredictUpliftResponse()
        if not len(data):
            return response
        effects = model.effects(model.encoder.transform(data))
        names = [name for name, _ in model.interventions]
        for i, row in enumerate(effects):
            best = int(np.argmax(row))
            response.uplifts.add(
                key=str(i),
                effects=dict(zip(names, row.tolist(), strict=True)),
                best_intervention=names[best] if row[best] > 0 else "",
            )
        return response

    def plan(self, request: pb.PlanInterventionsRequest, created_by: str = "") -> job_pb2.Job:
        version, model = self._uplift_model(request.model_name, request.version)
        if request.budget_fen < 0:
            raise InvalidArgument(
                "budget_fen is negative", violations=[FieldViolation("budget_fen", "0 (no budget) or more")]
            )
        check_export_prefix(request.export_segment_prefix)
        if request.export_segment_prefix:
            segment_names(request.export_segment_prefix, [name for name, _ in model.interventions])
        snapshots = self._snapshots
        needs_profile = bool(request.segment_id or not request.dataset_id or request.export_segment_prefix)
        if needs_profile and snapshots is None:
            raise FailedPrecondition("segments and profile snapshots need svc_profile", reason="PEER_NOT_CONFIGURED")
        if request.dataset_id:
            dataset, frame = self._catalog.load_keyed(request.dataset_id, model.encoder.features, "plan")
            if needs_profile:
                snapshots.require(log=False, segment_id=request.segment_id)  # type: ignore[union-attr]
        else:
            snapshots.require(segment_id=request.segment_id)  # type: ignore[union-attr]

        def population(ctx: JobContext) -> tuple[Frame, str, dict[str, str]]:
            if not request.dataset_id:
                rows, snapshot = snapshots.live(request.segment_id, model.encoder.features, ctx)  # type: ignore[union-attr]
                return rows, ID_COLUMN, {f"source_{k}": v for k, v in snapshot.items()}
            source = {"source_dataset_id": dataset.dataset_id}
            if not request.segment_id:
                return frame, dataset.customer_id_column, source
            ctx.progress(2, f"reading the members of segment {request.segment_id}")
            members = snapshots.members(request.segment_id)  # type: ignore[union-attr]
            return (
                restrict(frame, dataset.customer_id_column, members),
                dataset.customer_id_column,
                {
                    **source,
                    "segment_id": request.segment_id,
                },
            )

        def run(ctx: JobContext) -> str:
            rows, id_column, source = population(ctx)
            # A row without a customer id cannot be sent anything: it must not take budget.
            known = pd.notna(customer_text(rows.data[id_column]))
            if not known.all():
                source = {**source, "rows_without_customer_id": str(int((~known).sum()))}
                rows = Frame(rows.data.loc[known].reset_index(drop=True), rows.columns)
            ctx.progress(5, f"predicting effects for {len(rows.data)} customers")
            effects = model.effects(model.encoder.transform(rows.data))
            ctx.progress(50, "choosing interventions under the budget")
            plan = methods.plan_under_budget(effects, [c for _, c in model.interventions], request.budget_fen)
            ctx.progress(85, "storing the plan")
            names = [name for name, _ in model.interventions]
            table = _plan_frame(rows.data[id_column], names, effects, plan)
            counts = {name: int((plan.choice == j).sum()) for j, name in enumerate(names)}
            lineage = {
                "model_name": version.model_name,
                "model_version": str(version.version),
                **source,
                "budget_fen": str(request.budget_fen),
                "spent_fen": str(plan.spent_fen),
                "expected_total_effect": f"{float(plan.expected_effect.sum()):.6g}",
                "planning_job": ctx.job_id,
                **{f"customers_{name}": str(n) for name, n in counts.items()},
            }
            if request.export_segment_prefix:
                ctx.progress(88, "exporting the plan as static segments to svc_profile")
                origin = f"svc_modeling:uplift_plan/{version.model_name}/v{version.version}/{ctx.job_id}"
                lineage.update(
                    snapshots.export_plan(  # type: ignore[union-attr]
                        request.export_segment_prefix,
                        names,
                        table.data["customer_id"].to_numpy(),
                        plan.choice,
                        origin,
                    )
                )
            stored = self._catalog.create(
                table,
                name=f"plan_{version.model_name}_v{version.version}",
                origin="intervention_plan",
                lineage=lineage,
                customer_id_column="customer_id",
                created_by=created_by,
            )
            return stored.dataset_id

        model_used = [(version.model_name, int(version.version))]
        return self._jobs.submit("plan_interventions", run, created_by, [request.dataset_id], models=model_used)


def _stratified_mask(treatment: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = np.zeros(treatment.size, dtype=bool)
    codes, uniques = pd.factorize(treatment, sort=True)
    for code in range(len(uniques)):
        idx = np.flatnonzero(codes == code)
        mask[rng.choice(idx, size=round(fraction * idx.size), replace=False)] = True
    return mask


def _plan_frame(ids: pd.Series, names: list[str], effects: np.ndarray, plan: methods.Plan) -> Frame:
    text = pd.Series(customer_text(ids), dtype=object)
    chosen = np.array([names[j] if j >= 0 else None for j in plan.choice], dtype=object)
    data: dict[str, Any] = {
        "customer_id": text.to_numpy(),
        "intervention": chosen,
        "expected_effect": plan.expected_effect,
        "cost_fen": plan.cost_fen.astype(np.float64),
    }
    columns = [
        pb.Column(name="customer_id", type=types_pb2.VALUE_TYPE_STRING, role=pb.COLUMN_ROLE_ID),
        pb.Column(name="intervention", type=types_pb2.VALUE_TYPE_STRING, role=pb.COLUMN_ROLE_TREATMENT),
        pb.Column(name="expected_effect", type=types_pb2.VALUE_TYPE_DOUBLE),
        pb.Column(name="cost_fen", type=types_pb2.VALUE_TYPE_MONEY_FEN),
    ]
    taken = set(data)
    for j, name in enumerate(names):
        column = base = f"effect_{checks.safe_name(name)}"
        suffix = 2
        while column in taken:  # "Coupon" and "coupon" are two interventions: two columns
            column, suffix = f"{base}_{suffix}", suffix + 1
        taken.add(column)
        data[column] = effects[:, j]
        columns.append(
            pb.Column(name=column, type=types_pb2.VALUE_TYPE_DOUBLE, description=f"predicted effect of {name}")
        )
    return Frame(pd.DataFrame(data), columns)
