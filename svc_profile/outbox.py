"""The outbox publisher: segment changes and erasures queued in ``profile_outbox`` (in the transaction of the change)
are sent to svc_collect after commit. A row counts as sent only when svc_collect ACCEPTED its event or already had
it (DUPLICATE); a rejected row stays unsent, marked with the rejection, and is retried later (docs/profile.md,
"Transactional outbox")."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import errors_pb2, event_pb2
from svc_common.protection import SIGNED_EVENT_TYPES
from svc_profile.core import Core
from svc_profile.model import now_us
from svc_profile.store import _outbox
from svc_profile.store._outbox import OutboxRow, Rejection

log = logging.getLogger("qiming.profile")
RETRY_MAX_SECONDS = 3_600.0
"""The longest wait before a rejected row is sent again (the wait doubles from ``outbox_rejected_retry_seconds``)."""
_SENT = frozenset({collect_pb2.EVENT_STATUS_ACCEPTED, collect_pb2.EVENT_STATUS_DUPLICATE})


class OutboxPublisher:
    """Publishes queued events to svc_collect after their transaction committed and marks the ones the log took
    as sent. Event ids are deterministic, so a re-publish after a crash is absorbed by the log."""

    def __init__(self, core: Core, client: Any) -> None:
        self.core = core
        self.client = client
        self.wake = asyncio.Event()
        self.published = 0
        self.rejected = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def notify(self) -> None:
        """Thread-safe: a write committed that may have queued events."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        while True:
            try:
                handled = await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("publishing segment changes failed; retrying")
                await asyncio.sleep(1.0)
                continue
            if not handled:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=1.0)

    async def drain(self) -> int:
        """Publishes one batch of due rows; returns how many were answered (sent or rejected)."""
        t = self.core.store.t["outbox"]
        with self.core.database.connection() as conn:
            rows = _outbox.due(conn, t, now_us(), self.core.settings.outbox_batch)
        if not rows:
            return 0
        events = [event_pb2.Event.FromString(row.body) for row in rows]
        for event in events:
            if event.event_type in SIGNED_EVENT_TYPES:
                # Signed now, with this process's keyring, whatever the row holds: a row queued unsigned (the
                # release before signing) or under a wrong keyring (a host installed without the shared keyring
                # file, fixed since) would otherwise be refused for ever. The body is this service's own database
                # row; the signature covers its content (docs/profile.md, "Signed system events").
                self.core.signer.sign(event)
        reply = await self.client.publish(events)
        now = now_us()
        sent, rejections = self._sort(rows, events, reply, now)
        with self.core.database.connection(write=True) as conn:
            _outbox.mark_sent(conn, t, sent, now)
            _outbox.mark_rejected(conn, t, rejections)
        self.published += len(sent)
        self.rejected += len(rejections)
        return len(rows)

    def _sort(
        self, rows: list[OutboxRow], events: list[event_pb2.Event], reply: Any, now: int
    ) -> tuple[list[int], list[Rejection]]:
        """The ids of the rows the log took, and the rejections of the others (each logged once per episode)."""
        results = {r.index: r for r in getattr(reply, "results", ())}
        sent: list[int] = []
        rejections: list[Rejection] = []
        first_wait = self.core.settings.outbox_rejected_retry_seconds
        for i, (row, event) in enumerate(zip(rows, events, strict=True)):
            result = results.get(i)
            if result is not None and result.status in _SENT:
                sent.append(row.outbox_id)
                if row.rejected_reason is not None:
                    log.info(
                        "outbox event %s (%s) sent after %d rejection(s)",
                        event.event_id,
                        event.event_type,
                        row.rejections,
                    )
                continue
            if result is None:
                reason, message, quarantine_id = "NO_RESULT", "svc_collect's answer has no result for it", ""
            else:
                reason = _reason_name(result.reason)
                message, quarantine_id = result.message, result.quarantine_id
            count = row.rejections + 1 if row.rejected_reason == reason else 1
            wait = min(RETRY_MAX_SECONDS, first_wait * 2 ** min(count - 1, 20))
            level = logging.ERROR if count == 1 else logging.DEBUG  # once per episode: a new or changed reason
            log.log(
                level,
                "svc_collect rejected outbox event %s (%s): %s: %s; quarantine id %s; kept unsent, retried in %.0f s",
                event.event_id,
                event.event_type,
                reason,
                message,
                quarantine_id or "none",
                wait,
            )
            began = row.rejected_us if count > 1 and row.rejected_us is not None else now
            retry = now + int(wait * 1_000_000)
            rejections.append(Rejection(row.outbox_id, reason, message, quarantine_id, count, began, retry))
        return sent, rejections


def _reason_name(value: int) -> str:
    try:
        name = errors_pb2.ErrorReason.Name(value) if value else "UNSPECIFIED"
    except ValueError:  # a reason newer than this release
        return str(value)
    return name.removeprefix("ERROR_REASON_")


__all__ = ["RETRY_MAX_SECONDS", "OutboxPublisher"]
