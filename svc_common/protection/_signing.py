"""Signed system events: svc_profile's ``$profile_erased``, ``$segment_entered`` and ``$segment_exited``, and
svc_campaign's ``$message_sent``, ``$message_delivered``, ``$message_clicked`` and ``$message_failed``.

Any producer may call svc_collect's ``Ingest``, so an event's type says nothing about who made it. svc_profile's
three make svc_campaign erase a customer's contact history or move them through journeys; svc_campaign's
``$message_*`` are the record of what the broker sent (svc_modeling's snapshots take ``$message_sent`` as the
treatment of a journey). The service that makes one signs it with HMAC-SM3 under a key derived from the keyring
every service shares (``pseudonym_key``, label ``system-event``), svc_collect refuses one without a valid
signature and svc_campaign acts only on one that verifies (docs/profile.md, "Signed system events";
docs/campaign.md, "Outbox, delivery and receipts"). ``$score_written`` and ``$lifecycle_changed`` are reserved
for the services and written by none in this release: no producer can sign them, so svc_collect refuses them.

What is signed (version 1, stable: changing it needs a new version prefix) is the concatenation, each part as a
4-byte big-endian length followed by its bytes, of: ``qiming/system-event/v1``, ``event_type``, ``event_id`` in
lower case, ``user_id``, ``anonymous_id``, ``occurred_at`` seconds and nanos (decimal), and then per signed
property of the type (:data:`SIGNED_PROPERTIES`, in that order) its name and either nothing (absent) or ``=``
followed by the property's ``Value`` serialized deterministically. The signature travels as the string
property ``$signature``: ``se1:`` and the MAC's 64 lowercase hex digits.
"""

from __future__ import annotations

import hmac as std_hmac

from svc_common.pb.qiming.common.v1 import event_pb2
from svc_common.protection._keys import KeyProvider
from svc_common.protection._sm import _derive, _hmac

SIGNATURE_PROPERTY = "$signature"
SIGNATURE_PREFIX = "se1:"
_DOMAIN = b"qiming/system-event/v1"
_MESSAGE_PROPERTIES = ("message_id", "channel", "template_id", "journey_id", "node_id", "experiment_id", "variant")
SIGNED_PROPERTIES: dict[str, tuple[str, ...]] = {
    "$profile_erased": ("profile_id",),
    "$segment_entered": ("segment_id", "segment_version", "profile_id", "cause", "trigger_event_id"),
    "$segment_exited": ("segment_id", "segment_version", "profile_id", "cause", "trigger_event_id"),
    "$message_sent": _MESSAGE_PROPERTIES,
    "$message_delivered": _MESSAGE_PROPERTIES,
    "$message_clicked": _MESSAGE_PROPERTIES,
    "$message_failed": _MESSAGE_PROPERTIES,
    "$score_written": (),
    "$lifecycle_changed": (),
}
"""The types that must carry a valid signature, and the properties each signature covers (besides the ids and
time): what a consumer acts on (for ``$message_*`` every property svc_campaign sets, svc_campaign/outbox.py)."""
SIGNED_EVENT_TYPES = frozenset(SIGNED_PROPERTIES)
PUBLISHERS: dict[str, str] = {
    "$profile_erased": "svc_profile",
    "$segment_entered": "svc_profile",
    "$segment_exited": "svc_profile",
    "$message_sent": "svc_campaign",
    "$message_delivered": "svc_campaign",
    "$message_clicked": "svc_campaign",
    "$message_failed": "svc_campaign",
}
"""The service that makes and signs each signed type; a signed type missing here (``$score_written``,
``$lifecycle_changed``) is made by no service in this release."""


def publisher_of(event_type: str) -> str:
    """The service that signs ``event_type`` (``svc_profile``, ``svc_campaign``), or ``""`` when none does."""
    return PUBLISHERS.get(event_type, "")


def _part(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


_HEAD = _part(_DOMAIN)
_NAMED = {kind: tuple((name, _part(name.encode())) for name in names) for kind, names in SIGNED_PROPERTIES.items()}
"""Each signed type's properties with their encoded name parts, made once (the outbox signs each event it sends)."""
_ABSENT = _part(b"")


def signed_bytes(event: event_pb2.Event) -> bytes:
    """The canonical encoding the signature covers (see the module's docstring)."""
    occurred = event.occurred_at
    parts = [
        _HEAD,
        _part(event.event_type.encode()),
        _part(event.event_id.lower().encode()),
        _part(event.user_id.encode()),
        _part(event.anonymous_id.encode()),
        _part(str(occurred.seconds).encode()),
        _part(str(occurred.nanos).encode()),
    ]
    properties = event.properties
    for name, named in _NAMED.get(event.event_type, ()):
        parts.append(named)
        held = properties.get(name)  # one look-up (``in`` then ``[]`` were two)
        parts.append(_ABSENT if held is None else _part(b"=" + held.SerializeToString(deterministic=True)))
    return b"".join(parts)


class SystemEventSigner:
    """Signs and verifies system events with a key every service derives from the shared keyring."""

    def __init__(self, keys: KeyProvider) -> None:
        self._mac = _hmac(_derive(keys.keyring().pseudonym_key, b"system-event"))

    def signature(self, event: event_pb2.Event) -> str:
        mac = self._mac.copy()
        mac.update(signed_bytes(event))
        return SIGNATURE_PREFIX + mac.finalize().hex()

    def sign(self, event: event_pb2.Event) -> event_pb2.Event:
        """Sets ``$signature`` on ``event`` (after every signed field is set) and returns it."""
        event.properties[SIGNATURE_PROPERTY].string_value = self.signature(event)
        return event

    def verify(self, event: event_pb2.Event) -> bool:
        """True when ``event`` carries a ``$signature`` made with this keyring over its current content."""
        if SIGNATURE_PROPERTY not in event.properties:
            return False
        given = event.properties[SIGNATURE_PROPERTY]
        if given.WhichOneof("kind") != "string_value" or not given.string_value.isascii():
            return False
        return std_hmac.compare_digest(given.string_value.encode(), self.signature(event).encode())


def is_signed(event: event_pb2.Event) -> bool:
    """Whether ``event`` carries a ``$signature`` at all (valid or not): to tell unsigned from forged."""
    return SIGNATURE_PROPERTY in event.properties


__all__ = [
    "PUBLISHERS",
    "SIGNATURE_PROPERTY",
    "SIGNED_EVENT_TYPES",
    "SIGNED_PROPERTIES",
    "SystemEventSigner",
    "is_signed",
    "publisher_of",
    "signed_bytes",
]
