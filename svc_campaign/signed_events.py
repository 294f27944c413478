"""Which of the log's system events svc_campaign acts on, and the signer of its own: ``$profile_erased`` and
``$segment_entered`` / ``$segment_exited`` only when svc_profile signed them, ``$message_*`` only when svc_campaign
did (svc_common.protection). Any producer may ingest an event of that name; a forged erasure would end the
customer's journeys and blank their contact history. The same signer signs the ``$message_*`` events svc_campaign
publishes (svc_campaign/publisher.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from svc_common.protection import SIGNED_EVENT_TYPES, KeyProvider, SystemEventSigner, is_signed, publisher_of

log = logging.getLogger("qiming.campaign")


class SignedEventGate:
    """Drops the system events whose signature does not verify. ``keys`` is called by :meth:`open` (at the start of
    a process that follows the log: a keyring that cannot be read fails the start) or else on the first system
    event, or the first ``$message_*`` event published."""

    def __init__(self, keys: Callable[[], KeyProvider]) -> None:
        self._keys = keys
        self._signer: SystemEventSigner | None = None
        self.skipped = 0
        """System events not acted on since start: unsigned, or a signature made with another keyring or over
        other content."""

    def open(self) -> None:
        if self._signer is None:
            self._signer = SystemEventSigner(self._keys())

    def signer(self) -> SystemEventSigner:
        """The signer of the shared keyring (read on the first call): it verifies the log's system events and signs
        the ``$message_*`` events svc_campaign publishes."""
        self.open()
        assert self._signer is not None
        return self._signer

    def verified(self, events: list[Any]) -> list[Any]:
        """``events`` less the unverified system events, each logged (id and type, nothing else) and counted."""
        if not any(e.event_type in SIGNED_EVENT_TYPES for e in events):
            return events
        signer = self.signer()
        kept = []
        for event in events:
            if event.event_type in SIGNED_EVENT_TYPES and not signer.verify(event):
                self.skipped += 1
                why = "its $signature does not verify with this keyring" if is_signed(event) else "it is unsigned"
                log.warning(
                    "system event %s %s skipped: %s; only %s's signed events are acted on (docs/campaign.md)",
                    event.event_type,
                    event.event_id,
                    why,
                    publisher_of(event.event_type) or "a service",
                    extra={"event_id": event.event_id, "event_type": event.event_type},
                )
                continue
            kept.append(event)
        return kept


__all__ = ["SignedEventGate"]
