"""The event publisher: the ``$message_*`` events waiting in ``campaign_pending_event`` (written in the transaction of
their cause) go to svc_collect's log. One leaves the table only when the log ACCEPTED it or had it (DUPLICATE); a
rejected (quarantined) one stays, marked with the rejection, and is sent again later (docs/campaign.md, "Events to
the log")."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Row, Table

from svc_campaign.store._messages import MessageStore
from svc_common.db import Database
from svc_common.pb.qiming.common.v1 import event_pb2
from svc_common.published import answers, rejections_in_a_row, retry_wait_seconds

log = logging.getLogger("qiming.campaign.delivery")
Offload = Callable[..., Awaitable[Any]]


class EventPublisher:
    """Publishes the pending $message_* events to svc_collect, deleting each once the log has it."""

    def __init__(
        self,
        database: Database,
        tables: dict[str, Table],
        client: Any,
        *,
        offload: Offload = asyncio.to_thread,
        rejected_retry_seconds: float = 60.0,
        rejected_hold_seconds: float = 86_400.0,
    ) -> None:
        self._offload = offload
        self.db = database
        self.t = tables
        self.client = client
        self.store = MessageStore(tables)
        self.rejected_retry_seconds = rejected_retry_seconds
        """The first wait before a rejected event is sent again; it doubles with each rejection in a row."""
        self.rejected_hold = dt.timedelta(seconds=rejected_hold_seconds)
        """How long a rejected event holds back its customer's later events (``publish_rejected_hold_seconds``)."""

    def _pending(self, limit: int = 500) -> list[Row]:
        with self.db.connection() as conn:
            return self.store.pending_events(conn, limit, dt.datetime.now(dt.UTC), self.rejected_hold)

    def _done(self, ids: list[str], rejections: list[dict[str, Any]]) -> None:
        with self.db.connection(write=True) as conn:
            self.store.published(conn, ids)
            self.store.rejected(conn, rejections)

    async def run_once(self) -> int:
        """One batch; returns how many events were answered (sent or rejected: a rejected one waits its retry)."""
        pending = await self._offload(self._pending)
        if not pending:
            return 0
        events = [event_pb2.Event.FromString(row.payload) for row in pending]
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
