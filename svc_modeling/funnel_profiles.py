"""The AIPL funnel over live profiles: each stage's rule is a condition of the shared language
(``svc_common.conditions``, profile scope: attributes, features, tags, scores, event counts and absences,
segments), evaluated for every customer of the population — a segment's customers, or everyone seen in the log.

Features and event conditions come from the event log (``svc_modeling.snapshot``) as of now, or, with a
``time_range``, from the events inside it only, with windows ending at its end. Attributes, tags and segment
membership are svc_profile's current values. Without rules the defaults are: awareness — any event
(``events_total`` ≥ 1); interest — a view event (``count.<view type>.400d`` ≥ 1 for any of
``view_event_types``); purchase — a trade (``trade_count`` ≥ 1); loyalty — a repeat trade (``trade_count`` ≥ 2).

Drivers of a transition are the numeric snapshot features except those the next stage is defined by: every
feature built from an event type its rule reads (a trade rule drops ``turnover_fen``, ``count.trade_filled.*``,
...; a view rule drops ``views.*``, ``risk_views.*``, ``count.<view type>.*``; any of them drops the any-event
features ``events_total``, ``sessions``, ``first_seen_at``, ``last_seen_at``), so a stage is never reported as
its own driver.
"""

from __future__ import annotations

import numpy as np

from svc_common.conditions import PROFILE_SCOPE, Compare, EventAbsence, EventCount, Source, compile_condition, evaluate
from svc_common.conditions import walk as walk_tree
from svc_common.errors import FieldViolation, InvalidArgument
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_modeling.profiles import ProfileSnapshots, now_us
from svc_modeling.snapshot import SnapshotBuilder, SnapshotSubject, snapshot_frame

STAGES = (pb.AIPL_STAGE_AWARENESS, pb.AIPL_STAGE_INTEREST, pb.AIPL_STAGE_PURCHASE, pb.AIPL_STAGE_LOYALTY)


def _at_least(name: str, n: int) -> C.Condition:
    return C.Condition(
        comparison=C.Comparison(
            field=C.FieldRef(source=C.FieldRef.SOURCE_FEATURE, name=name),
            operator=C.OPERATOR_GTE,
            value=types_pb2.Value(int_value=n),
        )
    )


def default_rules(view_event_types: tuple[str, ...]) -> dict[int, C.Condition]:
    interest = C.Condition(
        any_of=C.ConditionList(conditions=[_at_least(f"count.{v}.400d", 1) for v in view_event_types])
    )
    return {
        pb.AIPL_STAGE_AWARENESS: _at_least("events_total", 1),
        pb.AIPL_STAGE_INTEREST: interest,
        pb.AIPL_STAGE_PURCHASE: _at_least("trade_count", 1),
        pb.AIPL_STAGE_LOYALTY: _at_least("trade_count", 2),
    }


_ANY_EVENT = ("events_total", "sessions", "first_seen_at", "last_seen_at")
_TRADE = ("trade_count", "first_trade_at", "last_trade_at", "trade_amount_masked", "risk.max_traded_level")
EVERY = None  # "every event type"


def feature_event_types(name: str, trade: tuple[str, ...], views: tuple[str, ...]) -> set[str] | None:
    """The event types svc_profile builds feature ``name`` from (``EVERY``: all; empty: none, an attribute)."""
    if name in _ANY_EVENT:
        return EVERY
    if name.startswith("count.") and name.count(".") >= 2:
        return {name[len("count.") :].rsplit(".", 1)[0]}
    if name in _TRADE or name == "turnover_fen" or name.startswith("turnover_fen."):
        return set(trade)
    if name.startswith(("views.", "risk_views.")):
        return set(views)
    return set()


def rule_event_types(node: object, trade: tuple[str, ...], views: tuple[str, ...]) -> set[str] | None:
    """The event types a compiled stage rule reads (``EVERY`` when it reads an any-event feature)."""
    types: set[str] = set()
    for n in walk_tree(node):
        if isinstance(n, EventCount | EventAbsence):
            types.add(n.event_type)
        elif isinstance(n, Compare) and n.source == Source.FEATURE:
            read = feature_event_types(n.name, trade, views)
            if read is EVERY:
                return EVERY
            types |= read
    return types


def defined_by(name: str, types: set[str] | None, trade: tuple[str, ...], views: tuple[str, ...]) -> bool:
    """Whether feature ``name`` is built from events of ``types``: then it restates a stage read from them."""
    source = feature_event_types(name, trade, views)
    if types is EVERY:
        return source is EVERY or bool(source)
    return bool(types) and (source is EVERY or bool(source & types))


def _rules(request: pb.ComputeAiplFunnelRequest, view_event_types: tuple[str, ...]) -> dict[int, C.Condition]:
    if not request.rules:
        return default_rules(view_event_types)
    from svc_modeling.funnel import stage_rules  # funnel.py imports this module lazily, the other way round

    rules = stage_rules(request.rules)
    if len(rules) != len(STAGES):
        raise InvalidArgument(
            "give all four stages or none (the defaults)",
            violations=[FieldViolation("rules", "one rule for each of the four stages")],
        )
    return rules


def profile_funnel(
    request: pb.ComputeAiplFunnelRequest, snapshots: ProfileSnapshots, seed: int = 0
) -> pb.ComputeAiplFunnelResponse:
    from svc_modeling.funnel import add_drivers, driver_factors

    rules = _rules(request, tuple(snapshots.settings.view_event_types))
    nodes = {stage: compile_condition(rule, PROFILE_SCOPE, field=f"rules[{pb.AiplStage.Name(stage)}].condition")
             for stage, rule in rules.items()}  # fmt: skip
    since, until = None, now_us()
    if request.HasField("time_range"):
        if request.time_range.HasField("start"):
            since = request.time_range.start.ToMicroseconds()
        if request.time_range.HasField("end"):
            until = min(until, request.time_range.end.ToMicroseconds())
        if since is not None and since >= until:
            raise InvalidArgument(
                "the time range is empty", violations=[FieldViolation("time_range", "start before end (and now)")]
            )
    event_types, used = set(), set()
    for node in nodes.values():
        for n in walk_tree(node):
            if isinstance(n, EventCount | EventAbsence) and n.filter is not None:
                event_types.add(n.event_type)
            elif isinstance(n, Compare) and n.source in (Source.FEATURE, Source.ATTRIBUTE):
                used.add(n.name)
    snapshots.require(segment_id=request.segment_id)
    population = snapshots.population(request.segment_id)
    builder = SnapshotBuilder(snapshots.settings, until, since_us=since, keep_event_types=event_types)
    snapshots.read(builder, None, 0, 0)
    customers = population.customers if population.customers is not None else builder.seen()
    profiles = snapshots.profile.profiles(customers, ["attributes", "tags", "segments"])
    reached = np.ones(len(customers), dtype=bool)
    masks = []
    subjects = [SnapshotSubject(builder, c, profiles.get(c)) for c in customers]
    for stage in STAGES:
        holds = np.array([evaluate(nodes[stage], s) for s in subjects], dtype=bool)
        reached = reached & holds
        masks.append(reached.copy())
    response = pb.ComputeAiplFunnelResponse()
    for stage, mask in zip(STAGES, masks, strict=True):
        response.stages.add(stage=stage, customers=int(mask.sum()))
    attributes = {c: dict(s.attributes) for c, s in zip(customers, subjects, strict=True)}
    frame = snapshot_frame(builder, customers, attributes) if customers else None
    factors = driver_factors(frame, used) if frame is not None else []
    trade, views = tuple(snapshots.settings.trade_event_types), tuple(snapshots.settings.view_event_types)
    reads = {stage: rule_event_types(node, trade, views) for stage, node in nodes.items()}
    lowest, break_from = 2.0, pb.AIPL_STAGE_UNSPECIFIED
    for k in range(3):
        base, nxt = masks[k], masks[k + 1]
        conversion = float(nxt.sum() / base.sum()) if base.sum() else 0.0
        transition = response.transitions.add(from_stage=STAGES[k], to_stage=STAGES[k + 1], conversion=conversion)
        if base.sum() and conversion < lowest:
            lowest, break_from = conversion, STAGES[k]
        if frame is not None:
            target = reads[STAGES[k + 1]]
            candidates = [f for f in factors if not defined_by(f, target, trade, views)]
            add_drivers(transition, frame.data.loc[base], nxt[base], candidates, seed + k)
    response.break_point_from = break_from
    return response
