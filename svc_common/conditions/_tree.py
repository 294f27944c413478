"""The compiled condition tree: immutable nodes that carry their own path for error messages.

A ``qiming.common.v1.Condition`` is compiled once (validated, operands converted) into these nodes, which
services then evaluate many times, keep in memory, or translate (to SQL, to trigger state machines).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Union


class Source(enum.Enum):
    """Where a compared field comes from (``FieldRef.Source``)."""

    ATTRIBUTE = 1
    FEATURE = 2
    TAG = 3
    EVENT_PROPERTY = 4
    SCORE = 5
    CONTEXT = 6
    EVENT = 7


class Op(enum.Enum):
    """A comparison operator (``Operator``)."""

    EQ = 1
    NE = 2
    GT = 3
    GTE = 4
    LT = 5
    LTE = 6
    IN = 7
    NOT_IN = 8
    CONTAINS = 9
    STARTS_WITH = 10
    EXISTS = 11
    NOT_EXISTS = 12
    BETWEEN = 13


@dataclass(frozen=True, slots=True)
class AllOf:
    children: tuple[Node, ...]
    path: str


@dataclass(frozen=True, slots=True)
class AnyOf:
    children: tuple[Node, ...]
    path: str


@dataclass(frozen=True, slots=True)
class Not:
    child: Node
    path: str


@dataclass(frozen=True, slots=True)
class Compare:
    """``field <op> operand`` (or ``operands`` for IN, NOT_IN and BETWEEN)."""

    source: Source
    name: str
    op: Op
    operand: object
    operands: tuple[object, ...]
    path: str


@dataclass(frozen=True, slots=True)
class EventCount:
    """At least ``min_count`` (at most ``max_count``, 0: unbounded) ``event_type`` events in the window."""

    event_type: str
    filter: Node | None
    min_count: int
    max_count: int
    window_seconds: int
    path: str


@dataclass(frozen=True, slots=True)
class EventAbsence:
    """No ``event_type`` event (matching ``filter``) within the window."""

    event_type: str
    filter: Node | None
    window_seconds: int
    path: str


@dataclass(frozen=True, slots=True)
class InSegment:
    segment_id: str
    path: str


@dataclass(frozen=True, slots=True)
class HasTag:
    """The person holds the tag; with ``op``, its value must also compare true."""

    tag_name: str
    op: Op | None
    operand: object
    path: str


Node = Union[AllOf, AnyOf, Not, Compare, EventCount, EventAbsence, InSegment, HasTag]  # noqa: UP007


def walk(node: Node):
    """Every node of the tree, parents before children, event filters included."""
    yield node
    if isinstance(node, AllOf | AnyOf):
        for child in node.children:
            yield from walk(child)
    elif isinstance(node, Not):
        yield from walk(node.child)
    elif isinstance(node, EventCount | EventAbsence) and node.filter is not None:
        yield from walk(node.filter)


@dataclass(frozen=True)
class References:
    """What a tree reads: for dependency checks (cycles between segments), and to know what to maintain."""

    fields: frozenset[tuple[Source, str]]
    """(source, name) of every compared field, event filters excluded."""
    event_windows: dict[str, int]
    """Event type → the longest window (seconds) any event condition asks of it."""
    segments: frozenset[str]
    tags: frozenset[str]


def references(node: Node) -> References:
    fields: set[tuple[Source, str]] = set()
    windows: dict[str, int] = {}
    segments: set[str] = set()
    tags: set[str] = set()
    filters: set[int] = set()
    for n in walk(node):
        if isinstance(n, EventCount | EventAbsence):
            windows[n.event_type] = max(windows.get(n.event_type, 0), n.window_seconds)
            if n.filter is not None:
                filters.update(id(f) for f in walk(n.filter))
        elif isinstance(n, Compare) and id(n) not in filters:
            fields.add((n.source, n.name))
            if n.source is Source.TAG:
                tags.add(n.name)
        elif isinstance(n, InSegment):
            segments.add(n.segment_id)
        elif isinstance(n, HasTag):
            tags.add(n.tag_name)
    return References(frozenset(fields), windows, frozenset(segments), frozenset(tags))
