"""Masked reads withhold property values that were stored in clear before a schema protected them.

Protection happens once, at ingest (``protect.py``): an event stored while its type had no schema, or one that left a
property at level 1 or 2, keeps the value in its payload. When a later version raises the property to level 3+, a
masked read (``ReadEvents`` without ``unmask``: svc_profile, svc_modeling, every consumer) served those stored values
as they were (review 2026-12-07). Now a masked read applies the current protection to what it serves: such a value is
left out and its name listed in ``masked_fields``, as for an event protected at ingest. A reader allowed to unmask
sees it, as stored. At rest it stays until the event ages out or is erased (docs/collect.md, "Changing a property's
level"). A name added to the ``sensitive_properties`` setting counts from the first start that had it
(``SchemaRegistry.settle_sensitive_names``), as a schema version does from its creation.
A type whose current version this release cannot apply (``_schema_rules.unusable_schema``) has every property that
version declares withheld.

Only events received before the newest version (or setting) that began to protect a name
(``schemas.ProtectedNames``) are searched, for any of the protected names as a map key of the encoding; only an event
holding one is decoded. A consumer at the log's end pays one comparison per event.
"""

from __future__ import annotations

import dataclasses
import re

from svc_collect.protect import PSEUDONYMIZE, EventProtector, holds_pseudonym
from svc_collect.schemas import ProtectedNames, SchemaRegistry
from svc_collect.store import StoredEvent
from svc_collect.wire import varint
from svc_common.pb.qiming.common.v1 import event_pb2


class ReadMasking:
    """``apply`` to the stored events of a masked read."""

    def __init__(self, protector: EventProtector, schemas: SchemaRegistry) -> None:
        self._protector = protector
        self._schemas = schemas
        self._seen: ProtectedNames | None = None
        self._gate: re.Pattern[bytes] | None = None

    def apply(self, stored: list[StoredEvent]) -> list[StoredEvent]:
        """``stored`` with the payloads holding a value their type's current schema protects replaced by ones
        without it (the list itself when none does). Only events received before the last version that began to
        protect a name (``ProtectedNames.until_us``) are looked at: a consumer at the log's end pays a comparison."""
        protected = self._schemas.protected
        if protected is not self._seen:
            self._gate = _gate(protected.names)
            self._seen = protected
        gate, until_us = self._gate, protected.until_us
        if gate is None:
            return stored
        out = stored
        for i, event in enumerate(stored):
            if event.received_at_us > until_us or gate.search(event.payload) is None:
                continue
            payload = self._withheld(event.payload)
            if payload is not None:
                if out is stored:
                    out = list(stored)
                out[i] = dataclasses.replace(event, payload=payload)
        return out

    def _withheld(self, payload: bytes) -> bytes | None:
        event = event_pb2.Event.FromString(payload)
        modes = self._protector.modes_for(self._schemas.schema_for(event.event_type))
        properties = event.properties
        names = []
        for name in sorted(properties):
            mode = modes.get(name)
            if mode is None:
                continue
            if mode == PSEUDONYMIZE and holds_pseudonym(properties[name]):
                continue  # protected at ingest
            names.append(name)
        if not names:
            return None
        for name in names:
            del properties[name]
        event.masked_fields.extend(names)
        return event.SerializeToString()


def _gate(names: frozenset[str]) -> re.Pattern[bytes] | None:
    """A search for any of ``names`` as a properties entry's key: field 1 (0x0a), its length (a varint: 128 bytes
    take two), the name."""
    keys = [b"\x0a" + varint(len(n.encode())) + n.encode() for n in sorted(names)]
    return re.compile(b"|".join(map(re.escape, keys))) if keys else None
