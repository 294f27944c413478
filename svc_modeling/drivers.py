"""Causal driver analyses as a service: estimate (a job), read back, what-if and response curves.

An analysis stores its DriverAnalysis (JSON) and its outcome-model ensemble (pickled, in our own database).
What-if and response curves run on the analysis's dataset, encoded once and cached.
"""

from __future__ import annotations

import pickle
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
from google.protobuf import json_format

from svc_common.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from svc_common.pb.qiming.common.v1 import job_pb2, types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_common.server import note_customers
from svc_modeling.catalog import DatasetCatalog
from svc_modeling.config import ModelingSettings
from svc_modeling.frame import Frame
from svc_modeling.in_use import refuse_if_in_use
from svc_modeling.jobs import JobContext, JobRunner
from svc_modeling.methods import checks
from svc_modeling.methods import drivers as methods
from svc_modeling.models import customer_text
from svc_modeling.profiles import ProfileSnapshots
from svc_modeling.store import SqlModelingStore, utcnow

CURVE_ROWS = 2000


class DriverService:
    def __init__(
        self,
        settings: ModelingSettings,
        store: SqlModelingStore,
        catalog: DatasetCatalog,
        jobs: JobRunner,
        snapshots: ProfileSnapshots | None = None,
    ) -> None:
        self.settings = settings
        self._snapshots = snapshots
        self._store = store
        self._catalog = catalog
        self._jobs = jobs
        self._cache: OrderedDict[str, tuple[Any, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def estimate(self, request: pb.EstimateDriversRequest, created_by: str = "") -> job_pb2.Job:
        method = request.method or "dml"
        if method not in methods.METHODS:
            raise InvalidArgument(
                f"unknown method {method!r}", violations=[FieldViolation("method", f"one of {methods.METHODS}")]
            )
        dataset, frame = self._catalog.load(request.dataset_id)
        y = checks.numeric_column(frame, request.outcome_column, "outcome_column")
        exclude = [request.outcome_column, *frame.names(pb.COLUMN_ROLE_ID), *frame.names(pb.COLUMN_ROLE_TREATMENT)]
        for i, name in enumerate(request.confounders):
            if name in request.factors:
                raise InvalidArgument(
                    f"column {name!r} is a factor: it cannot be its own confounder",
                    violations=[FieldViolation(f"confounders[{i}]", "a column that is not among factors")],
                )
        # No factors named: every numeric or 0/1 FEATURE column but the confounders the caller named (adjusted for,
        # not ranked). Text FEATURE columns cannot be factors: they are left out of the candidates (adjusted for as
        # confounders when the request names none; the analysis's graph lists every column it used).
        default_exclude = exclude
        if not request.factors:
            features = frame.default_features()
            text = [n for n in features if frame.is_string(n) and n not in exclude]
            default_exclude = [*exclude, *request.confounders, *text]
            if text and not [n for n in features if n not in default_exclude]:
                raise InvalidArgument(
                    f"no numeric or 0/1 FEATURE column to rank: the text FEATURE columns ({', '.join(text)}) cannot "
                    "be factors; name the factors (one 0/1 column per category)",
                    violations=[FieldViolation("factors", "name numeric or 0/1 factors", "MISSING_FIELD")],
                )
        factors = checks.feature_columns(frame, request.factors, default_exclude, "factors")
        for i, name in enumerate(factors):
            where = f"factors[{i}]" if request.factors else "factors"
            if frame.is_string(name):
                raise InvalidArgument(
                    f"factor {name!r} holds text: a factor must be a number or 0/1 (one column per category)",
                    violations=[FieldViolation(where, "use numeric factors")],
                )
            if method == "dr" and not np.isin(frame.data[name].dropna().unique(), (0.0, 1.0)).all():
                raise InvalidArgument(
                    f"method dr needs 0/1 factors; {name!r} is not binary (use dml)",
                    violations=[FieldViolation(where, "a 0/1 factor, or method dml")],
                )
        confounders = (
            checks.feature_columns(frame, request.confounders, [request.outcome_column], "confounders")
            if request.confounders
            else [n for n in frame.default_features() if n not in factors and n not in exclude]
        )
        names = list(dict.fromkeys([*factors, *confounders]))
        known = {*names, request.outcome_column}
        for i, edge in enumerate(request.graph):
            for end in (edge.cause, edge.effect):
                if end not in known:
                    raise InvalidArgument(
                        f"graph edge {edge.cause!r} → {edge.effect!r}: {end!r} is not a factor, confounder or outcome",
                        violations=[FieldViolation(f"graph[{i}]", "name columns of the analysis")],
                    )
        _check_acyclic(request.graph)
        edges = [(e.cause, e.effect) for e in request.graph] or methods.default_graph(
            factors, confounders, request.outcome_column
        )
        encoder = checks.FeatureEncoder.fit(frame, names)
        x = encoder.transform(frame.data)
        checks.check_leakage(x, names, y, self.settings.leakage_auc_threshold, "factors")
        if np.isnan(x[:, : len(factors)]).any():
            bad = factors[int(np.argmax(np.isnan(x[:, : len(factors)]).any(axis=0)))]
            raise InvalidArgument(
                f"factor {bad!r} has missing values: fill or drop those rows first",
                violations=[FieldViolation("factors", f"{bad!r} has missing values")],
            )
        seed = request.random_seed

        def run(ctx: JobContext) -> str:
            effects: dict[str, methods.Est] = {}
            refutations: dict[str, list[methods.RefutationResult]] = {}
            steps = len(factors) + 1
            for i, factor in enumerate(factors):
                ctx.progress(100 * i / steps, f"effect of {factor}")
                column = names.index(factor)
                adjust = [
                    names.index(c) for c in methods.graph_adjustment(factor, request.outcome_column, names, edges)
                ]
                w, t = methods.adjustment(x, adjust, encoder.categorical_indices, method), x[:, column]
                effects[factor] = methods.dml_effect(y, t, w, method, seed)
                if request.refute:
                    ctx.progress(100 * (i + 0.5) / steps, f"refuting the effect of {factor}")
                    refutations[factor] = methods.refute(y, t, w, method, effects[factor], seed)
            ctx.progress(100 * len(factors) / steps, "fitting the outcome model for what-if")
            outcome_model = methods.OutcomeModel.fit(x, y, encoder, factors, names, seed)
            sample = _sample(x, CURVE_ROWS, seed)
            weights = methods.importance(effects, {f: float(np.std(x[:, names.index(f)])) for f in factors})
            left_out = _left_out(frame, names, exclude)  # in the job: a column's problem reads all its values
            analysis = pb.DriverAnalysis(
                analysis_id=str(uuid.uuid4()),
                dataset_id=dataset.dataset_id,
                outcome_column=request.outcome_column,
                method=method,
                graph=[pb.GraphEdge(cause=c, effect=e) for c, e in edges],
                left_out=[pb.LeftOutColumn(column=c, reason=r) for c, r in left_out],
            )
            analysis.created_at.FromDatetime(utcnow())
            for factor in sorted(factors, key=lambda f: -weights[f]):
                column = names.index(factor)
                curve = methods.response_curve(outcome_model, sample, column, methods.factor_grid(x[:, column], 12))
                driver = analysis.drivers.add(
                    factor=factor,
                    effect=pb.Estimate(**effects[factor].as_dict()),
                    importance=weights[factor],
                    nonlinear=curve.nonlinear,
                )
                for r in refutations.get(factor, []):
                    driver.refutations.add(
                        method=r.method,
                        original_effect=r.original,
                        refuted_effect=r.refuted,
                        p_value=r.p_value,
                        passed=r.passed,
                    )
            body = json_format.MessageToDict(analysis, preserving_proto_field_name=True)
            self._store.add_analysis(
                analysis.analysis_id, dataset.dataset_id, body, pickle.dumps(outcome_model, protocol=5)
            )
            return analysis.analysis_id

        return self._jobs.submit("estimate_drivers", run, created_by, [dataset.dataset_id])

    def artifact(self, analysis_id: str) -> tuple[pb.DriverAnalysis, methods.OutcomeModel]:
        """The analysis and its outcome model (encoder: features and text categories; seed), without its data."""
        row = self._store.get_analysis(analysis_id) if analysis_id else None
        if row is None:
            raise NotFound(f"no driver analysis {analysis_id!r}", metadata={"analysis_id": analysis_id})
        # A later release's fields are ignored: replicas of two releases may share the database during an upgrade.
        analysis = json_format.ParseDict(row["body"], pb.DriverAnalysis(), ignore_unknown_fields=True)
        return analysis, pickle.loads(self._store.get_blob(row["artifact_blob_id"]))

    def _load(self, analysis_id: str) -> tuple[Any, ...]:
        with self._lock:
            cached = self._cache.get(analysis_id)
            if cached is not None:
                self._cache.move_to_end(analysis_id)
        # A cached analysis is served only while it exists: another replica may have deleted it.
        if cached is not None and self._store.analysis_exists(analysis_id):
            return cached
        if cached is not None:
            with self._lock:
                self._cache.pop(analysis_id, None)
        analysis, model = self.artifact(analysis_id)
        dataset, frame = self._catalog.load(analysis.dataset_id)
        x = model.encoder.transform(frame.data)  # type: ignore[attr-defined]
        # the shared id text: a numeric id 1005 is "1005", as svc_profile and the other RPCs write it
        ids = customer_text(frame.data[dataset.customer_id_column]) if dataset.customer_id_column else None
        # What-if for everyone runs on a fixed random sample (its sampling error is in the interval); the
        # members' predictions for it as it is are computed once here.
        sample = _sample(x, self.settings.what_if_max_rows, 7)
        entry = (analysis, model, x, ids, sample, model.predict_members(sample))
        with self._lock:
            self._cache[analysis_id] = entry
            while len(self._cache) > 4:
                self._cache.popitem(last=False)
        return entry

    def get(self, analysis_id: str) -> pb.DriverAnalysis:
        return self._load(analysis_id)[0]  # type: ignore[no-any-return]

    def delete(self, analysis_id: str) -> None:
        """NOT_FOUND, or FAILED_PRECONDITION (``ANALYSIS_IN_USE``) naming the review schedules and pending or running
        reviews that use it."""
        users = self._store.delete_analysis(analysis_id) if analysis_id else None
        if users is None:
            raise NotFound(f"no driver analysis {analysis_id!r}", metadata={"analysis_id": analysis_id})
        refuse_if_in_use(f"driver analysis {analysis_id!r}", users, "ANALYSIS_IN_USE", {"analysis_id": analysis_id})
        with self._lock:
            self._cache.pop(analysis_id, None)

    def _factor_column(self, model: methods.OutcomeModel, factor: str) -> int:
        features = model.encoder.features  # type: ignore[attr-defined]
        if factor not in features or factor in model.encoder.categories:  # type: ignore[attr-defined]
            raise InvalidArgument(
                f"{factor!r} is not a numeric input of this analysis",
                violations=[FieldViolation("factor", f"one of {', '.join(model.factor_ranges)}")],
            )
        return features.index(factor)

    def what_if(self, request: pb.WhatIfRequest) -> pb.WhatIfResponse:
        _analysis, model, x, ids, sample, sample_now = self._load(request.analysis_id)
        column = self._factor_column(model, request.factor)
        change = request.WhichOneof("change")
        if change is None:
            raise InvalidArgument(
                "say how the factor changes",
                violations=[FieldViolation("change", "set_to, shift_by or scale_by", "MISSING_FIELD")],
            )
        scope = request.population.WhichOneof("scope")
        rows, current, population = sample, sample_now, len(x)
        if scope == "segment_id":
            if ids is None:
                raise FailedPrecondition("the analysis's dataset has no customer id column: ask for everyone")
            if self._snapshots is None:
                raise FailedPrecondition("segments need svc_profile", reason="PEER_NOT_CONFIGURED")
            segment_id = request.population.segment_id
            members = self._snapshots.members(segment_id)
            match = np.isin(ids, sorted(members))
            if not match.any():
                raise FailedPrecondition(
                    f"none of the {len(members)} customers of segment {segment_id!r} is in the analysis's dataset",
                    reason="EMPTY_POPULATION",
                )
            rows, current, population = x[match], None, int(match.sum())
        if scope == "user":
            user = request.population.user
            if user.type not in (types_pb2.ID_TYPE_UNSPECIFIED, types_pb2.ID_TYPE_CUSTOMER):
                raise InvalidArgument(
                    "population.user: the analysis's dataset is keyed by customer id",
                    violations=[FieldViolation("population.user.type", "ID_TYPE_CUSTOMER (or unset)")],
                )
            if ids is None:
                raise FailedPrecondition("the analysis's dataset has no customer id column: ask for everyone")
            note_customers(user.value)  # the audit line names the customer asked about
            match = ids == user.value
            if not match.any():
                raise NotFound(f"customer {request.population.user.value!r} is not in the analysis's dataset")
            rows, current, population = x[match], None, int(match.sum())
        after = rows.copy()
        value = getattr(request, change)
        if not np.isfinite(value):
            raise InvalidArgument(
                f"{change} is {value}: give a finite number", violations=[FieldViolation(change, "a finite number")]
            )
        if change == "set_to":
            after[:, column] = value
        elif change == "shift_by":
            after[:, column] = after[:, column] + value
        else:
            after[:, column] = after[:, column] * value
        est, now, predicted = methods.change_estimate(model, rows, after, current, population)
        return pb.WhatIfResponse(
            outcome_change=pb.Estimate(**est.as_dict()),
            current_outcome=now,
            predicted_outcome=predicted,
            population_size=population,
        )

    def response_curve(self, request: pb.ResponseCurveRequest) -> pb.ResponseCurveResponse:
        model, x = self._load(request.analysis_id)[1:3]
        column = self._factor_column(model, request.factor)
        points = request.points or 20
        if not 3 <= points <= 200:
            raise InvalidArgument(
                f"points {points} is out of range: 3 to 200 (0: 20)",
                violations=[FieldViolation("points", "3 to 200 (0: 20)")],
            )
        # A factor with two values (0/1) is evaluated at those two only: it takes no value between them.
        grid = methods.factor_grid(x[:, column], points)
        curve = methods.response_curve(model, _sample(x, CURVE_ROWS, 0), column, grid)
        response = pb.ResponseCurveResponse(has_threshold=curve.threshold is not None, threshold=curve.threshold or 0.0)
        for value, mean, se in zip(curve.values, curve.means, curve.ses, strict=True):
            est = methods.Est.normal(float(mean), float(se))
            response.points.add(factor_value=float(value), outcome=pb.Estimate(**est.as_dict()))
        return response


def _sample(x: np.ndarray, rows: int, seed: int) -> np.ndarray:
    if len(x) <= rows:
        return x
    return x[np.random.default_rng(seed).choice(len(x), rows, replace=False)]


def _left_out(frame: Frame, used: Sequence[str], exclude: Sequence[str]) -> list[tuple[str, str]]:
    """The candidate columns (:meth:`Frame.default_features`) an analysis neither ranks nor adjusts for, each with
    why, so that a caller sees what the effects were not adjusted for (``DriverAnalysis.left_out``)."""
    taken = {*used, *exclude}
    left_out = []
    for name in frame.default_features():
        if name in taken:
            continue
        reason = checks.feature_problem(frame, name)
        if not reason and frame.is_string(name):
            reason = (
                f"column {name!r} holds text: never a factor (one 0/1 column per category), and not named among "
                "the confounders"
            )
        left_out.append((name, reason or f"column {name!r} was not named among the factors or the confounders"))
    return left_out


def _check_acyclic(graph: Sequence[pb.GraphEdge]) -> None:
    """A causal graph is a DAG: a self-loop or a cycle has no adjustment set (INVALID_ARGUMENT naming an edge)."""
    children: dict[str, list[tuple[str, int]]] = {}
    for i, edge in enumerate(graph):
        if edge.cause == edge.effect:
            raise InvalidArgument(
                f"graph edge {edge.cause!r} → {edge.effect!r} is a loop: a column cannot cause itself",
                violations=[FieldViolation(f"graph[{i}]", "remove the edge")],
            )
        children.setdefault(edge.cause, []).append((edge.effect, i))
    state: dict[str, int] = {}  # 1: on the current path, 2: done (iterative: a graph may have 1,000s of nodes)
    for root in list(children):
        if root in state:
            continue
        state[root] = 1
        stack, path = [(root, iter(children.get(root, [])))], []
        while stack:
            node, pending = stack[-1]
            step = next(pending, None)
            if step is None:
                state[node] = 2
                stack.pop()
                if stack:
                    path.pop()
                continue
            child, i = step
            if state.get(child) == 1:
                cycle = [*path, i]
                first = next(k for k, j in enumerate(cycle) if graph[j].cause == child)
                names = [graph[j].cause for j in cycle[first:]] + [child]
                raise InvalidArgument(
                    f"the graph has a cycle ({' → '.join(names)}): a causal graph must not have one",
                    violations=[FieldViolation(f"graph[{i}]", "remove or reverse an edge of the cycle")],
                )
            if child not in state:
                state[child] = 1
                path.append(i)
                stack.append((child, iter(children.get(child, []))))
