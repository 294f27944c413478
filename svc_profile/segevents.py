"""The ``$segment_entered`` / ``$segment_exited`` events svc_profile publishes (contract with svc_campaign), signed
(``$signature``, svc_common.protection) by the outbox as it publishes them: svc_collect refuses, and svc_campaign
ignores, one without a valid signature (docs/profile.md, "Signed system events")."""

from __future__ import annotations

import uuid

from svc_common.ids import uuid5_text
from svc_common.pb.qiming.common.v1 import event_pb2, types_pb2

SEGMENT_EVENT_NAMESPACE = uuid.UUID("6d1f7c8e-2b43-5a0e-9f51-7b1c3c0a9e42")
ENTERED, EXITED = "$segment_entered", "$segment_exited"


def segment_event(
    pid: str,
    sid: str,
    version: int,
    seq: int,
    member: bool,
    now: int,
    cause: str,
    trigger: str,
    ids: tuple[str, str],
) -> event_pb2.Event:
    """The ``$segment_entered`` / ``$segment_exited`` event of one transition (contract with svc_campaign), unsigned:
    the outbox signs each event as it publishes it. ``ids``: the person's first customer id and first anonymous id
    ("" when none)."""
    event = event_pb2.Event(
        event_id=uuid5_text(SEGMENT_EVENT_NAMESPACE, f"{pid}/{sid}/{seq}"),
        event_type=ENTERED if member else EXITED,
        channel=types_pb2.CHANNEL_SERVER,
    )
    customer, anonymous = ids
    if customer:
        event.user_id = customer
    else:
        event.anonymous_id = anonymous or pid
    event.occurred_at.FromMicroseconds(now)
    props = event.properties
    props["segment_id"].string_value = sid
    props["segment_version"].int_value = version
    props["profile_id"].string_value = pid
    props["cause"].string_value = cause
    props["trigger_event_id"].string_value = trigger
    return event


__all__ = ["ENTERED", "EXITED", "SEGMENT_EVENT_NAMESPACE", "segment_event"]
