"""What an event filter can read when svc_profile answers it from the retained events (``profile_event``).

Filtered ``event_count`` / ``event_absence`` conditions and funnel step filters are answered from the compact
event rows, which keep the type, time, session, channel, ids, screen, context fields (since profile_0006) and
scalar properties of an event; not the client's IP (level 3, withheld by svc_collect). A filter on a field that
is not kept would silently never match, so it is refused at definition time instead (INVALID_ARGUMENT naming the
node), see docs/profile.md, "Event filters".
"""

from __future__ import annotations

from svc_common.conditions import EVENT_FIELDS as ALL_EVENT_FIELDS
from svc_common.errors import FieldViolation, InvalidArgument
from svc_common.pb.qiming.common.v1 import condition_pb2, event_pb2, types_pb2
from svc_profile.condpaths import label, nodes

EVENT_FIELDS = frozenset(ALL_EVENT_FIELDS)
"""``SOURCE_EVENT`` fields a retained event keeps: all that a filter can read (type, channel, ids, session, time)."""
CONTEXT_FIELDS = frozenset(f.name for f in event_pb2.EventContext.DESCRIPTOR.fields) - {"ip"}
"""``SOURCE_CONTEXT`` fields a retained event keeps: all but ``ip`` (level 3)."""
CHANNELS = frozenset(
    types_pb2.Channel.Name(number).removeprefix("CHANNEL_").lower() for number in types_pb2.Channel.values() if number
)
"""What a filter on ``channel`` compares with: the Channel names, lower case, without the prefix."""
SKIPPED_EVENTS = ("$segment_", "$profile_erased", "$message_")
"""Event types (prefixes) the log consumer skips, so neither counts nor retains: not the customer's own behaviour —
what svc_profile publishes itself (segment changes, and erasures, which must not re-create the person), and
svc_campaign's deliveries ($message_sent/_delivered/_clicked), which carry the customer id but must neither create a
person nor make a dormant customer look active."""
_KEPT = {
    condition_pb2.FieldRef.SOURCE_EVENT: ("event", EVENT_FIELDS),
    condition_pb2.FieldRef.SOURCE_CONTEXT: ("context", CONTEXT_FIELDS),
}


def check_retained(
    condition: condition_pb2.Condition, path: str, in_filter: bool = False, retention_days: int | None = None
) -> None:
    """Refuse an event filter (inside ``condition``, or ``condition`` itself when ``in_filter``) that reads a
    field the retained events do not keep, and (``retention_days``: the setting) an event window counted from the
    retained events (filtered, or not whole days) that reaches further back than they are kept. Call it on a
    condition that compiled."""
    for where, node, filtered in nodes(condition, path, in_filter):
        kind = node.WhichOneof("node")
        if retention_days is not None and kind in ("event_count", "event_absence"):
            _check_window(node, kind, where, retention_days)
            check_kept_type(getattr(node, kind).event_type, f"{where}.{kind}.event_type", label(node, where))
        if not filtered or kind != "comparison":
            continue
        field = node.comparison.field
        if field.source == condition_pb2.FieldRef.SOURCE_EVENT and field.name == "channel":
            _check_channels(node, where)
        kept = _KEPT.get(field.source)
        if kept is not None and field.name not in kept[1]:
            why = " (level 3: svc_collect withholds it)" if (kept[0], field.name) == ("context", "ip") else ""
            message = (
                f"condition node {label(node, where)}: {kept[0]} field {field.name!r} is not kept with the retained "
                f"events{why}, so this filter could never match here (kept: {', '.join(sorted(kept[1]))}, and event "
                "properties)"
            )
            raise InvalidArgument(
                message,
                reason="INVALID_CONDITION",
                violations=[FieldViolation(f"{where}.comparison.field.name", message, "INVALID_CONDITION")],
            )


PURGE_WATERMARK = "purge:profile_event"
"""The ``profile_consumer`` row that keeps the latest time the retained events were purged before (one for the table,
whatever the consumer's name): after a shorter ``event_retention_days``, what a funnel or path reads starts there, not
at the longer horizon. ``KEPT_NONE`` while the retention is 0, the time of the next start that keeps events after."""
KEPT_NONE = 1 << 62
"""The watermark while ``event_retention_days`` is 0: no event is kept."""


def check_kept_type(event_type: str, field_path: str, node: str = "") -> None:
    """Refuse an event type the log consumer skips (``SKIPPED_EVENTS``): a count of it never holds, an absence of it
    holds for everyone."""
    if not event_type.startswith(SKIPPED_EVENTS):
        return
    where = f"condition node {node}: " if node else f"{field_path}: "
    message = (
        f"{where}{event_type!r} events are not kept by svc_profile (it skips {', '.join(SKIPPED_EVENTS)}…: its own "
        "segment changes and erasures, svc_campaign's deliveries), so a condition on them could never be answered"
    )
    raise InvalidArgument(
        message, reason="INVALID_CONDITION", violations=[FieldViolation(field_path, message, "INVALID_CONDITION")]
    )


def _check_window(node: condition_pb2.Condition, kind: str, where: str, retention_days: int) -> None:
    """A window counted from the retained events that reaches past them would miss the older events without a word:
    a filtered count would read too few, an absence would hold for someone who did it (review 2026-12-07). Whole-day
    windows without a filter are counted from the day buckets, kept as long as the person."""
    spec = getattr(node, kind)
    if not spec.HasField("filter") and spec.window_seconds % 86_400 == 0:
        return
    if spec.window_seconds <= retention_days * 86_400:
        return
    why = "it has a filter" if spec.HasField("filter") else "it is not a whole number of days"
    message = (
        f"condition node {label(node, where)}: its window of {spec.window_seconds} s is counted from the retained "
        f"events ({why}), which are kept {retention_days} days (event_retention_days), so older events would be "
        f"missed: shorten it to at most {retention_days * 86_400} s, or raise event_retention_days"
    )
    raise InvalidArgument(
        message,
        reason="INVALID_CONDITION",
        violations=[FieldViolation(f"{where}.{kind}.window_seconds", message, "INVALID_CONDITION")],
    )


def _check_channels(node: condition_pb2.Condition, where: str) -> None:
    """A filter comparing ``channel`` with a name no channel has ("wechat"), or with a number (``int_value`` 99, or
    even 1: the channel is read by its name, and an unknown number would take a meaning once a later release assigns
    it), could never match: refused."""
    comparison = node.comparison
    given = [(f"{where}.comparison.value", comparison.value)] if comparison.HasField("value") else []
    given += [(f"{where}.comparison.values[{i}]", v) for i, v in enumerate(comparison.values)]
    for field_path, value in given:
        kind = value.WhichOneof("kind")
        if kind is not None and kind != "string_value":
            message = (
                f"condition node {label(node, where)}: channel is compared by its name (app, web, ...), not a {kind}, "
                "so this filter could never match"
            )
        elif kind == "string_value" and value.string_value not in CHANNELS:
            message = (
                f"condition node {label(node, where)}: {value.string_value!r} is not a channel, so this filter could "
                f"never match (channels: {', '.join(sorted(CHANNELS))})"
            )
        else:
            continue
        raise InvalidArgument(
            message,
            reason="INVALID_CONDITION",
            violations=[FieldViolation(field_path, message, "INVALID_CONDITION")],
        )
