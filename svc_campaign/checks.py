"""Request checks shared by the domain modules: INVALID_ARGUMENT naming the field, customer references, channels."""

from __future__ import annotations

import re

from svc_common.errors import FieldViolation, InvalidArgument
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import types_pb2

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def bad(field: str, message: str, reason: str = "") -> InvalidArgument:
    return InvalidArgument(
        f"{field}: {message}", reason=reason or None, violations=[FieldViolation(field, message, reason)]
    )


def customer_id(ref: types_pb2.UserRef, field: str = "user") -> str:
    if ref.type not in (types_pb2.ID_TYPE_UNSPECIFIED, types_pb2.ID_TYPE_CUSTOMER):
        raise bad(f"{field}.type", "campaigns address customers by customer number (ID_TYPE_CUSTOMER)")
    if not ref.value:
        raise bad(f"{field}.value", "give the customer number")
    return ref.value


def channel_ok(channel: int, field: str) -> int:
    if channel == pb.CHANNEL_TYPE_UNSPECIFIED or channel not in pb.ChannelType.values():
        raise bad(field, "choose a channel")
    return channel
