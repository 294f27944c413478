"""What the time sweep must look at: the day windows (and sub-day windows) the active rules read, per event
type. A day boundary changes a rule's answer for a person only through a bucket of a type the rule reads
that just left a window the rule reads, so the sweep selects those persons and no others (docs/profile.md,
"Time")."""

from __future__ import annotations

from typing import Any

from svc_common.conditions import Compare, EventAbsence, EventCount, Source, walk
from svc_profile.model import WINDOW_DAYS, window_days

ANY = ""
"""Key of the windows that apply to every event type (a rule whose event types are not known)."""


def _days(seconds: int) -> int:
    return max(1, -(-seconds // 86_400))


def rule_nodes(engine: Any) -> list[Any]:
    """The condition trees of the active rule tags, bands and segments."""
    nodes = []
    for rule in engine.tags.values():
        nodes.extend(n for n in (rule.node, *(node for _, node in rule.bands)) if n is not None)
    nodes.extend(s.node for s in engine.segments.values() if s.node is not None)
    return nodes


FIXED_WINDOWS = {"high_net_worth": {90}, "investor_tier": set(), "fund_preference": set(), "risk_mismatch": set()}
"""The windows the finance formulas read (svc_profile/finance.py): turnover over 90 days; none (assets,
views); the others read their ``*_days`` parameters."""
BY_PARAMETERS = frozenset({"dormant_activation_potential", "trading_frequency_tier", "lifecycle_stage"})


def formula_windows(formula: str, params: dict[str, Any]) -> set[int]:
    days = {int(v) for k, v in params.items() if k.endswith("_days")}
    if formula in FIXED_WINDOWS:
        return FIXED_WINDOWS[formula] | days
    if formula in BY_PARAMETERS:
        return days
    return set(WINDOW_DAYS) | days  # a formula not listed here: every published window


def day_windows(engine: Any) -> dict[str, set[int]]:
    """Event type (``ANY``: every type) → the windows in days that some active rule reads of it."""
    out: dict[str, set[int]] = {}
    ctx = engine.context

    def add(types: Any, days: set[int]) -> None:
        for event_type in types if types is not None else (ANY,):
            out.setdefault(event_type, set()).update(days)

    # Lifecycle (always evaluated): days since the last active day against its *_days parameters.
    life = {int(v) for k, v in engine.lifecycle_params.items() if k.endswith("_days")}
    add((*ctx.active_types, *ctx.trade_types), life)
    for rule in engine.tags.values():
        if rule.kind == "builtin":
            add(engine.tag_deps.get(rule.name), formula_windows(rule.formula, rule.params))
    for node in rule_nodes(engine):
        for n in walk(node):
            if isinstance(n, EventCount | EventAbsence):
                add((n.event_type,), {_days(n.window_seconds)})
            elif isinstance(n, Compare) and n.source is Source.FEATURE:
                head, _, window = n.name.rpartition(".")
                days = window_days(window)
                if days is None:
                    continue
                if head.startswith("count."):
                    add((head[6:],), {days})
                elif head == "turnover_fen":
                    add(ctx.trade_types, {days})
    return out


def exact_windows(engine: Any, event_types: set[str]) -> set[tuple[str, int]]:
    """(event type, window seconds) of every event condition over retained events (filtered or sub-day)."""
    out = set()
    for node in rule_nodes(engine):
        for n in walk(node):
            if isinstance(n, EventCount | EventAbsence) and n.event_type in event_types:
                out.add((n.event_type, n.window_seconds))
    return out


def edge_groups(windows: dict[str, set[int]], first: int, last: int) -> list[tuple[tuple[str, ...] | None, list[int]]]:
    """(event types, or None for every type; the days whose buckets just left a window) for the boundaries
    after day ``first`` up to ``last``. Types with the same windows share one query."""
    by_days: dict[frozenset[int], list[str]] = {}
    for event_type, days in windows.items():
        if days:
            by_days.setdefault(frozenset(days), []).append(event_type)
    out = []
    for days, types in by_days.items():
        edges = sorted({d - w for d in range(first + 1, last + 1) for w in days})
        out.append((None if ANY in types else tuple(sorted(types)), edges))
    return out
