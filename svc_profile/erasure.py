"""``$profile_erased``: what svc_profile tells the other services when a person is deleted (``DeleteProfile``).

One event per customer id the person had (svc_campaign keys its journeys, timers and outbox by customer id),
written to the outbox in the deletion's transaction, so the other services learn of every erasure that
happened even across a crash. The event carries no attribute or reason (the reason stays in the audit log):
only the customer id and the erased profile id. svc_profile's own consumer ignores it (it would otherwise
create a fresh profile for the id it just erased). Each is signed (``$signature``, svc_common.protection) when it
is made, so the outbox row replayed after a crash carries the same signature; svc_collect refuses, and svc_campaign
ignores, one without a valid signature (docs/profile.md, "Signed system events").
"""

from __future__ import annotations

import uuid

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection

from svc_common.ids import uuid5_text
from svc_common.pb.qiming.common.v1 import event_pb2, types_pb2
from svc_common.protection import SystemEventSigner

ERASED = "$profile_erased"
ERASED_CAUSE = "erased"
"""The ``cause`` of the ``$segment_exited`` events of an erasure (docs/profile.md)."""
ERASED_EVENT_NAMESPACE = uuid.UUID("3f0c2a5e-8d51-5b7a-a0e4-1c6b9d2f7e13")


def customer_ids(conn: Connection, identity: Table, pid: str) -> list[str]:
    """Every customer id linked to ``pid`` (``identity``: the ``profile_identity`` table)."""
    c = identity.c
    stmt = select(c.id_value).where(c.profile_id == pid, c.id_type == types_pb2.ID_TYPE_CUSTOMER)
    return sorted(conn.execute(stmt).scalars())


def erasure_events(pid: str, customers: list[str], now_us: int, signer: SystemEventSigner) -> list[event_pb2.Event]:
    """The events to publish, signed; deterministic ids, so a retried deletion publishes nothing twice."""
    out = []
    for customer in customers:
        event = event_pb2.Event(
            event_id=uuid5_text(ERASED_EVENT_NAMESPACE, f"{pid}/{customer}"),
            event_type=ERASED,
            channel=types_pb2.CHANNEL_SERVER,
            user_id=customer,
        )
        event.occurred_at.FromMicroseconds(now_us)
        event.properties["profile_id"].string_value = pid
        out.append(signer.sign(event))
    return out


__all__ = ["ERASED", "ERASED_CAUSE", "customer_ids", "erasure_events"]
