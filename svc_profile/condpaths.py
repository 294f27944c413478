"""The nodes of a condition as the client sent it, each with its request path (``segment.condition.any_of.
conditions[1]``): for errors that must name the exact field, where a compiled node only has its label (the
client's ``node_id`` when set)."""

from __future__ import annotations

from collections.abc import Iterator

from svc_common.pb.qiming.common.v1 import condition_pb2


def nodes(
    condition: condition_pb2.Condition, path: str, in_filter: bool = False
) -> Iterator[tuple[str, condition_pb2.Condition, bool]]:
    """(request path, node, whether it lies inside an event filter) of every node, parents first."""
    yield path, condition, in_filter
    kind = condition.WhichOneof("node")
    if kind in ("all_of", "any_of"):
        for i, child in enumerate(getattr(condition, kind).conditions):
            yield from nodes(child, f"{path}.{kind}.conditions[{i}]", in_filter)
    elif kind == "not":
        yield from nodes(getattr(condition, "not"), f"{path}.not", in_filter)
    elif kind in ("event_count", "event_absence"):
        spec = getattr(condition, kind)
        if spec.HasField("filter"):
            yield from nodes(spec.filter, f"{path}.{kind}.filter", True)


def label(condition: condition_pb2.Condition, path: str) -> str:
    """How an error message names a node: its ``node_id`` and path, or its path."""
    return f"{condition.node_id!r} ({path})" if condition.node_id else path


def tag_reads(condition: condition_pb2.Condition, path: str) -> Iterator[tuple[str, str, str]]:
    """(tag name, request path of the field naming it, the node's label) of every tag the condition reads:
    ``has_tag``, and ``SOURCE_TAG`` / ``SOURCE_SCORE`` comparisons outside event filters."""
    read_as = (condition_pb2.FieldRef.SOURCE_TAG, condition_pb2.FieldRef.SOURCE_SCORE)
    for where, node, in_filter in nodes(condition, path):
        kind = node.WhichOneof("node")
        if kind == "has_tag":
            yield node.has_tag.tag_name, f"{where}.has_tag.tag_name", label(node, where)
        elif kind == "comparison" and not in_filter and node.comparison.field.source in read_as:
            yield node.comparison.field.name, f"{where}.comparison.field.name", label(node, where)
