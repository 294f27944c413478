"""Validate a ``Condition`` proto and compile it into the node tree.

Every problem is an INVALID_ARGUMENT whose message names the node (its ``node_id`` when the client gave
one, else its path in the request) and whose field violation carries the exact request path, so an editor
can point at the box on the canvas. Nothing of the condition is ever executed as code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container
from dataclasses import dataclass, field

from svc_common.conditions import _values
from svc_common.conditions._tree import (
    AllOf,
    AnyOf,
    Compare,
    EventAbsence,
    EventCount,
    HasTag,
    InSegment,
    Node,
    Not,
    Op,
    Source,
)
from svc_common.errors import FieldViolation, InvalidArgument
from svc_common.pb.qiming.common.v1 import condition_pb2

REASON = "INVALID_CONDITION"
_ORDERED = (Op.GT, Op.GTE, Op.LT, Op.LTE)
_EVENT_SOURCES = frozenset({Source.EVENT_PROPERTY, Source.CONTEXT, Source.EVENT})
_PERSON_SOURCES = frozenset({Source.ATTRIBUTE, Source.FEATURE, Source.TAG, Source.SCORE})


@dataclass(frozen=True)
class Scope:
    """What a condition may refer to where it is used, and how big it may be."""

    sources: frozenset[Source] = _PERSON_SOURCES | _EVENT_SOURCES
    """Field sources allowed in comparisons (event filters always use the event sources)."""
    event_conditions: bool = True
    """``event_count`` and ``event_absence`` allowed."""
    segments: bool = True
    """``in_segment`` allowed."""
    tags: bool = True
    """``has_tag`` allowed."""
    max_depth: int = 16
    """Nesting depth of the tree, the root being depth 1."""
    max_nodes: int = 256
    """Nodes in the tree, event filters included."""
    max_values: int = 1000
    """Operands of one IN / NOT_IN."""
    max_window_seconds: int = 400 * 86_400
    """The longest window an event condition may ask for."""
    names: dict[Source, Container[str]] = field(default_factory=dict)
    """When a source is listed here, only the names ``in`` it are known (e.g. the features a profile keeps): a
    frozenset, or an object that answers ``in`` for families of names (``count.<type>.<N>d``) and may explain a
    refusal with ``hint(name) -> str``. ``Source.TAG`` also bounds the tags ``has_tag`` may name. An object with
    ``kind(name) -> str | None`` also says the kind of value a name holds (``_values.value_kind``'s words; None:
    any): a comparison with a value of another kind, which would never hold (``NE``: always), is refused."""


PROFILE_SCOPE = Scope(sources=_PERSON_SOURCES)
"""Tags and segments: about a person (attributes, features, tags, scores, event history), not one event."""
EVENT_FILTER_SCOPE = Scope(sources=_EVENT_SOURCES, event_conditions=False, segments=False, tags=False)
"""A filter on one event: its type, channel, properties and context only."""
ANY_SCOPE = Scope()
"""Campaign triggers and branches: the person and the event at hand."""


class _Compiler:
    def __init__(self, scope: Scope, root_field: str) -> None:
        self.scope = scope
        self.root_field = root_field
        self.nodes = 0

    def fail(self, condition: condition_pb2.Condition, path: str, where: str, problem: str) -> InvalidArgument:
        label = f"{condition.node_id!r} ({path})" if condition.node_id else path
        message = f"condition node {label}: {problem}"
        return InvalidArgument(message, reason=REASON, violations=[FieldViolation(where, message, REASON)])

    def node(self, condition: condition_pb2.Condition, path: str, depth: int, scope: Scope) -> Node:
        self.nodes += 1
        if self.nodes > self.scope.max_nodes:
            raise self.fail(condition, path, path, f"the condition has more than {self.scope.max_nodes} nodes")
        if depth > self.scope.max_depth:
            raise self.fail(condition, path, path, f"the condition is nested deeper than {self.scope.max_depth}")
        kind = condition.WhichOneof("node")
        label = condition.node_id or path
        if kind is None:
            raise self.fail(condition, path, path, "empty: set one of all_of, any_of, not, comparison, ...")
        if kind in ("all_of", "any_of"):
            children = getattr(condition, kind).conditions
            if not children:
                raise self.fail(condition, path, f"{path}.{kind}", f"{kind} needs at least one condition")
            compiled = tuple(
                self.node(c, f"{path}.{kind}.conditions[{i}]", depth + 1, scope) for i, c in enumerate(children)
            )
            return AllOf(compiled, label) if kind == "all_of" else AnyOf(compiled, label)
        if kind == "not":
            return Not(self.node(getattr(condition, "not"), f"{path}.not", depth + 1, scope), label)
        if kind == "comparison":
            return self.comparison(condition, path, scope, label)
        if kind in ("event_count", "event_absence"):
            return self.event(condition, kind, path, depth, scope, label)
        if kind == "in_segment":
            if not scope.segments:
                raise self.fail(condition, path, f"{path}.in_segment", "segment membership is not allowed here")
            if not condition.in_segment.segment_id:
                raise self.fail(condition, path, f"{path}.in_segment.segment_id", "segment_id is empty")
            return InSegment(condition.in_segment.segment_id, label)
        return self.has_tag(condition, path, scope, label)

    def comparison(self, condition: condition_pb2.Condition, path: str, scope: Scope, label: str) -> Compare:
        comparison = condition.comparison
        where = f"{path}.comparison"
        if comparison.field.source == condition_pb2.FieldRef.SOURCE_UNSPECIFIED:
            raise self.fail(condition, path, f"{where}.field.source", "the field's source is not set")
        try:
            source = Source(comparison.field.source)
        except ValueError:
            raise self.fail(condition, path, f"{where}.field.source", "unknown field source") from None
        if source not in scope.sources:
            allowed = ", ".join(sorted(s.name for s in scope.sources))
            raise self.fail(
                condition, path, f"{where}.field.source", f"{source.name} fields are not allowed here ({allowed})"
            )
        name = comparison.field.name
        if not name:
            raise self.fail(condition, path, f"{where}.field.name", "the field name is empty")
        known = scope.names.get(source)
        if known is not None and name not in known:
            raise self.fail(condition, path, f"{where}.field.name", _unknown(known, source, name))
        op = self._op(condition, comparison.operator, path, f"{where}.operator")
        operand, operands = self._operands(condition, op, comparison.value, comparison.values, path, where)
        self._kinds(condition, known, source, name, op, (operand, operands), path, where)
        return Compare(source, name, op, operand, operands, label)

    def _kinds(self, condition, known, source: Source, name: str, op: Op, given, path: str, where: str) -> None:
        """Refuse comparing a field whose kind of value is known with a value of another kind, or with an operator
        that never holds for that kind (the evaluation answers such a comparison false, and NE / NOT_IN true, for
        everyone: a typo'd value would silently select nobody or everybody)."""
        kind_of = getattr(known, "kind", None)
        held = kind_of(name) if kind_of is not None else None
        if held is None:
            return
        problem = kind_problem(held, op, *given)
        if problem is not None:
            at, detail = problem
            label = "tag" if source is Source.TAG and where.endswith("has_tag") else source.name.lower()
            message = f"{label} {name!r} holds {held} values: {detail}"
            raise self.fail(condition, path, f"{where}.{at}", message)

    def _op(self, condition: condition_pb2.Condition, raw: int, path: str, where: str) -> Op:
        if raw == condition_pb2.OPERATOR_UNSPECIFIED:
            raise self.fail(condition, path, where, "the operator is not set")
        try:
            return Op(raw)
        except ValueError:
            raise self.fail(condition, path, where, f"unknown operator {raw}") from None

    def _value(self, condition: condition_pb2.Condition, value: object, path: str, where: str) -> object:
        try:
            return _values.from_proto(value, where)  # type: ignore[arg-type]
        except InvalidArgument as exc:  # a timestamp out of range: named like every other bad node
            raise self.fail(condition, path, where, exc.message) from None

    def _operands(self, condition, op: Op, value, values, path: str, where: str) -> tuple[object, tuple[object, ...]]:
        operand = self._value(condition, value, path, f"{where}.value")
        operands = tuple(self._value(condition, v, path, f"{where}.values[{i}]") for i, v in enumerate(values))
        if op in (Op.EXISTS, Op.NOT_EXISTS):
            return None, ()
        if op in (Op.IN, Op.NOT_IN):
            if not operands:
                raise self.fail(condition, path, f"{where}.values", f"{op.name} needs at least one value in values")
            if len(operands) > self.scope.max_values:
                raise self.fail(condition, path, f"{where}.values", f"{op.name} takes at most {self.scope.max_values}")
            if any(v is None or isinstance(v, tuple) for v in operands):
                raise self.fail(condition, path, f"{where}.values", f"{op.name} values must be set scalars")
            return None, operands
        if op is Op.BETWEEN:
            if len(operands) != 2 or any(v is None for v in operands):
                raise self.fail(condition, path, f"{where}.values", "BETWEEN needs exactly two values: low, high")
            low, high = operands
            if not (_is_number(low) and _is_number(high)) and type(low) is not type(high):
                raise self.fail(condition, path, f"{where}.values", "BETWEEN's two values must be of one type")
            if not _orderable(low) or low > high:
                raise self.fail(condition, path, f"{where}.values", "BETWEEN needs ordered values with low <= high")
            return None, operands
        if operand is None:
            raise self.fail(condition, path, f"{where}.value", f"{op.name} needs a value")
        if op in (Op.CONTAINS, Op.STARTS_WITH) and not isinstance(operand, str):
            raise self.fail(condition, path, f"{where}.value", f"{op.name} needs a string value")
        if op in _ORDERED and not _orderable(operand):
            raise self.fail(condition, path, f"{where}.value", f"{op.name} needs a number, timestamp or string")
        return operand, ()

    def event(self, condition, kind: str, path: str, depth: int, scope: Scope, label: str) -> Node:
        where = f"{path}.{kind}"
        if not scope.event_conditions:
            raise self.fail(condition, path, where, f"{kind} is not allowed here")
        spec = getattr(condition, kind)
        if not spec.event_type:
            raise self.fail(condition, path, f"{where}.event_type", "event_type is empty")
        if spec.window_seconds <= 0:
            raise self.fail(condition, path, f"{where}.window_seconds", "window_seconds must be > 0")
        if spec.window_seconds > self.scope.max_window_seconds:
            days = self.scope.max_window_seconds // 86_400
            raise self.fail(condition, path, f"{where}.window_seconds", f"the window is longer than {days} days")
        event_filter = None
        if spec.HasField("filter"):
            event_filter = self.node(spec.filter, f"{where}.filter", depth + 1, EVENT_FILTER_SCOPE)
        if kind == "event_absence":
            return EventAbsence(spec.event_type, event_filter, spec.window_seconds, label)
        if spec.min_count < 1:
            raise self.fail(
                condition, path, f"{where}.min_count", "min_count must be >= 1 (use event_absence for none)"
            )
        if spec.max_count and spec.max_count < spec.min_count:
            raise self.fail(condition, path, f"{where}.max_count", "max_count must be 0 (no bound) or >= min_count")
        return EventCount(spec.event_type, event_filter, spec.min_count, spec.max_count, spec.window_seconds, label)

    def has_tag(self, condition: condition_pb2.Condition, path: str, scope: Scope, label: str) -> HasTag:
        spec = condition.has_tag
        where = f"{path}.has_tag"
        if not scope.tags:
            raise self.fail(condition, path, where, "tag conditions are not allowed here")
        if not spec.tag_name:
            raise self.fail(condition, path, f"{where}.tag_name", "tag_name is empty")
        known = scope.names.get(Source.TAG)
        if known is not None and spec.tag_name not in known:
            raise self.fail(condition, path, f"{where}.tag_name", _unknown(known, Source.TAG, spec.tag_name))
        if spec.operator == condition_pb2.OPERATOR_UNSPECIFIED:
            if spec.HasField("value"):
                raise self.fail(condition, path, f"{where}.operator", "a value needs an operator")
            return HasTag(spec.tag_name, None, None, label)
        op = self._op(condition, spec.operator, path, f"{where}.operator")
        if op in (Op.IN, Op.NOT_IN, Op.BETWEEN):
            raise self.fail(
                condition, path, f"{where}.operator", f"{op.name} is not available on has_tag: use a comparison"
            )
        operand, _ = self._operands(condition, op, spec.value, (), path, where)
        self._kinds(condition, known, Source.TAG, spec.tag_name, op, (operand, ()), path, where)
        return HasTag(spec.tag_name, op, operand, label)


def _unknown(known: Container[str], source: Source, name: str) -> str:
    hint = getattr(known, "hint", None)
    detail = hint(name) if hint is not None else ""
    return f"unknown {source.name.lower()} {name!r}" + (f" ({detail})" if detail else "")


def kind_problem(held: str, op: Op, operand: object, operands: tuple[object, ...]) -> tuple[str, str] | None:
    """(where under the comparison, what is wrong) when ``op`` with these values never holds for a field of kind
    ``held`` (``_values.value_kind``'s words); None when it can."""
    if op in (Op.EXISTS, Op.NOT_EXISTS):
        return None
    if held == "string list":
        if op not in (Op.EQ, Op.NE, Op.CONTAINS, Op.IN, Op.NOT_IN):
            return "operator", f"{op.name} does not apply to a string list (EQ, NE, CONTAINS, IN, NOT_IN do)"
        if op in (Op.IN, Op.NOT_IN):  # true when any element is (not) among the values: strings
            held = "string"
        elif op is Op.CONTAINS:
            return None  # one element: a string, as CONTAINS already requires
    elif op in (Op.CONTAINS, Op.STARTS_WITH) and held != "string":
        return "operator", f"{op.name} applies to strings only"
    elif op in (*_ORDERED, Op.BETWEEN) and held == "bool":
        return "operator", f"{op.name} does not apply to bool values (EQ, NE, IN, NOT_IN do)"
    several = op in (Op.IN, Op.NOT_IN, Op.BETWEEN)
    for i, value in enumerate(operands if several else (operand,)):
        kind = _values.value_kind(value)
        if kind != held:
            outcome = "holds for everyone who has the field" if op in (Op.NE, Op.NOT_IN) else "never holds"
            at = f"values[{i}]" if several else "value"
            return at, f"compare it with a {held} value, not a {kind} (with a value of another kind it {outcome})"
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _orderable(value: object) -> bool:
    return _is_number(value) or isinstance(value, str | dt.datetime)


def compile_condition(
    condition: condition_pb2.Condition, scope: Scope = ANY_SCOPE, *, field: str = "condition"
) -> Node:
    """Validate ``condition`` for ``scope`` and compile it; ``field`` is its path in the request."""
    return _Compiler(scope, field).node(condition, field, 1, scope)
