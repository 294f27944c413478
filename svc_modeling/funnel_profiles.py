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

Drivers are prospective: a cut-off (``driver_cutoff``; default 30 days before the range's end, or the range's midpoint
when that is later; a range without a start begins at the log's first event) splits the range. The features are
built from the events before it only, and a transition's outcome is whether a customer in the earlier stage and not
yet in the next at the cut-off (stages evaluated on the events before it) reaches the next stage by the range's end.
A feature that only follows the conversion (a receipt viewed after a purchase) therefore cannot come out as a driver,
as it did when features were measured at the end.
"""

from __future__ import annotations

import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from svc_common.conditions import PROFILE_SCOPE, Compare, EventAbsence, EventCount, Source, compile_condition, evaluate
from svc_common.conditions import walk as walk_tree
from svc_common.errors import FailedPrecondition, FieldViolation, InvalidArgument
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_modeling.guard import moment_us
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


DAY_US = 86_400_000_000
OUTCOME_DAYS = 30
"""Without ``driver_cutoff``: the last 30 days of the range are the conversion window (half a shorter range)."""
MIN_AT_CUTOFF = 50
"""Customers in a transition's earlier stage at the cut-off needed for its drivers."""


def driver_cutoff(
    request: pb.ComputeAiplFunnelRequest, since: int | None, until: int, *, start_is_log: bool = False
) -> int:
    """The cut-off in microseconds: the request's (inside the range, else INVALID_ARGUMENT) or the default.
    ``since``: the range's start (``start_is_log``: the log's first event, the range having no start); None: not
    known yet (the default is then the one for a range of at least twice the outcome window)."""
    if request.HasField("driver_cutoff"):
        cut = moment_us(request.driver_cutoff, "driver_cutoff")
        if cut >= until or (since is not None and cut <= since):
            start = "the log's first event (time_range has no start)" if start_is_log else "time_range.start"
            raise InvalidArgument(
                "driver_cutoff must lie inside the time range: features come from before it, conversions after it",
                violations=[FieldViolation("driver_cutoff", f"after {start} and before time_range.end (and now)")],
            )
        return cut
    cut = until - OUTCOME_DAYS * DAY_US
    return cut if since is None else max(cut, since + (until - since) // 2)


def _stage_masks(nodes: dict[int, object], subjects: list[SnapshotSubject]) -> list[np.ndarray]:
    reached = np.ones(len(subjects), dtype=bool)
    masks = []
    for stage in STAGES:
        holds = np.array([evaluate(nodes[stage], s) for s in subjects], dtype=bool)
        reached = reached & holds
        masks.append(reached.copy())
    return masks


def _stamp(us: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMicroseconds(us)
    return stamp


def profile_funnel(
    request: pb.ComputeAiplFunnelRequest, snapshots: ProfileSnapshots, seed: int = 0
) -> pb.ComputeAiplFunnelResponse:
    """Stage counts at the range's end; drivers prospective: features before the cut-off, conversion after it."""
    from svc_modeling.funnel import add_drivers, driver_factors

    rules = _rules(request, tuple(snapshots.settings.view_event_types))
    nodes = {stage: compile_condition(rule, PROFILE_SCOPE, field=f"rules[{pb.AiplStage.Name(stage)}].condition")
             for stage, rule in rules.items()}  # fmt: skip
    since, until = None, now_us()
    if request.HasField("time_range"):
        if request.time_range.HasField("start"):
            since = moment_us(request.time_range.start, "time_range.start")
        if request.time_range.HasField("end"):
            until = min(until, moment_us(request.time_range.end, "time_range.end"))
        if since is not None and since >= until:
            raise InvalidArgument(
                "the time range is empty", violations=[FieldViolation("time_range", "start before end (and now)")]
            )
    cutoff = driver_cutoff(request, since, until)
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
    before = SnapshotBuilder(snapshots.settings, cutoff, since_us=since, keep_event_types=event_types)
    for batch in snapshots.log.events():  # one read of the log for both moments
        builder.add(batch)
        before.add(batch)
    if since is None and builder.first_event_us is not None:
        # Without a start the range begins at the log's first event: a given cut-off must come after it, and the
        # default's midpoint rule counts from it. Only a log younger than twice the outcome window moves the
        # default cut-off away from the one assumed above; then the log is read once more for the cut-off's snapshot.
        moved = driver_cutoff(request, builder.first_event_us, until, start_is_log=True)
        if moved != cutoff:
            cutoff = moved
            before = SnapshotBuilder(snapshots.settings, cutoff, keep_event_types=event_types)
            for batch in snapshots.log.events():
                before.add(batch)
    customers = population.customers if population.customers is not None else builder.seen()
    profiles = snapshots.profile.profiles(customers, ["attributes", "tags", "segments"])
    subjects = [SnapshotSubject(builder, c, profiles.get(c)) for c in customers]
    masks = _stage_masks(nodes, subjects)
    at_cutoff = _stage_masks(nodes, [SnapshotSubject(before, c, profiles.get(c)) for c in customers])
    response = pb.ComputeAiplFunnelResponse(driver_cutoff=_stamp(cutoff))
    for stage, mask in zip(STAGES, masks, strict=True):
        response.stages.add(stage=stage, customers=int(mask.sum()))
    attributes = {c: dict(s.attributes) for c, s in zip(customers, subjects, strict=True)}
    # The drivers' features: the events before the cut-off only (attributes are svc_profile's current values).
    frame = snapshot_frame(before, customers, attributes) if customers else None
    factors = driver_factors(frame, used) if frame is not None else []
    trade, views = tuple(snapshots.settings.trade_event_types), tuple(snapshots.settings.view_event_types)
    reads = {stage: rule_event_types(node, trade, views) for stage, node in nodes.items()}
    lowest, break_from = 2.0, pb.AIPL_STAGE_UNSPECIFIED
    enough = False
    for k in range(3):
        base, nxt = masks[k], masks[k + 1]
        conversion = float(nxt.sum() / base.sum()) if base.sum() else 0.0
        transition = response.transitions.add(from_stage=STAGES[k], to_stage=STAGES[k + 1], conversion=conversion)
        if base.sum() and conversion < lowest:
            lowest, break_from = conversion, STAGES[k]
        # At risk: in the earlier stage at the cut-off, not yet in the next; converted: in the next at the end.
        at_risk = at_cutoff[k] & ~at_cutoff[k + 1]
        converted = nxt[at_risk]
        transition.at_cutoff, transition.converted_after_cutoff = int(at_risk.sum()), int(converted.sum())
        enough = enough or transition.at_cutoff >= MIN_AT_CUTOFF
        target = reads[STAGES[k + 1]]
        candidates = [f for f in factors if not defined_by(f, target, trade, views)]
        transition.drivers_note = _drivers_note(transition, candidates)
        if not transition.drivers_note and frame is not None:
            add_drivers(transition, frame.data.loc[at_risk], converted, candidates, seed + k)
    if request.HasField("driver_cutoff") and not enough:
        counts = ", ".join(f"{t.at_cutoff} in {pb.AiplStage.Name(t.from_stage)}" for t in response.transitions)
        raise FailedPrecondition(
            f"too few customers in a stage at the driver cut-off to estimate drivers ({counts}, not yet in the next "
            f"stage; at least {MIN_AT_CUTOFF} are needed in one): move driver_cutoff later, or leave it unset",
            reason="TOO_FEW_AT_CUTOFF",
        )
    response.break_point_from = break_from
    return response


def _drivers_note(transition: pb.AiplTransition, candidates: list[str]) -> str:
    stage = pb.AiplStage.Name(transition.from_stage).removeprefix("AIPL_STAGE_")
    nxt = pb.AiplStage.Name(transition.to_stage).removeprefix("AIPL_STAGE_")
    n, converted = transition.at_cutoff, transition.converted_after_cutoff
    if n < MIN_AT_CUTOFF:
        return f"{n} customers in {stage} and not yet in {nxt} at the cut-off: at least {MIN_AT_CUTOFF} are needed"
    if converted in (0, n):
        return f"{'none' if not converted else 'all'} of the {n} customers in {stage} at the cut-off reached {nxt}"
    if not candidates:
        return "no numeric feature with values for everyone that the next stage's rule does not read"
    return ""
