"""The names a tag or segment condition can read in svc_profile: the features it computes, the tags defined.

A condition naming a feature svc_profile never computes (``evnts_total``, ``count.fund_view.401d``) or a tag
nobody defined would never match: creating or updating a tag or segment refuses it (INVALID_ARGUMENT naming the
node, through ``Scope.names`` of svc_common.conditions). Stored definitions are loaded without this check, so a
definition saved before it still loads. Declared attributes are open-ended (the broker's systems send any
lower_snake_case name, docs/profile.md): only their form is checked (``ATTRIBUTES``).
"""

from __future__ import annotations

import functools
from collections.abc import Container, Iterable, Mapping
from types import SimpleNamespace

from svc_common.conditions import KIND_OF_TYPE, KINDS_FOR_TYPE
from svc_common.pb.qiming.common.v1 import event_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_profile import finance
from svc_profile.features import FeatureUpdater
from svc_profile.model import Days, Person, is_attribute_name

_PROBE_TRADE, _PROBE_VIEW, _PROBE_AMOUNT = "probe_trade", "probe_view", "amount_fen"


def stored_features() -> frozenset[str]:
    """The fixed features the log consumer keeps per person (``_stored_kinds``)."""
    return frozenset(_stored_kinds())


_KIND_OF_ITEM = {"t": "timestamp", "s": "string", "b": "bool", "l": "string list"}
"""A stored feature item's type letter (model.encode) → the kind of value a condition reads; else a number."""


@functools.cache
def _stored_kinds() -> dict[str, str]:
    """The fixed features the log consumer keeps per person and the kind of each, found by running
    ``FeatureUpdater`` over a trade (with an amount and a product risk level) and a trade whose amount svc_collect
    withheld: whatever it writes is what a condition can read, so a feature added there is known here without a
    list to keep in step."""
    settings = SimpleNamespace(
        day_offset_hours=0,
        trade_event_types=(_PROBE_TRADE,),
        view_event_types=(_PROBE_VIEW,),
        amount_properties=(_PROBE_AMOUNT,),
        yuan_amount_properties=(),
        event_retention_days=0,
    )
    trade = event_pb2.Event(event_id="1", event_type=_PROBE_TRADE, session_id="s", user_id="c")  # a customer's
    trade.occurred_at.FromMicroseconds(1)
    trade.properties[_PROBE_AMOUNT].money_fen_value = 1
    trade.properties["product_risk_level"].int_value = 1
    masked = event_pb2.Event(event_id="2", event_type=_PROBE_TRADE, session_id="s", masked_fields=[_PROBE_AMOUNT])
    masked.occurred_at.FromMicroseconds(2)
    docs: dict[str, dict] = {"p": {}}
    FeatureUpdater(settings).apply(docs, ["p", "p"], [trade, masked])  # type: ignore[arg-type]
    return {name: _KIND_OF_ITEM.get(item[0], "number") for name, item in docs["p"].items() if name[0] != "_"}


_MAX_CATEGORY = 32
"""``views.<category>`` keeps the category's first 32 characters, lower case (features.FeatureUpdater._view)."""


class Features(Container[str]):
    """Every feature name a person can have: the stored ones, the view families (``views.<category>``,
    ``views.fund.<fund type>``, ``risk_views.R<1-5>``) and those derived when read (``count.<event type>.<N>d``
    and ``turnover_fen.<N>d`` with N 1-400, ``fund_pref.<fund type>``), as ``model.Person.derived`` answers them."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and not self.hint(name)

    def kind(self, name: str) -> str | None:
        """The kind of value the feature holds: its first/last times are timestamps, every other feature (the
        counters, amounts, window counts and preference shares) a number; None when ``name`` is no feature."""
        if name not in self:
            return None
        return _stored_kinds().get(name, "number")

    def hint(self, name: str) -> str:
        """Why ``name`` is not a feature ("" when it is one)."""
        if name in stored_features():
            return ""
        head, _, tail = name.rpartition(".")
        if head in ("views", "views.fund"):
            if tail and tail == tail.lower() and len(tail) <= _MAX_CATEGORY:
                return ""
            return f"view counts are views.<category> in lower case, at most {_MAX_CATEGORY} characters"
        if head == "risk_views":
            return "" if tail in {f"R{n}" for n in range(1, 6)} else "risk views are risk_views.R1 to risk_views.R5"
        if head == "fund_pref":
            return "" if tail in finance.FUND_TYPES else f"fund types: {', '.join(finance.FUND_TYPES)}"
        if head.startswith("count.") or head == "turnover_fen":
            if head.startswith("count.") and not finance.EVENT_TYPE.fullmatch(head[6:]):
                return f"{head[6:]!r} is not an event type"
            probe = Person(profile_id="", clock=Days(0))  # answers a window feature it computes, None otherwise
            if probe.derived(name) is not None:
                return ""
            return "a rolling window is count.<event type>.<N>d or turnover_fen.<N>d with N from 1 to 400"
        return (
            f"features: {', '.join(sorted(stored_features()))}, count.<event type>.<N>d, turnover_fen.<N>d (N 1-400), "
            "views.<category>, views.fund.<fund type>, risk_views.R<n>, fund_pref.<fund type>"
        )


FEATURES = Features()


_FORMULA_KINDS = {
    formula: {"bool": "bool", "int": "number"}.get(kind, "string") for formula, _, kind in finance.PACK.values()
}
_VALUE_KINDS = {field: KIND_OF_TYPE[t] for t, fields in KINDS_FOR_TYPE.items() for field in fields}
"""A ``Value`` field → the kind it holds (``int_value`` is a number for every type that takes it)."""


def tag_kind(definition: pb.TagDefinition) -> str | None:
    """The kind of value a tag's definition gives its holders, from what its rule produces rather than its stored
    ``value_type`` (a definition stored before the checks of 0.2.4 may contradict it): a condition tag holds True, a
    builtin one its formula's kind, a bands tag its values' kind (None when they are of several), an external tag its
    ``value_type``'s (None when unspecified)."""
    rule = definition.WhichOneof("rule")
    if rule == "condition":
        return "bool"
    if rule == "builtin":
        return _FORMULA_KINDS.get(definition.builtin.formula)
    if rule == "bands":
        values = [band.value for band in definition.bands.bands] + [definition.bands.default_value]
        kinds = {_VALUE_KINDS.get(v.WhichOneof("kind") or "") for v in values} - {None}
        return kinds.pop() if len(kinds) == 1 else None
    return KIND_OF_TYPE.get(definition.value_type)


class AttributeNames:
    """Every name a declared attribute can have (``model.is_attribute_name``): a condition naming another never
    matches (or always, under ``NOT_EXISTS``), and one holding a NUL failed every recompute of its segment as if
    the database were down (walk, session 27)."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and is_attribute_name(name)

    def hint(self, name: str) -> str:
        return "attribute names are 1-64 characters of a-z, 0-9, '_' and '.', not starting with '_'"


ATTRIBUTES = AttributeNames()


class Names(frozenset[str]):
    """Known names, ``hint`` listing them when a name is not one of them (tags), ``kind`` the kind of value each
    holds where it is declared (a tag's ``value_type``)."""

    def __new__(cls, names: Iterable[str] = (), kinds: Mapping[str, str] | None = None) -> Names:
        made = super().__new__(cls, names)
        made._kinds = dict(kinds or {})
        return made

    def kind(self, name: str) -> str | None:
        return self._kinds.get(name)

    def hint(self, name: str) -> str:
        return f"defined: {', '.join(sorted(self)[:20])}{' ...' if len(self) > 20 else ''}" if self else "none defined"
