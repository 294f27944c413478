"""The outbox publisher: segment changes and erasures queued in ``profile_outbox`` (in the transaction of the change)
are sent to svc_collect after commit. A row counts as sent only when svc_collect ACCEPTED its event or already had
it (DUPLICATE); a rejected row stays unsent, marked with the rejection, and is retried later (docs/profile.md,
"Transactional outbox")."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from svc_common.pb.qiming.common.v1 import event_pb2
from svc_common.protection import SIGNED_EVENT_TYPES
from svc_common.published import answers, rejections_in_a_row, retry_wait_seconds
from svc_profile.core import Core
from svc_profile.model import now_us
from svc_profile.store import _outbox
from svc_profile.store._outbox import OutboxRow, Rejection

log = logging.getLogger("qiming.profile")
PURGE_INTERVAL_SECONDS = 600.0
"""How often an idle publisher deletes the rows sent longer ago than ``outbox_sent_retention_seconds``."""


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
        purged_at = 0.0
        while True:
            try:
                handled = await self.drain()
                if not handled and time.monotonic() - purged_at >= PURGE_INTERVAL_SECONDS:
                    purged_at = time.monotonic()
                    await asyncio.to_thread(self.purge, now_us())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("publishing segment changes failed; retrying")
                await asyncio.sleep(1.0)
                continue
            if not handled:
                self.wake.clear()
                # asyncio.timeout, not wait_for: Python 3.11's wait_for can turn a cancellation that meets its own
                # timeout into TimeoutError (suppressed here), and the loop then outlived the service's stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self.wake.wait()

    async def drain(self) -> int:
        """Publishes one batch of due rows; returns how many were answered (sent or rejected)."""
        # The database on a worker thread: a write lock held by another writer (up to the busy timeout) must not
        # stall the event loop that serves every call.
        rows = await asyncio.to_thread(self._due, now_us())
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
        await asyncio.to_thread(self._mark, sent, rejections, now)
        self.published += len(sent)
        self.rejected += len(rejections)
        return len(rows)

    def _due(self, now: int) -> list[OutboxRow]:
        settings = self.core.settings
        hold_us = int(settings.outbox_rejected_hold_seconds * 1_000_000)
        with self.core.database.connection() as conn:
            return _outbox.due(conn, self.core.store.t["outbox"], now, settings.outbox_batch, hold_us)

    def purge(self, now: int) -> int:
        """Delete the rows sent more than ``outbox_sent_retention_seconds`` ago (in steps); returns how many."""
        before = now - int(self.core.settings.outbox_sent_retention_seconds * 1_000_000)
        total = 0
        while True:
            with self.core.database.connection(write=True) as conn:
                deleted = _outbox.purge_sent(conn, self.core.store.t["outbox"], before)
            total += deleted
            if deleted < _outbox.PURGE_STEP_ROWS:
                return total

    def _mark(self, sent: list[int], rejections: list[Rejection], now: int) -> None:
        t = self.core.store.t["outbox"]
        with self.core.database.connection(write=True) as conn:
            _outbox.mark_sent(conn, t, sent, now)
            _outbox.mark_rejected(conn, t, rejections)

    def _sort(
        self, rows: list[OutboxRow], events: list[event_pb2.Event], reply: Any, now: int
    ) -> tuple[list[int], list[Rejection]]:
        """The ids of the rows the log took, and the rejections of the others (each logged once per episode)."""
        sent: list[int] = []
        rejections: list[Rejection] = []
        first_wait = self.core.settings.outbox_rejected_retry_seconds
        for row, event, refusal in zip(rows, events, answers(reply, len(events)), strict=True):
            if refusal is None:
                sent.append(row.outbox_id)
                if row.rejected_reason is not None:
                    log.info(
                        "outbox event %s (%s) sent after %d rejection(s)",
                        event.event_id,
                        event.event_type,
                        row.rejections,
                    )
                continue
            count = rejections_in_a_row(row.rejected_reason, row.rejections, refusal)
            wait = retry_wait_seconds(first_wait, count)
            log.log(
                logging.ERROR if count == 1 else logging.DEBUG,  # once per episode: a new or changed reason
                "svc_collect rejected outbox event %s (%s): %s: %s; quarantine id %s; kept unsent, retried in %.0f s",
                event.event_id,
                event.event_type,
                refusal.reason,
                refusal.message,
                refusal.quarantine_id or "none",
                wait,
            )
            began = row.rejected_us if count > 1 and row.rejected_us is not None else now
            retry = now + int(wait * 1_000_000)
            rejections.append(
                Rejection(row.outbox_id, refusal.reason, refusal.message, refusal.quarantine_id, count, began, retry)
            )
        return sent, rejections


__all__ = ["OutboxPublisher"]
