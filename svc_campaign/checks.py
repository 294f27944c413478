"""Request checks shared by the domain modules: INVALID_ARGUMENT naming the field, customer references, channels,
enum numbers this server knows, and strings that must fit their column."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from svc_campaign.store import tables
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
    return bounded(ref.value, f"{field}.value", "message", "user_id")


def column_limit(table: str, column: str) -> int:
    """The characters ``table.column`` holds (its ``String(n)``): what every database stores alike."""
    return int(tables[table].c[column].type.length)


def bounded(value: str, field: str, table: str, column: str, *, spare: int = 0) -> str:
    """``value`` when it fits the column ``table.column`` (less ``spare`` characters the service adds to it, a
    prefix); INVALID_ARGUMENT naming the field and the limit otherwise. SQLite would store a longer string and
    PostgreSQL refuse it: the same request gets the same answer on both."""
    limit = column_limit(table, column) - spare
    if len(value) > limit:
        raise bad(field, f"at most {limit} characters (this one has {len(value)})", "STRING_TOO_LONG")
    return value


def known(values: Iterable[int], enum: Any, field: str) -> list[int]:
    """``values`` when each is a number of ``enum`` (a protobuf enum wrapper); INVALID_ARGUMENT naming the field
    otherwise (a client built against a newer proto, a typo in a JSON request)."""
    out = list(values)
    for value in out:
        if value not in enum.values():
            raise bad(field, f"{value} is not a {enum.DESCRIPTOR.name} this server knows")
    return out


SUPPRESSION_REASONS = frozenset(
    {
        "no_consent",
        "consent_withdrawn",
        "risk_rating_unknown",
        "risk_rating_mismatch",
        "profile_unavailable",
        "content_noncompliant",
        "sensitive_placeholder",
        "unknown_template",
        "channel_cap",
        "frequency_cap_day",
        "frequency_cap_week",
        "duplicate_content",
        "quiet_hours_deferred",
        "preempted_by_priority",
        "journey_stopped",
        "customer_erased",
    }
)
"""Every ``suppression_reason`` svc_campaign writes (docs/campaign.md, "The policy gate" and after)."""


def is_service_purpose(purpose: str) -> bool:
    """A purpose is a service purpose when it is ``service`` or starts with ``service_`` (``service_notice``); every
    other purpose, the default ``marketing`` included, is marketing. The one rule for journeys and one-off sends."""
    purpose = purpose.strip().lower()
    return purpose == "service" or purpose.startswith("service_")


def service_send_ok(is_marketing: bool, purpose: str) -> None:
    """INVALID_ARGUMENT naming ``is_marketing`` for a service notice (``is_marketing = false``, the proto3 default)
    whose purpose is marketing: it would skip consent, caps, de-duplication and quiet hours and reach customers who
    opted out, though nobody chose that. ``SendMessage`` and ``CheckContact``; journeys have the same rule
    (``graph.service_send_problems``)."""
    if is_marketing or is_service_purpose(purpose):
        return
    shown = f"{purpose!r}" if purpose else "'' (the default, marketing)"
    raise bad(
        "is_marketing",
        "false (the default) makes this a service notice, which skips consent, frequency caps, de-duplication and"
        f" quiet hours and reaches customers who opted out, but its purpose {shown} is marketing: set"
        " is_marketing = true for a marketing message, or purpose = 'service' (or 'service_...') for a service notice",
        "SERVICE_SEND_IN_MARKETING_PURPOSE",
    )


def channel_ok(channel: int, field: str) -> int:
    if channel == pb.CHANNEL_TYPE_UNSPECIFIED or channel not in pb.ChannelType.values():
        raise bad(field, "choose a channel")
    return channel
