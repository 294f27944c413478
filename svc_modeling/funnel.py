"""The AIPL funnel (Awareness → Interest → Purchase → Loyalty) over a dataset of customers, or over live profiles
(``svc_modeling.funnel_profiles``) when no dataset is named.

On a dataset (``driver_dataset_id``, one row per customer; ``segment_id`` keeps the rows of the segment's
customers) each stage's rule is a ``Condition`` over the dataset's columns (comparisons, all_of / any_of / not;
event, segment and tag conditions are for the funnel over profiles and are refused here). Stages are nested:
a customer reaches a stage when its rule holds and the previous stage was reached. Without rules, the
documented defaults apply: a column per stage named ``awareness``, ``interest``, ``purchase``, ``loyalty``,
reached when greater than 0.

Per transition: conversion (reached the next stage / reached this one), and its drivers: for each numeric
FEATURE column not used by any stage rule, the effect on the chance of converting among those who reached the
stage (``linear_dml``: double ML with ridge nuisance models, on at most ``DRIVER_ROWS`` rows), importance as
for driver analyses. The break-point is the transition with the lowest conversion.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from svc_common.errors import FailedPrecondition, FieldViolation, InvalidArgument
from svc_common.pb.qiming.common.v1 import condition_pb2, types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_modeling.catalog import DatasetCatalog
from svc_modeling.frame import Frame
from svc_modeling.methods import drivers as driver_methods
from svc_modeling.profiles import ProfileSnapshots, restrict

STAGES = (pb.AIPL_STAGE_AWARENESS, pb.AIPL_STAGE_INTEREST, pb.AIPL_STAGE_PURCHASE, pb.AIPL_STAGE_LOYALTY)


def stage_rules(rules: Iterable[pb.AiplStageRule]) -> dict[int, condition_pb2.Condition]:
    """The request's rules by stage; INVALID_ARGUMENT naming a rule without a stage or a stage given twice."""
    out: dict[int, condition_pb2.Condition] = {}
    for i, rule in enumerate(rules):
        if rule.stage not in STAGES:
            raise InvalidArgument("stage is required", violations=[FieldViolation(f"rules[{i}].stage", "a stage")])
        if rule.stage in out:
            raise InvalidArgument(
                "a stage has two rules", violations=[FieldViolation(f"rules[{i}].stage", "one rule per stage")]
            )
        out[rule.stage] = rule.condition
    return out


DEFAULT_COLUMNS = {
    pb.AIPL_STAGE_AWARENESS: "awareness",
    pb.AIPL_STAGE_INTEREST: "interest",
    pb.AIPL_STAGE_PURCHASE: "purchase",
    pb.AIPL_STAGE_LOYALTY: "loyalty",
}
DRIVER_ROWS = 20_000
Op = condition_pb2.Operator
_COLUMN_SOURCES = (
    condition_pb2.FieldRef.SOURCE_UNSPECIFIED,
    condition_pb2.FieldRef.SOURCE_ATTRIBUTE,
    condition_pb2.FieldRef.SOURCE_FEATURE,
    condition_pb2.FieldRef.SOURCE_SCORE,
)


def _bad(field: str, message: str) -> InvalidArgument:
    return InvalidArgument(
        message, reason="INVALID_CONDITION", violations=[FieldViolation(field, message, "INVALID_CONDITION")]
    )


def _operand(value: types_pb2.Value) -> object:
    kind = value.WhichOneof("kind")
    if kind is None:
        return None
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return 1.0 if value.bool_value else 0.0
    if kind == "timestamp_value":
        return float(value.timestamp_value.ToMicroseconds())
    if kind == "string_list_value":
        return list(value.string_list_value.values)
    return float(getattr(value, kind))


def evaluate(condition: condition_pb2.Condition, frame: Frame, where: str, used: set[str]) -> np.ndarray:
    """Rows where ``condition`` holds; ``used`` collects the columns it reads."""
    node = condition.WhichOneof("node")
    if node in ("all_of", "any_of"):
        parts = getattr(condition, node).conditions
        if not parts:
            raise _bad(where, f"{node} with no conditions")
        masks = [evaluate(c, frame, f"{where}.{node}.conditions[{i}]", used) for i, c in enumerate(parts)]
        return np.logical_and.reduce(masks) if node == "all_of" else np.logical_or.reduce(masks)
    if node == "not":
        return ~evaluate(getattr(condition, "not"), frame, f"{where}.not", used)
    if node != "comparison":
        raise FailedPrecondition(
            f"{where}: {node or 'an empty'} condition needs profiles and the event log: leave driver_dataset_id "
            "empty for the funnel over profiles, or use comparisons over the dataset's columns",
            reason="NOT_A_DATASET_CONDITION",
        )
    comparison = condition.comparison
    name = comparison.field.name
    if comparison.field.source not in _COLUMN_SOURCES:
        raise FailedPrecondition(
            f"{where}: fields from tags or events are for the funnel over profiles (leave driver_dataset_id empty)",
            reason="NOT_A_DATASET_CONDITION",
        )
    if frame.spec(name) is None:
        raise _bad(f"{where}.comparison.field", f"column {name!r} is not in the dataset")
    used.add(name)
    column = frame.data[name]
    present = column.notna().to_numpy()
    op = comparison.operator
    if op == Op.OPERATOR_EXISTS:
        return present
    if op == Op.OPERATOR_NOT_EXISTS:
        return ~present
    value = _operand(comparison.value)
    values = [_operand(v) for v in comparison.values]
    text = frame.is_string(name)
    if text and op in (Op.OPERATOR_CONTAINS, Op.OPERATOR_STARTS_WITH):
        strings = column.astype(object).fillna("").astype(str).str
        found = (
            strings.contains(str(value), regex=False) if op == Op.OPERATOR_CONTAINS else strings.startswith(str(value))
        )
        return found.to_numpy(dtype=bool) & present
    if op in (Op.OPERATOR_IN, Op.OPERATOR_NOT_IN):
        if not values:
            raise _bad(f"{where}.comparison.values", "IN needs values")
        inside = column.isin(values).to_numpy()
        return inside if op == Op.OPERATOR_IN else ~inside & present
    if op == Op.OPERATOR_BETWEEN:
        if len(values) != 2 or text or not all(isinstance(v, float) for v in values):
            raise _bad(f"{where}.comparison.values", "BETWEEN needs two numbers on a numeric column")
        numbers = column.to_numpy(dtype=np.float64)
        return (numbers >= values[0]) & (numbers <= values[1])
    if value is None:
        raise _bad(f"{where}.comparison.value", "the comparison needs a value")
    if op in (Op.OPERATOR_EQ, Op.OPERATOR_NE):
        equal = (column == value).to_numpy()
        return equal if op == Op.OPERATOR_EQ else ~equal & present
    if text or isinstance(value, str | list):
        raise _bad(f"{where}.comparison", f"{Op.Name(op)} needs a numeric column and a number")
    numbers = column.to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        if op == Op.OPERATOR_GT:
            return numbers > value
        if op == Op.OPERATOR_GTE:
            return numbers >= value
        if op == Op.OPERATOR_LT:
            return numbers < value
        if op == Op.OPERATOR_LTE:
            return numbers <= value
    raise _bad(f"{where}.comparison.operator", f"operator {Op.Name(op)} is not supported here")


def _default_rule(stage: int) -> condition_pb2.Condition:
    return condition_pb2.Condition(
        comparison=condition_pb2.Comparison(
            field=condition_pb2.FieldRef(source=condition_pb2.FieldRef.SOURCE_FEATURE, name=DEFAULT_COLUMNS[stage]),
            operator=Op.OPERATOR_GT,
            value=types_pb2.Value(double_value=0.0),
        )
    )


def compute_funnel(
    request: pb.ComputeAiplFunnelRequest,
    catalog: DatasetCatalog,
    seed: int = 0,
    snapshots: ProfileSnapshots | None = None,
) -> pb.ComputeAiplFunnelResponse:
    if not request.driver_dataset_id:
        if snapshots is None:
            raise FailedPrecondition(
                "a funnel over profiles needs svc_profile: pass driver_dataset_id (a row per customer)",
                reason="PEER_NOT_CONFIGURED",
            )
        from svc_modeling.funnel_profiles import profile_funnel

        return profile_funnel(request, snapshots, seed)
    if request.HasField("time_range") or request.HasField("driver_cutoff"):
        field = "time range" if request.HasField("time_range") else "driver cut-off"
        raise FailedPrecondition(
            f"a dataset is one snapshot, it has no {field}: leave driver_dataset_id empty for the funnel over "
            "profiles and the event log",
            reason="NOT_A_DATASET_CONDITION",
        )
    dataset, frame = catalog.load(request.driver_dataset_id)
    if request.segment_id:
        if snapshots is None:
            raise FailedPrecondition("segments need svc_profile", reason="PEER_NOT_CONFIGURED")
        if not dataset.customer_id_column:
            raise InvalidArgument(
                f"dataset {dataset.name!r} has no customer id column to find the segment's customers by",
                violations=[FieldViolation("driver_dataset_id", "import it with customer_id_column set")],
            )
        frame = restrict(frame, dataset.customer_id_column, snapshots.members(request.segment_id))
    rules = stage_rules(request.rules)
    used: set[str] = set()
    reached = np.ones(len(frame.data), dtype=bool)
    masks = []
    for stage in STAGES:
        where = f"rules[{pb.AiplStage.Name(stage)}].condition"
        rule = rules.get(stage) if request.rules else _default_rule(stage)
        if rule is None:
            raise InvalidArgument(
                f"no rule for {pb.AiplStage.Name(stage)}: give all four stages or none (the defaults)",
                violations=[FieldViolation("rules", "one rule for each of the four stages")],
            )
        reached = reached & evaluate(rule, frame, where, used)
        masks.append(reached.copy())
    response = pb.ComputeAiplFunnelResponse()
    for stage, mask in zip(STAGES, masks, strict=True):
        response.stages.add(stage=stage, customers=int(mask.sum()))
    factors = driver_factors(frame, used)
    lowest, break_from = 2.0, pb.AIPL_STAGE_UNSPECIFIED
    for k in range(3):
        base, nxt = masks[k], masks[k + 1]
        conversion = float(nxt.sum() / base.sum()) if base.sum() else 0.0
        transition = response.transitions.add(from_stage=STAGES[k], to_stage=STAGES[k + 1], conversion=conversion)
        if base.sum() and conversion < lowest:
            lowest, break_from = conversion, STAGES[k]
        add_drivers(transition, frame.data.loc[base], nxt[base], factors, seed + k)
    response.break_point_from = break_from
    return response


def driver_factors(frame: Frame, used: set[str]) -> list[str]:
    """Numeric FEATURE columns with values for everyone, not read by a stage rule: candidate drivers."""
    defaults = set(frame.default_features())
    return [
        c.name
        for c in frame.columns
        if c.name in defaults and not frame.is_string(c.name) and c.name not in used
        and frame.data[c.name].notna().all() and frame.data[c.name].nunique() > 1
    ]  # fmt: skip


def add_drivers(
    transition: pb.AiplTransition, rows: pd.DataFrame, converted: np.ndarray, factors: list[str], seed: int
) -> None:
    y = converted.astype(float)
    if not factors or y.size < 50 or y.min() == y.max():
        return
    if y.size > DRIVER_ROWS:
        pick = np.random.default_rng(seed).choice(y.size, DRIVER_ROWS, replace=False)
        rows, y = rows.iloc[pick], y[pick]
    x = rows[factors].to_numpy(dtype=np.float64)
    # Constant columns say nothing; a column equal to an earlier one (a 30- and a 90-day count of events that all
    # fell within 30 days) would leave its twin no variation of its own: each is kept once.
    kept, seen = [], set()
    for i in range(len(factors)):
        key = x[:, i].tobytes()
        if np.ptp(x[:, i]) > 0 and key not in seen:
            seen.add(key)
            kept.append(i)
    factors, x = [factors[i] for i in kept], x[:, kept]
    effects, spreads = {}, {}
    for i, name in enumerate(factors):
        w = np.delete(x, i, axis=1)
        effects[name] = driver_methods.dml_effect(y, x[:, i], w, "linear_dml", seed)
        spreads[name] = float(np.std(x[:, i]))
    weights = driver_methods.importance(effects, spreads)
    for name in sorted(effects, key=lambda f: -weights[f]):
        transition.drivers.add(factor=name, effect=pb.Estimate(**effects[name].as_dict()), importance=weights[name])
