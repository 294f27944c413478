"""Compiled definitions as the engine evaluates them: tag and segment rules, what a rule reads, and the
context formulas need (split from ``engine``, which re-exports them)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from svc_common.conditions import Node, References, Source
from svc_common.conditions import from_proto as value_from_proto
from svc_common.conditions import references as condition_references
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_profile import finance
from svc_profile.config import ProfileSettings
from svc_profile.model import Person


@dataclass(frozen=True)
class TagRule:
    name: str
    version: int
    kind: str  # condition | bands | external | builtin
    node: Node | None = None
    bands: tuple[tuple[object, Node], ...] = ()
    default: object = None
    formula: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    refs: tuple[References, ...] = ()
    sensitive: bool = False
    """Sensitivity level 3+ (JR/T 0158): the value is sealed at rest and masked on read."""


@dataclass(frozen=True)
class SegmentRule:
    segment_id: str
    version: int
    node: Node | None  # None: a static list
    refs: References | None


def expiry_type(tag_name: str) -> str:
    """The pseudo event type of a written tag's value expiring: the readers of an external tag depend on it, and
    the time sweep gives it to the persons whose value of that tag just expired (no event carries it)."""
    return f"~tag:{tag_name}"


def references(node: Node) -> References:
    """What a rule reads, a score (``SOURCE_SCORE``: a written tag's value) counted as a read of that tag, so
    that a write of the score, the rule order and the cycle checks all see it."""
    refs = condition_references(node)
    scores = {name for source, name in refs.fields if source is Source.SCORE}
    return replace(refs, tags=refs.tags | scores) if scores - refs.tags else refs


def tag_rule_from_proto(definition: Any, node_of: Any) -> TagRule:
    """A TagRule from a stored TagDefinition; ``node_of(condition, path)`` compiles a condition."""
    rule = _rule(definition, node_of)
    return replace(rule, sensitive=True) if definition.sensitivity >= types_pb2.SENSITIVITY_LEVEL_3 else rule


def _rule(definition: Any, node_of: Any) -> TagRule:
    kind = definition.WhichOneof("rule")
    if kind == "condition":
        node = node_of(definition.condition, "definition.condition")
        return TagRule(definition.name, definition.version, kind, node=node, refs=(references(node),))
    if kind == "bands":
        bands = tuple(
            (value_from_proto(b.value), node_of(b.condition, f"definition.bands.bands[{i}].condition"))
            for i, b in enumerate(definition.bands.bands)
        )
        default = (
            value_from_proto(definition.bands.default_value) if definition.bands.HasField("default_value") else None
        )
        return TagRule(
            definition.name,
            definition.version,
            kind,
            bands=bands,
            default=default,
            refs=tuple(references(n) for _, n in bands),
        )
    if kind == "builtin":
        formula = definition.builtin.formula
        overrides = {k: value_from_proto(v) for k, v in definition.builtin.parameters.items()}
        return TagRule(
            definition.name, definition.version, kind, formula=formula, params=finance.params(formula, overrides)
        )
    return TagRule(definition.name, definition.version, "external")


class Context:
    """What formulas need beyond the person: configured event types."""

    def __init__(self, settings: ProfileSettings) -> None:
        self.login_types = tuple(settings.login_event_types)
        self.trade_types = tuple(settings.trade_event_types)
        self.active_types = tuple(settings.active_event_types)

    def created_us(self, person: Person) -> int:
        # On the person, not in a dict here: one context serves the process, and a dict of every profile ever
        # evaluated grew without bound (an entry for every profile a recompute touched; review 2026-12-07).
        return person.created_us if person.created_us is not None else person.now


__all__ = ["Context", "SegmentRule", "TagRule", "expiry_type", "references", "tag_rule_from_proto"]
