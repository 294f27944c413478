"""Channel delivery: the dispatcher claims due messages from the outbox, hands them to the gateway adapter
with their idempotency key, and records SENT, a retry (exponential backoff with jitter) or FAILED; receipts
come back through ``ReportDeliveryReceipt``. The event publisher (svc_campaign/publisher.py) sends $message_*
events to svc_collect.

Adapter contract (HTTP webhook): ``POST <gateway_url>`` with a JSON body (message id, customer, channel,
title, body, link, journey, experiment) and the header ``Idempotency-Key``. 2xx: accepted (a JSON answer
may carry ``gateway_message_id``); 408, 429 and 5xx or no answer: retried; any other 4xx: FAILED at once.

At the claim, before anything goes to a gateway, each due row is judged again as it stands now: a message of a
journey that is no longer running or paused, or one whose cancel was requested while it was at the gateway, is
suppressed; a marketing message whose customer withdrew consent is suppressed; a marketing message on a channel
inside its quiet hours now (a retry, a held message, a backlog) is DEFERRED to their end. An adapter may name
the ``channels`` it serves (``ChannelRouter``): rows of other channels are not claimed and stay QUEUED.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from sqlalchemy import Table

from svc_campaign.clock import Clock
from svc_campaign.config import CampaignSettings
from svc_campaign.outbox import CANCEL_REASONS, UNSENT, message_event, queue_event
from svc_campaign.policy import PolicyCache, consent_allows, quiet_until
from svc_campaign.store._journeys import JourneyStore
from svc_campaign.store._messages import MessageStore
from svc_common.db import Database
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb

Offload = Callable[..., Awaitable[Any]]
"""Runs a blocking call off the event loop: ``asyncio.to_thread``, or the service's loop threads."""

log = logging.getLogger("qiming.campaign.delivery")
FAILING_WARNING_SECONDS = 60.0


@dataclass(frozen=True)
class Outcome:
    ok: bool
    retryable: bool = False
    gateway_message_id: str = ""
    error: str = ""
    not_configured: bool = False
    """No gateway serves the message's channel: it goes back to the outbox QUEUED, no attempt counted."""


class ChannelAdapter(Protocol):
    """Optionally also ``channels``: the channel numbers it serves (None or absent: every channel)."""

    async def deliver(self, message: dict[str, Any]) -> Outcome: ...

    async def close(self) -> None: ...


class WebhookAdapter:
    def __init__(self, url: str, timeout_seconds: float) -> None:
        self.url = url
        self._client = httpx.AsyncClient(timeout=timeout_seconds)

    async def close(self) -> None:
        await self._client.aclose()

    async def deliver(self, message: dict[str, Any]) -> Outcome:
        body = {
            "message_id": message["message_id"],
            "idempotency_key": message["idempotency_key"],
            "customer_id": message["user_id"],
            "channel": pb.ChannelType.Name(message["channel"]).removeprefix("CHANNEL_TYPE_").lower(),
            "title": message["title"],
            "body": message["body"],
            "link": message["link"],
            "template_id": message["template_id"],
            "journey_id": message["journey_id"],
            "experiment_id": message["experiment_id"],
            "variant": message["variant"],
            "is_marketing": message["is_marketing"],
        }
        try:
            answer = await self._client.post(
                self.url, json=body, headers={"Idempotency-Key": message["idempotency_key"]}
            )
        except httpx.HTTPError as exc:
            return Outcome(False, retryable=True, error=f"{type(exc).__name__}: {exc}"[:500])
        if answer.is_success:
            gateway_id = ""
            try:
                data = answer.json()
                gateway_id = str(data.get("gateway_message_id", "")) if isinstance(data, dict) else ""
            except ValueError:
                pass
            return Outcome(True, gateway_message_id=gateway_id)
        retryable = answer.status_code in (408, 425, 429) or answer.status_code >= 500
        return Outcome(False, retryable=retryable, error=f"HTTP {answer.status_code}: {answer.text[:200]}")


class Dispatcher:
    def __init__(
        self,
        database: Database,
        tables: dict[str, Table],
        clock: Clock,
        adapter: ChannelAdapter,
        settings: CampaignSettings,
        held: Any,
        *,
        offload: Offload = asyncio.to_thread,
    ) -> None:
        self._offload = offload  # where the blocking database calls run (the service's loop threads)
        self.db = database
        self.t = tables
        self.clock = clock
        self.adapter = adapter
        self.settings = settings
        self._held = held  # () -> set of paused journey ids
        self.store = MessageStore(tables)
        self.journey_store = JourneyStore(tables)
        self._policies = PolicyCache(tables["policy"], settings.journey_refresh_seconds)
        self.delivered = 0
        self._failing_warned_at = -FAILING_WARNING_SECONDS

    def _warn_if_failing(self, results: list[tuple[dict[str, Any], Outcome]]) -> None:
        """A WARNING at most every FAILING_WARNING_SECONDS while deliveries fail and are retried: a gateway that is
        down is otherwise silent until messages start to fail for good, tens of minutes later."""
        failed = [outcome for _, outcome in results if not outcome.ok and outcome.retryable]
        now = time.monotonic()
        if not failed or now - self._failing_warned_at < FAILING_WARNING_SECONDS:
            return
        self._failing_warned_at = now
        log.warning(
            "channel gateway failing: %d of %d deliveries of this round failed (last: %s); retried with backoff, "
            "FAILED after delivery_max_attempts = %d",
            len(failed),
            len(results),
            failed[-1].error[:200],
            self.settings.delivery_max_attempts,
        )

    def claim(self) -> list[dict[str, Any]]:
        now = self.clock.now()
        paused = self._held()
        served = getattr(self.adapter, "channels", None)
        if served is not None and not served:
            return []
        with self.db.connection(write=True) as conn:
            rows = self.store.due(conn, now, self.settings.delivery_batch_size, paused, served)
            rows = self._drop_cancelled(conn, rows)
            rows = self._drop_withdrawn(conn, rows)
            rows = self._defer_quiet(conn, rows, now)
            if rows:
                lease = now + dt.timedelta(seconds=self.settings.delivery_lease_seconds)
                self.store.lease(conn, [r["message_id"] for r in rows], lease)
        return rows

    def _drop_cancelled(self, conn: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A message of a journey that is neither RUNNING nor PAUSED (written by a batch that raced StopJourney) is
        SUPPRESSED ``journey_stopped``; one whose cancel was requested while it was leased (its round crashed, or
        the lease ran out) is SUPPRESSED with that reason; one of a journey paused meanwhile is left for later."""
        journeys = sorted({r["journey_id"] for r in rows if r["journey_id"]})
        states = self.journey_store.states(conn, set(journeys))
        cancelled: dict[str, list[str]] = {}
        kept = []
        for row in rows:
            state = states.get(row["journey_id"])
            if row["suppression_reason"] in CANCEL_REASONS:
                cancelled.setdefault(row["suppression_reason"], []).append(row["message_id"])
            elif state is not None and state not in ("RUNNING", "PAUSED"):
                cancelled.setdefault("journey_stopped", []).append(row["message_id"])
            elif state != "PAUSED":
                kept.append(row)
        for reason, ids in cancelled.items():
            self.store.cancel(conn, ids, reason)
        return kept

    def _defer_quiet(self, conn: Any, rows: list[dict[str, Any]], now: dt.datetime) -> list[dict[str, Any]]:
        """Quiet hours hold at delivery as they do when a message is written: a marketing message due inside the
        quiet hours of its channel (a retry after a gateway failure, a paused journey resumed at night, a backlog
        after an outage, the end of one rule inside another) is DEFERRED to their end, not sent, not lost."""
        if not any(r["is_marketing"] for r in rows):
            return rows
        policy = self._policies.get(conn)
        if not policy.quiet_hours:
            return rows
        deferred: dict[dt.datetime, list[str]] = {}
        for row in rows:
            until = quiet_until(policy, row["channel"], now, self.settings.timezone) if row["is_marketing"] else None
            if until is not None:
                deferred.setdefault(until, []).append(row["message_id"])
        if not deferred:
            return rows
        for until, ids in deferred.items():
            self.store.defer(conn, ids, until)
        held = {i for ids in deferred.values() for i in ids}
        return [r for r in rows if r["message_id"] not in held]

    def _drop_withdrawn(self, conn: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Consent is checked again at delivery: a customer who opted out while a marketing message waited (quiet
        hours, retries) does not get it; the message is SUPPRESSED with reason ``consent_withdrawn``."""
        marketing = {r["user_id"] for r in rows if r["is_marketing"]}
        if not marketing:
            return rows
        found: dict[str, list[tuple[int, str, bool]]] = {}
        for row in self.store.consents_of(conn, sorted(marketing)):
            found.setdefault(row.user_id, []).append((row.channel, row.purpose, row.granted))
        withdrawn = [
            r["message_id"]
            for r in rows
            if r["is_marketing"]
            and not consent_allows(
                found.get(r["user_id"], []), r["channel"], r["purpose"], self.settings.marketing_requires_opt_in
            )
        ]
        if not withdrawn:
            return rows
        self.store.suppress(conn, withdrawn, "consent_withdrawn")
        return [r for r in rows if r["message_id"] not in withdrawn]

    def _backoff(self, attempts: int) -> dt.timedelta:
        ceiling = min(
            self.settings.delivery_max_backoff_millis,
            self.settings.delivery_initial_backoff_millis * 2 ** (attempts - 1),
        )
        return dt.timedelta(milliseconds=ceiling / 2 + random.random() * ceiling / 2)

    def record(self, row: dict[str, Any], outcome: Outcome) -> None:
        self.record_many([(row, outcome)])

    def record_many(self, results: list[tuple[dict[str, Any], Outcome]]) -> None:
        """The outcomes of one round of deliveries, in one transaction (not one commit per message)."""
        now = self.clock.now()
        with self.db.connection(write=True) as conn:
            for row, outcome in results:
                self._record(conn, row, outcome, now)

    def _record(self, conn: Any, row: dict[str, Any], outcome: Outcome, now: dt.datetime) -> None:
        attempts = row["attempts"] + 1
        current = self.store.status(conn, row["message_id"])
        # A cancel (journey stopped, customer erased, preempted) that came while the gateway had the message: if the
        # gateway took it the customer has it, so it is SENT (the reason kept as a note) and counts toward caps.
        cancel = current.suppression_reason if current.suppression_reason in CANCEL_REASONS else ""
        if current.status == "SUPPRESSED" and outcome.ok:
            log.info(
                "message %s was suppressed (%s) while at the gateway, which took it: recorded SENT",
                row["message_id"],
                current.suppression_reason,
            )
        elif current.status not in UNSENT:
            return  # receipted while in flight, or suppressed and the gateway did not take it
        if outcome.ok:
            values: dict[str, Any] = {
                "status": "SENT",
                "sent_at": now,
                "attempts": attempts,
                "gateway_message_id": outcome.gateway_message_id,
                "next_attempt_at": None,
                "lease_until": None,
                "failure_reason": "",
            }
            queue_event(conn, self.t, message_event(row, "SENT", now), now)
        elif cancel and (outcome.retryable or outcome.not_configured):
            values = {  # not retried: the cancel takes effect
                "status": "SUPPRESSED",
                # No gateway for the channel saw it: no attempt (a receipt for it could come from nobody).
                "attempts": row["attempts"] if outcome.not_configured else attempts,
                "next_attempt_at": None,
                "lease_until": None,
                "failure_reason": outcome.error,
            }
        elif outcome.not_configured:
            values = {  # no gateway for the channel (yet): it waits QUEUED, no attempt counted
                "next_attempt_at": now + dt.timedelta(milliseconds=self.settings.delivery_max_backoff_millis),
                "lease_until": None,
                "failure_reason": outcome.error,
            }
        elif outcome.retryable and attempts < self.settings.delivery_max_attempts:
            values = {
                "attempts": attempts,
                "next_attempt_at": now + self._backoff(attempts),
                "lease_until": None,
                "failure_reason": outcome.error,
            }
        else:
            # Operators learn of each lost message here (before, only the FAILED row and a $message_failed event).
            log.warning(
                "message %s FAILED after %d attempt(s): %s",
                row["message_id"],
                attempts,
                outcome.error[:200] or "refused by the gateway",
            )
            values = {
                "status": "FAILED",
                "attempts": attempts,
                "next_attempt_at": None,
                "lease_until": None,
                "failure_reason": outcome.error,
            }
            queue_event(conn, self.t, message_event(row, "FAILED", now), now)
        self.store.update(conn, row["message_id"], values)

    async def run_once(self) -> int:
        rows = await self._offload(self.claim)
        if not rows:
            return 0
        limit = asyncio.Semaphore(self.settings.delivery_concurrency)

        async def one(row: dict[str, Any]) -> tuple[dict[str, Any], Outcome]:
            async with limit:
                try:
                    return row, await self.adapter.deliver(row)
                except Exception as exc:  # an adapter bug must not lose the message: retry it
                    log.exception("delivery adapter failed")
                    return row, Outcome(False, retryable=True, error=f"{type(exc).__name__}: {exc}"[:500])

        results = await asyncio.gather(*(one(r) for r in rows))
        self._warn_if_failing(results)
        # A crash before this commit re-delivers the round with the same idempotency keys (the gateway
        # de-duplicates): at least once to the gateway, once to the customer.
        await self._offload(self.record_many, list(results))
        self.delivered += sum(1 for _, outcome in results if outcome.ok)
        return len(rows)
