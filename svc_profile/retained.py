"""What an event filter can read when svc_profile answers it from the retained events (``profile_event``).

Filtered ``event_count`` / ``event_absence`` conditions and funnel step filters are answered from the compact
event rows, which keep the type, time, session, screen and scalar properties of an event, not its channel,
ids or other context fields. A filter on a field that is not kept would silently never match, so it is
refused at definition time instead (INVALID_ARGUMENT naming the node), see docs/profile.md, "Tags".
"""

from __future__ import annotations

from svc_common.errors import FieldViolation, InvalidArgument
from svc_common.pb.qiming.common.v1 import condition_pb2
from svc_profile.condpaths import label, nodes

EVENT_FIELDS = frozenset({"event_type", "session_id", "occurred_at"})
"""``SOURCE_EVENT`` fields a retained event keeps (``channel``, ``user_id``, ``anonymous_id`` are not kept)."""
CONTEXT_FIELDS = frozenset({"screen"})
"""``SOURCE_CONTEXT`` fields a retained event keeps."""
_KEPT = {
    condition_pb2.FieldRef.SOURCE_EVENT: ("event", EVENT_FIELDS),
    condition_pb2.FieldRef.SOURCE_CONTEXT: ("context", CONTEXT_FIELDS),
}


def check_retained(condition: condition_pb2.Condition, path: str, in_filter: bool = False) -> None:
    """Refuse an event filter (inside ``condition``, or ``condition`` itself when ``in_filter``) that reads a
    field the retained events do not keep. Call it on a condition that compiled."""
    for where, node, filtered in nodes(condition, path, in_filter):
        if not filtered or node.WhichOneof("node") != "comparison":
            continue
        field = node.comparison.field
        kept = _KEPT.get(field.source)
        if kept is not None and field.name not in kept[1]:
            message = (
                f"condition node {label(node, where)}: {kept[0]} field {field.name!r} is not kept with the retained "
                f"events, so this filter could never match here (kept: {', '.join(sorted(kept[1]))}, and event "
                "properties)"
            )
            raise InvalidArgument(
                message,
                reason="INVALID_CONDITION",
                violations=[FieldViolation(f"{where}.comparison.field.name", message, "INVALID_CONDITION")],
            )
