"""The shared condition tree of tags, segments, triggers and journey branches: compile, then evaluate.

``compile_condition`` validates a ``qiming.common.v1.Condition`` for a scope (INVALID_ARGUMENT naming the
bad node) and returns immutable nodes; ``evaluate`` answers it for any ``Subject``. See docs/conditions.md.
"""

from svc_common.conditions._compile import (
    ANY_SCOPE,
    EVENT_FILTER_SCOPE,
    PROFILE_SCOPE,
    REASON,
    Scope,
    compile_condition,
    kind_problem,
)
from svc_common.conditions._evaluate import EVENT_FIELDS, EventSubject, Subject, compare, evaluate, matches_event
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
    References,
    Source,
    references,
    walk,
)
from svc_common.conditions._values import KIND_OF_TYPE, KINDS_FOR_TYPE, Money, from_proto, to_proto, value_kind

__all__ = [
    "ANY_SCOPE",
    "EVENT_FIELDS",
    "EVENT_FILTER_SCOPE",
    "KINDS_FOR_TYPE",
    "KIND_OF_TYPE",
    "PROFILE_SCOPE",
    "REASON",
    "AllOf",
    "AnyOf",
    "Compare",
    "EventAbsence",
    "EventCount",
    "EventSubject",
    "HasTag",
    "InSegment",
    "Money",
    "Node",
    "Not",
    "Op",
    "References",
    "Scope",
    "Source",
    "Subject",
    "compare",
    "compile_condition",
    "evaluate",
    "from_proto",
    "kind_problem",
    "matches_event",
    "references",
    "to_proto",
    "value_kind",
    "walk",
]
