"""The built-in finance tag pack and the lifecycle rules: documented formulas with configurable parameters.

Thresholds cite the regulations they come from (docs/profile.md, "Finance tag pack"). Amounts are fen.
"""

from __future__ import annotations

import logging
import math
import re
from fractions import Fraction
from itertools import pairwise
from typing import Any

from svc_profile.features import FIRST_CUSTOMER_EVENT
from svc_profile.model import Person

log = logging.getLogger("qiming.profile")
FUND_TYPES = ("equity", "bond", "money_market", "index", "qdii", "hybrid")

DEFAULTS: dict[str, dict[str, Any]] = {
    "high_net_worth": {
        # 资管新规 (2018) / 私募投资基金监督管理暂行办法 (2014): financial assets >= 3,000,000 CNY.
        "assets_fen": 300_000_000,
        # STAR Market eligibility level (500,000 CNY) combined with high turnover.
        "active_assets_fen": 50_000_000,
        "active_turnover_90d_fen": 500_000_000,
    },
    "investor_tier": {
        # 证券期货投资者适当性管理办法 (2016) professional natural person: financial assets >= 5,000,000 CNY.
        "professional_fen": 500_000_000,
        # 资管新规 qualified investor: household financial net assets >= 3,000,000 CNY.
        "qualified_fen": 300_000_000,
        # STAR Market: average daily assets >= 500,000 CNY over 20 trading days; ChiNext: >= 100,000 CNY.
        "star_fen": 50_000_000,
        "chinext_fen": 10_000_000,
    },
    "dormant_activation_potential": {
        "window_days": 30,
        "login_weight": 30,
        "login_cap": 8,
        "quote_weight": 25,
        "quote_cap": 20,
        "fund_weight": 25,
        "fund_cap": 10,
        "deposit_weight": 20,
        "deposit_cap": 1,
        "quote_event": "quote_view",
        "fund_event": "fund_view",
        "deposit_event": "deposit_attempt",
    },
    "fund_preference": {"attention_weight": 0.5, "holding_weight": 0.5},
    "trading_frequency_tier": {"window_days": 30, "low": 1, "medium": 4, "high": 20},
    "risk_mismatch": {"view_share": 0.5, "min_views": 5},
    "lifecycle_stage": {
        "new_days": 30,
        "active_days": 30,
        "churned_days": 90,
        "reactivated_days": 30,
    },
}

PACK = {
    "fin_high_net_worth": ("high_net_worth", "High-net-worth customer", "bool"),
    "fin_investor_tier": ("investor_tier", "Investor tier by financial assets (professional/qualified/...)", "string"),
    "fin_dormant_activation": ("dormant_activation_potential", "Dormant-account activation potential 0-100", "int"),
    "fin_fund_preference": ("fund_preference", "Preferred fund type by attention and holdings", "string"),
    "fin_trading_frequency": ("trading_frequency_tier", "Trading frequency tier (none/low/medium/high)", "string"),
    "fin_risk_mismatch": ("risk_mismatch", "Behaviour shows more risk appetite than the risk rating allows", "bool"),
    "lifecycle_stage": (
        "lifecycle_stage",
        "Lifecycle stage (prospect/new/active/at_risk/churned/reactivated)",
        "string",
    ),
}
"""Tag name → (formula, description, value type) of the pack installed at start."""


EVENT_TYPE = re.compile(r"\$?[A-Za-z][A-Za-z0-9_.:\-]{0,126}")
"""An event type as svc_collect accepts it (svc_collect/validation.py, EVENT_TYPE_RE)."""
MAX_DAYS = 400
"""The longest window a parameter may name: the conditions' limit (day buckets are kept that long)."""


def _range(name: str) -> tuple[float, float]:
    """The accepted range of a numeric parameter, by its name (docs/profile.md, "Finance tag pack")."""
    if name.endswith("_days"):
        return 1, MAX_DAYS
    if name.endswith("_cap"):
        return 1, 1_000_000
    if name.endswith("_weight"):
        return 0, 100
    if name.endswith("_share"):
        return 0, 1
    if name.endswith("_fen"):
        return 0, 10**16
    if name in ("min_views", "low"):  # risk_mismatch divides by min_views; low 0 would leave no one "none"
        return 1, 1_000_000
    return 0, 1_000_000  # counts: low / medium / high


def parameter_problem(formula: str, name: str, value: Any) -> str | None:
    """Why an override cannot be used (None: it can): it must have its default's type and lie in its range,
    so a formula never fails on it (a failing formula would stop the log consumer on every batch)."""
    default = DEFAULTS[formula].get(name)
    if default is None:
        return f"unknown parameter of {formula}; one of {sorted(DEFAULTS[formula])}"
    if isinstance(default, str):
        if not isinstance(value, str) or not EVENT_TYPE.fullmatch(value):
            return f"must be an event type (a string like {default!r}), not {value!r}"
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"must be a number like {default!r}, not {value!r}"
    if isinstance(default, int) and not isinstance(value, int):
        return f"must be an integer like {default!r}, not {value!r}"
    low, high = _range(name)
    if not low <= value <= high:  # NaN fails this too
        return f"must lie in [{low:g}, {high:g}], not {value!r}"
    return None


ORDERED: dict[str, tuple[tuple[str, ...], ...]] = {
    "trading_frequency_tier": (("low", "medium", "high"),),
    "investor_tier": (("chinext_fen", "star_fen"), ("qualified_fen", "professional_fen")),
    "high_net_worth": (("active_assets_fen", "assets_fen"),),
    "lifecycle_stage": (("active_days", "churned_days"), ("new_days", "churned_days")),
}
"""Parameters that are thresholds of nested tiers, lowest first: each must be <= the next, or a tier can never be
reached or tiers overlap (e.g. low=10, medium=2 makes 2 trades "medium" and 1..9 something else)."""


def order_problem(formula: str, merged: dict[str, Any]) -> tuple[tuple[str, ...], str] | None:
    """(the parameters, why) when the thresholds of ``merged`` (defaults with overrides) do not nest, or the fund
    preference's two weights are both 0 (the tag, and every ``fund_pref.*`` feature, would never be set)."""
    if formula == "fund_preference" and merged["attention_weight"] + merged["holding_weight"] <= 0:
        return ("attention_weight", "holding_weight"), "must not both be 0: the index weighs attention and holdings"
    for names in ORDERED.get(formula, ()):
        values = [merged[n] for n in names]
        if any(a > b for a, b in pairwise(values)):
            shown = ", ".join(f"{n}={v!r}" for n, v in zip(names, values, strict=True))
            return names, f"must satisfy {' <= '.join(names)}, not {shown}"
    return None


def params(formula: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The defaults with the overrides that can be used; one that cannot (stored before it was validated) is
    left at its default and logged, so a bad stored version never stops evaluation."""
    merged = dict(DEFAULTS[formula])
    for name, value in overrides.items():
        problem = parameter_problem(formula, name, value)
        if problem:
            log.error("builtin %s: parameter %s ignored (default used): %s", formula, name, problem)
            continue
        merged[name] = value
    ordered = order_problem(formula, merged)
    if ordered:  # stored before the order was validated: the defaults, whose tiers nest
        log.error("builtin %s: parameters %s ignored (defaults used): %s", formula, ", ".join(ordered[0]), ordered[1])
        return dict(DEFAULTS[formula])
    return merged


def assets(person: Person) -> int | None:
    for name in ("financial_assets_fen", "aum_fen", "assets_fen"):
        value = person.attributes.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
    return None


def _count(person: Person, event_types: Any, days: int) -> int:
    if isinstance(event_types, str):
        return person.count_days(event_types, days * 86_400)
    return person.count_types(event_types, days)


def high_net_worth(person: Person, p: dict[str, Any], ctx: Any) -> object:
    held = assets(person)
    if held is None:
        return None
    if held >= p["assets_fen"]:
        return True
    turnover = person.derived("turnover_fen.90d") or 0
    if held >= p["active_assets_fen"] and turnover >= p["active_turnover_90d_fen"]:
        return True
    return None


def investor_tier(person: Person, p: dict[str, Any], ctx: Any) -> object:
    held = assets(person)
    if held is None:
        return None
    average = person.attributes.get("avg_daily_assets_20d_fen")
    average = int(average) if isinstance(average, int | float) and not isinstance(average, bool) else held
    if held >= p["professional_fen"]:
        return "professional"
    if held >= p["qualified_fen"]:
        return "qualified"
    if average >= p["star_fen"]:
        return "star_eligible"
    if average >= p["chinext_fen"]:
        return "chinext_eligible"
    return "retail"


def dormant_activation_potential(person: Person, p: dict[str, Any], ctx: Any) -> object:
    opened = "account_opened_at" in person.attributes or person.has_customer
    if not opened or (assets(person) or 0) > 0 or person.features.get("trade_count"):
        return None
    days = int(p["window_days"])
    parts = (
        (_count(person, ctx.login_types, days), p["login_weight"], p["login_cap"]),
        (_count(person, p["quote_event"], days), p["quote_weight"], p["quote_cap"]),
        (_count(person, p["fund_event"], days), p["fund_weight"], p["fund_cap"]),
        (_count(person, p["deposit_event"], days), p["deposit_weight"], p["deposit_cap"]),
    )
    score = min(100.0, sum(weight * min(count / cap, 1.0) for count, weight, cap in parts if cap > 0))
    if 0.5 - 1e-6 < score - math.floor(score) < 0.5:
        # A hair below a half, decided exactly: the float sum can land there for a true half (11 × 15 / 22 = 7.5 gave
        # 7.4999…, 7 until 0.2.10, with weights and caps of a tag's own; the defaults never do). An exact half, common
        # with the defaults (25 × 10 / 20), needs no more.
        exact = sum(Fraction(weight) * min(count, cap) / Fraction(cap) for count, weight, cap in parts if cap > 0)
        return math.floor(min(Fraction(100), exact) + Fraction(1, 2))
    return math.floor(score + 0.5)  # halves up (round() takes halves to even: 2.5 gave 2, 7.5 gave 8)


_VIEWS = tuple((t, f"views.fund.{t}") for t in FUND_TYPES)
_HOLDINGS = tuple((t, f"fund_holding_{t}_fen") for t in FUND_TYPES)
"""Each fund type's feature and attribute names, made once (the log consumer evaluates the index for every person
whose views changed)."""


def fund_preference_index(person: Person, p: dict[str, Any], digits: int | None = 4) -> dict[str, float]:
    """Each fund type's share of attention and holdings, weighted, rounded to ``digits`` (None: not rounded, for
    comparing them: rounded, 1,000,000 and 1,000,010 CNY held were one share, and the first type won)."""
    features, attributes = person.features, person.attributes
    views = {t: int(features.get(name) or 0) for t, name in _VIEWS}
    holdings = {}
    for t, name in _HOLDINGS:
        held = attributes.get(name)
        # A negative holding (a correction, a short position) counts as none: shares stay within 0-1.
        holdings[t] = max(int(held), 0) if isinstance(held, (int, float)) and not isinstance(held, bool) else 0
    total_views, total_held = sum(views.values()), sum(holdings.values())
    wa = float(p["attention_weight"]) if total_views else 0.0
    wh = float(p["holding_weight"]) if total_held else 0.0
    if wa + wh == 0:
        return {}
    shares = {
        t: (wa * (views[t] / total_views if total_views else 0) + wh * (holdings[t] / total_held if total_held else 0))
        / (wa + wh)
        for t in FUND_TYPES
    }
    return shares if digits is None else {t: round(share, digits) for t, share in shares.items()}


def fund_preference(person: Person, p: dict[str, Any], ctx: Any) -> object:
    index = fund_preference_index(person, p, None)
    if not index:
        return None
    best = FUND_TYPES[0]
    for t in FUND_TYPES:  # the highest share, the first of equal ones
        if index[t] > index[best]:
            best = t
    return best


def trading_frequency_tier(person: Person, p: dict[str, Any], ctx: Any) -> object:
    if not person.features.get("trade_count"):
        return None
    trades = _count(person, ctx.trade_types, int(p["window_days"]))
    if trades >= p["high"]:
        return "high"
    if trades >= p["medium"]:
        return "medium"
    if trades >= p["low"]:
        return "low"
    return "none"


def _rating(person: Person) -> int | None:
    rating = person.attributes.get("risk_rating")
    if isinstance(rating, str) and len(rating) == 2 and rating[0] in "Cc" and rating[1] in "12345":
        return int(rating[1])
    return None


def risk_mismatch(person: Person, p: dict[str, Any], ctx: Any) -> object:
    rating = _rating(person)
    if rating is None:
        return None
    traded = int(person.features.get("risk.max_traded_level") or 0)
    if traded > rating:
        return True
    views = {level: int(person.features.get(f"risk_views.R{level}") or 0) for level in range(1, 6)}
    total = sum(views.values())
    above = sum(n for level, n in views.items() if level > rating)
    if total >= p["min_views"] and above and above / total >= p["view_share"]:  # view_share 0: any view above
        return True
    return None


def lifecycle(person: Person, p: dict[str, Any], ctx: Any) -> tuple[str, str]:
    """(stage, rule) for a person now; see docs/profile.md, "Lifecycle"."""
    assert person.clock is not None
    opened_at = person.attributes.get("account_opened_at")
    opened_us = None
    if opened_at is not None and hasattr(opened_at, "timestamp"):
        opened_us = int(opened_at.timestamp() * 1_000_000)
    elif person.has_customer:
        # No opening date from the counter: the customer exists since their first event as the customer
        # (``first_customer_event_at``, 0.2.10: a device's browsing merged in at signup does not date the account, which
        # made a customer who signed up today after weeks of browsing AT_RISK at once: walk, session 27), else since we
        # first saw or created them (no event as the customer yet).
        since = person.features.get(FIRST_CUSTOMER_EVENT)
        if since is not None and hasattr(since, "timestamp"):
            opened_us = int(since.timestamp() * 1_000_000)
        else:
            opened_us = ctx.created_us(person)
            first_seen = person.features.get("first_seen_at")
            if first_seen is not None and hasattr(first_seen, "timestamp"):
                opened_us = min(opened_us, int(first_seen.timestamp() * 1_000_000))
    if opened_us is None:
        return "PROSPECT", "no_account"
    today = person.clock.of(person.now)
    last_active = None  # the last day with an active event (a loop: no generator step per bucket)
    for t in ctx.active_types:
        buckets = person.days.get(t)
        if buckets:
            for d, v in buckets.items():
                if v[0] > 0 and (last_active is None or d > last_active):
                    last_active = d
    idle = today - last_active if last_active is not None else None
    traded = bool(person.features.get("trade_count"))
    # Every age in days of the local calendar, as ``idle``: a stage changes at a day boundary, where the time sweep
    # evaluates the persons whose stage can age (measured to the microsecond, NEW ended mid-day and stayed until the
    # next boundary's sweep or event: a day late; review 2026-12-07).
    age = today - person.clock.of(opened_us)
    if age < p["new_days"] and not traded:
        return "NEW", f"opened_within_{p['new_days']}d"
    if idle is not None and idle < p["active_days"]:
        previous = person.lifecycle_stage
        if previous == "CHURNED":
            return "REACTIVATED", "active_after_churn"
        if previous == "REACTIVATED" and today - person.clock.of(person.lifecycle_since_us) < p["reactivated_days"]:
            return "REACTIVATED", "active_after_churn"
        return "ACTIVE", f"active_within_{p['active_days']}d"
    if idle is not None and idle < p["churned_days"]:
        return "AT_RISK", f"no_activity_{p['active_days']}d"
    if idle is None and age < p["churned_days"]:
        return "AT_RISK", f"no_activity_{p['active_days']}d"
    return "CHURNED", f"no_activity_{p['churned_days']}d"


FORMULAS = {
    "high_net_worth": high_net_worth,
    "investor_tier": investor_tier,
    "dormant_activation_potential": dormant_activation_potential,
    "fund_preference": fund_preference,
    "trading_frequency_tier": trading_frequency_tier,
    "risk_mismatch": risk_mismatch,
    "lifecycle_stage": lambda person, p, ctx: lifecycle(person, p, ctx)[0].lower(),
}
