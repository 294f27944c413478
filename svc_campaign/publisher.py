"""The event publisher: the ``$message_*`` events waiting in ``campaign_pending_event`` (written in the transaction of
their cause) go to svc_collect's log, each signed when it is sent (svc_collect refuses an unsigned one: only
svc_campaign may write them). One leaves the table only when the log ACCEPTED it or had it (DUPLICATE); a rejected
(quarantined) one stays, marked with the rejection, and is sent again later (docs/campaign.md, "Outbox, delivery
and receipts")."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Row, Table, update

from svc_campaign.store._messages import MessageStore
from svc_common.db import Database
from svc_common.pb.qiming.common.v1 import event_pb2
from svc_common.protection import SIGNED_EVENT_TYPES, SystemEventSigner
from svc_common.published import answers, rejections_in_a_row, retry_wait_seconds

log = logging.getLogger("qiming.campaign.delivery")
Offload = Callable[..., Awaitable[Any]]
UNSIGNED_REASON = "UNSIGNED_SYSTEM_EVENT"


class EventPublisher:
    """Publishes the pending $message_* events to svc_collect, deleting each once the log has it."""

    def __init__(
        self,
        database: Database,
        tables: dict[str, Table],
        client: Any,
        *,
        signer: Callable[[], SystemEventSigner],
        offload: Offload = asyncio.to_thread,
        rejected_retry_seconds: float = 60.0,
        rejected_hold_seconds: float = 86_400.0,
    ) -> None:
        self._offload = offload
        self.db = database
        self.t = tables
        self.client = client
        self.store = MessageStore(tables)
        self._signer = signer
        """The shared keyring's signer (called on the worker thread: the first call may read the keyring)."""
        self._started = False
        self.rejected_retry_seconds = rejected_retry_seconds
        """The first wait before a rejected event is sent again; it doubles with each rejection in a row."""
        self.rejected_hold = dt.timedelta(seconds=rejected_hold_seconds)
        """How long a rejected event holds back its customer's later events (``publish_rejected_hold_seconds``)."""

    def _pending(self, limit: int = 500) -> tuple[list[Row], list[event_pb2.Event]]:
        """The due rows and their events, signed. Every ``$message_*`` event is signed now, with this process's
        keyring, whatever its row holds: a row queued by the release before signing (or under a keyring since
        fixed) would otherwise be refused for ever. The payload is this service's own row; the signature covers its
        content and is deterministic, so a re-publish is still a duplicate."""
        if not self._started:
            self._retry_unsigned_now()
            self._started = True  # after it: a database error at start has it done at the next round
        with self.db.connection() as conn:
            rows = self.store.pending_events(conn, limit, dt.datetime.now(dt.UTC), self.rejected_hold)
        if not rows:
            return rows, []
        signer = self._signer()
        events = [event_pb2.Event.FromString(row.payload) for row in rows]
        for event in events:
            if event.event_type in SIGNED_EVENT_TYPES:
                signer.sign(event)
        return rows, events

    def _retry_unsigned_now(self) -> None:
        """At start: the events svc_collect refused as unsigned (an upgraded svc_collect before this svc_campaign
        was upgraded) are due at once, signed now, rather than at their retry time (up to an hour away) while each
        holds back its customer's later events."""
        p = self.t["pending_event"]
        with self.db.connection(write=True) as conn:
            healed = conn.execute(
                update(p).where(p.c.rejected_reason == UNSIGNED_REASON, p.c.retry_at.is_not(None)).values(retry_at=None)
            ).rowcount
        if healed:
            log.info("%d $message_* event(s) svc_collect refused as unsigned are sent again now, signed", healed)

    def _done(self, ids: list[str], rejections: list[dict[str, Any]]) -> None:
        with self.db.connection(write=True) as conn:
            self.store.published(conn, ids)
            self.store.rejected(conn, rejections)

    async def run_once(self) -> int:
        """One batch; returns how many events were answered (sent or rejected: a rejected one waits its retry)."""
        pending, events = await self._offload(self._pending)
        if not pending:
            return 0
        reply = await self.client.publish(events)  # deterministic ids: a retry after a lost answer is a duplicate
        sent, rejections = self._sort(pending, events, reply, dt.datetime.now(dt.UTC))
        await self._offload(self._done, sent, rejections)
        return len(pending)

    def _sort(
        self, pending: list[Row], events: list[event_pb2.Event], reply: Any, now: dt.datetime
    ) -> tuple[list[str], list[dict[str, Any]]]:
        sent: list[str] = []
        rejections: list[dict[str, Any]] = []
        for row, event, refusal in zip(pending, events, answers(reply, len(events)), strict=True):
            if refusal is None:
                sent.append(row.event_id)
                if row.rejected_reason is not None:
                    log.info("%s event %s sent after %d rejection(s)", event.event_type, event.event_id, row.rejections)
                continue
            count = rejections_in_a_row(row.rejected_reason, row.rejections, refusal)
            wait = retry_wait_seconds(self.rejected_retry_seconds, count)
            log.log(
                logging.ERROR if count == 1 else logging.DEBUG,  # once per episode: a new or changed reason
                "svc_collect rejected event %s (%s): %s: %s; quarantine id %s; kept pending, retried in %.0f s",
                event.event_id,
                event.event_type,
                refusal.reason,
                refusal.message,
                refusal.quarantine_id or "none",
                wait,
            )
            began = row.rejected_at if count > 1 and row.rejected_at is not None else now
            rejections.append(
                {
                    "event_id": row.event_id,
                    "rejected_reason": refusal.reason,
                    "rejected_message": refusal.message[:500],
                    "rejected_quarantine_id": refusal.quarantine_id[:36],
                    "rejected_at": began,
                    "rejections": count,
                    "retry_at": now + dt.timedelta(seconds=wait),
                }
            )
        return sent, rejections


__all__ = ["EventPublisher"]
