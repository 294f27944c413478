"""``qiming.common.v1.Value`` to and from plain Python values, the form conditions compare."""

from __future__ import annotations

import datetime as dt

from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.timestamps import timestamp_datetime

UTC = dt.UTC


# Which Value kinds a declared value type accepts (an int is a fine double or amount): event schemas in svc_collect,
# tag values in svc_profile.
KINDS_FOR_TYPE: dict[int, frozenset[str]] = {
    types_pb2.VALUE_TYPE_STRING: frozenset({"string_value"}),
    types_pb2.VALUE_TYPE_INT: frozenset({"int_value"}),
    types_pb2.VALUE_TYPE_DOUBLE: frozenset({"double_value", "int_value"}),
    types_pb2.VALUE_TYPE_BOOL: frozenset({"bool_value"}),
    types_pb2.VALUE_TYPE_TIMESTAMP: frozenset({"timestamp_value"}),
    types_pb2.VALUE_TYPE_STRING_LIST: frozenset({"string_list_value"}),
    types_pb2.VALUE_TYPE_MONEY_FEN: frozenset({"money_fen_value", "int_value"}),
}


# The kind of value a field of a declared value type holds, as a comparison sees it (numbers compare across int,
# double and money): a condition comparing such a field with a value of another kind is refused at definition.
KIND_OF_TYPE: dict[int, str] = {
    types_pb2.VALUE_TYPE_STRING: "string",
    types_pb2.VALUE_TYPE_INT: "number",
    types_pb2.VALUE_TYPE_DOUBLE: "number",
    types_pb2.VALUE_TYPE_MONEY_FEN: "number",
    types_pb2.VALUE_TYPE_BOOL: "bool",
    types_pb2.VALUE_TYPE_TIMESTAMP: "timestamp",
    types_pb2.VALUE_TYPE_STRING_LIST: "string list",
}


def value_kind(value: object) -> str:
    """The kind of a Python value of :func:`from_proto`: number, string, bool, timestamp or string list."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dt.datetime):
        return "timestamp"
    return "string list"


class Money(int):
    """An amount in fen (0.01 CNY). An ``int`` for every comparison; the type only survives a round trip."""

    __slots__ = ()


def from_proto(value: types_pb2.Value, field: str = "value") -> object:
    """The Python value of ``value``: str, int, float, bool, aware datetime, tuple of str, Money; None if unset.
    A timestamp out of range is INVALID_ARGUMENT naming ``field`` (``svc_common.timestamps``), not a ValueError."""
    kind = value.WhichOneof("kind")
    if kind is None:
        return None
    if kind == "timestamp_value":
        return timestamp_datetime(value.timestamp_value, field)
    if kind == "string_list_value":
        return tuple(value.string_list_value.values)
    if kind == "money_fen_value":
        return Money(value.money_fen_value)
    return getattr(value, kind)


def to_proto(value: object) -> types_pb2.Value:
    """The ``Value`` of a Python value (the inverse of :func:`from_proto`); None gives an unset Value."""
    out = types_pb2.Value()
    if value is None:
        return out
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, Money):
        out.money_fen_value = int(value)
    elif isinstance(value, int):
        out.int_value = value
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, dt.datetime):
        out.timestamp_value.FromDatetime(value if value.tzinfo else value.replace(tzinfo=UTC))
    elif isinstance(value, list | tuple | set | frozenset):
        out.string_list_value.values.extend(str(v) for v in value)
    else:
        raise TypeError(f"no Value for {type(value).__name__}")
    return out
