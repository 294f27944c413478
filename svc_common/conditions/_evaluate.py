"""Evaluate a compiled tree against a subject: a person, one event, or both.

Semantics (documented in docs/conditions.md): a missing field makes every comparison false except
NOT_EXISTS; numbers (int, double, money in fen) compare with each other; values of different kinds never
compare equal and never order (false, not an error); a string list field is EQ to the same list and
CONTAINS / IN test its elements.
"""

from __future__ import annotations

import datetime as dt
import operator
from typing import Protocol

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
from svc_common.conditions._values import from_proto
from svc_common.pb.qiming.common.v1 import event_pb2, types_pb2


class Subject(Protocol):
    """What an evaluation asks of the thing evaluated. Services implement it over their own data."""

    def value(self, source: Source, name: str) -> object:
        """The field's value (see ``_values.from_proto`` for types), None when it has none."""

    def count_events(self, node: EventCount | EventAbsence) -> int:
        """How many ``node.event_type`` events matching ``node.filter`` fall in the window ending now."""

    def in_segment(self, segment_id: str) -> bool: ...


_ORDER = {Op.GT: operator.gt, Op.GTE: operator.ge, Op.LT: operator.lt, Op.LTE: operator.le}


def _kind(value: object) -> type:
    if isinstance(value, bool):
        return bool
    if isinstance(value, int | float):
        return float
    return type(value)


def _same_kind(a: object, b: object) -> bool:
    return _kind(a) is _kind(b) or (isinstance(a, dt.datetime) and isinstance(b, dt.datetime))


def compare(op: Op, actual: object, operand: object, operands: tuple[object, ...] = ()) -> bool:
    """``actual <op> operand`` under the semantics above."""
    if op is Op.EXISTS:
        return actual is not None
    if op is Op.NOT_EXISTS:
        return actual is None
    if actual is None:
        return False
    if isinstance(actual, tuple):
        if op is Op.EQ:
            return isinstance(operand, tuple) and actual == operand
        if op is Op.NE:
            return not (isinstance(operand, tuple) and actual == operand)
        if op is Op.CONTAINS:
            return operand in actual
        if op is Op.IN:
            return any(v in actual for v in operands)
        if op is Op.NOT_IN:
            return not any(v in actual for v in operands)
        return False
    if op is Op.EQ:
        return _same_kind(actual, operand) and actual == operand
    if op is Op.NE:
        return not (_same_kind(actual, operand) and actual == operand)
    if op is Op.IN:
        return any(_same_kind(actual, v) and actual == v for v in operands)
    if op is Op.NOT_IN:
        return not any(_same_kind(actual, v) and actual == v for v in operands)
    if op is Op.CONTAINS:
        return isinstance(actual, str) and operand in actual
    if op is Op.STARTS_WITH:
        return isinstance(actual, str) and actual.startswith(operand)
    if op is Op.BETWEEN:
        low, high = operands
        return _same_kind(actual, low) and not isinstance(actual, bool) and low <= actual <= high
    if op in _ORDER:
        return _same_kind(actual, operand) and not isinstance(actual, bool) and _ORDER[op](actual, operand)
    raise AssertionError(op)


def evaluate(node: Node, subject: Subject) -> bool:
    """Whether ``node`` holds for ``subject``. Short-circuits, so cheap children first pays off."""
    if isinstance(node, Compare):
        return compare(node.op, subject.value(node.source, node.name), node.operand, node.operands)
    if isinstance(node, AllOf):
        return all(evaluate(child, subject) for child in node.children)
    if isinstance(node, AnyOf):
        return any(evaluate(child, subject) for child in node.children)
    if isinstance(node, Not):
        return not evaluate(node.child, subject)
    if isinstance(node, EventCount):
        count = subject.count_events(node)
        return count >= node.min_count and (node.max_count == 0 or count <= node.max_count)
    if isinstance(node, EventAbsence):
        return subject.count_events(node) == 0
    if isinstance(node, InSegment):
        return subject.in_segment(node.segment_id)
    if isinstance(node, HasTag):
        held = subject.value(Source.TAG, node.tag_name)
        return held is not None and (node.op is None or compare(node.op, held, node.operand))
    raise TypeError(f"not a condition node: {node!r}")


# Top-level event fields a condition may name with SOURCE_EVENT.
EVENT_FIELDS = ("event_type", "channel", "user_id", "anonymous_id", "session_id", "occurred_at")


class EventSubject:
    """One event as a subject: SOURCE_EVENT, SOURCE_EVENT_PROPERTY and SOURCE_CONTEXT fields.

    ``channel`` reads as its enum name without the prefix, lower case (``app``, ``trading_system``).
    Event, segment and person conditions are not answerable from one event and raise ``TypeError``:
    scopes keep them out of event filters.
    """

    __slots__ = ("event",)

    def __init__(self, event: event_pb2.Event) -> None:
        self.event = event

    def value(self, source: Source, name: str) -> object:
        event = self.event
        if source is Source.EVENT_PROPERTY:
            value = event.properties.get(name)
            return None if value is None else from_proto(value)
        if source is Source.CONTEXT:
            if name not in _CONTEXT_FIELDS:
                return None
            return getattr(event.context, name) or None
        if source is Source.EVENT:
            if name == "channel":
                return types_pb2.Channel.Name(event.channel).removeprefix("CHANNEL_").lower() if event.channel else None
            if name == "occurred_at":
                return event.occurred_at.ToDatetime(tzinfo=dt.UTC) if event.HasField("occurred_at") else None
            if name in EVENT_FIELDS:
                return getattr(event, name) or None
            return None
        return None

    def count_events(self, node: EventCount | EventAbsence) -> int:
        raise TypeError("event conditions cannot be evaluated on one event")

    def in_segment(self, segment_id: str) -> bool:
        raise TypeError("segment conditions cannot be evaluated on one event")


_CONTEXT_FIELDS = frozenset(f.name for f in event_pb2.EventContext.DESCRIPTOR.fields)


def matches_event(node: Node, event: event_pb2.Event) -> bool:
    """Whether one event passes a filter compiled with ``EVENT_FILTER_SCOPE``."""
    return evaluate(node, EventSubject(event))
