"""svc_campaign's domain: templates, policies and consent, one-off sends, receipts, contact history,
experiments, and the background work (log follower, timers, outbox dispatcher, event publisher,
auto-promotion). No grpc here: errors are ``svc_common.errors``; the server maps them."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf import json_format
from sqlalchemy import Table
from sqlalchemy.exc import IntegrityError

from svc_campaign.checks import bad, channel_ok, customer_id, known, service_send_ok
from svc_campaign.clock import Clock, SystemClock
from svc_campaign.config import CampaignSettings
from svc_campaign.cron import known_zone
from svc_campaign.delivery import ChannelAdapter, Dispatcher
from svc_campaign.engine import TIMER_SHARE_DIALECTS, Engine
from svc_campaign.experiments import Experiments
from svc_campaign.gateway_grpc import build_adapter
from svc_campaign.journey_walk import Walker
from svc_campaign.journeys import Journeys
from svc_campaign.loops import run_loop
from svc_campaign.outbox import message_event, queue_event, stable_id, to_proto
from svc_campaign.policy import PolicyGate, Touch, check_quiet_hours, default_policy, policy_from_json
from svc_campaign.profiles import (
    GrpcProfileDirectory,
    GrpcSegmentMembers,
    ProfileDirectory,
    SegmentMembers,
    TellingOutages,
    lookup,
)
from svc_campaign.publisher import EventPublisher
from svc_campaign.scheduled import Scheduler
from svc_campaign.signed_events import SignedEventGate
from svc_campaign.store._messages import MessageStore
from svc_campaign.store._participants import erased_at
from svc_campaign.store._policy import PolicyStore
from svc_campaign.store._templates import TemplateStore
from svc_campaign.templates import TemplateBook
from svc_campaign.threads import LoopThreads
from svc_campaign.triggers import json_properties
from svc_common.conditions import from_proto
from svc_common.db import Database
from svc_common.errors import Aborted, AlreadyExists, FailedPrecondition, NotFound
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.peers import peer_address
from svc_common.protection import KeyProvider, key_provider_from_settings
from svc_common.timestamps import timestamp_datetime

log = logging.getLogger("qiming.campaign")
RECEIPT_ORDER = {"SENT": 1, "DELIVERED": 2, "CLICKED": 3, "FAILED": 2}


class CampaignService(TemplateBook):
    def __init__(
        self,
        settings: CampaignSettings,
        database: Database,
        tables: dict[str, Table],
        *,
        clock: Clock | None = None,
        profiles: ProfileDirectory | None = None,
        adapter: ChannelAdapter | None = None,
        collect: Any = None,
        members: SegmentMembers | None = None,
        keys: KeyProvider | None = None,
    ) -> None:
        self.settings = settings
        # $profile_erased / $segment_* from the log count only when svc_profile signed them, $message_* only when
        # svc_campaign did; the same signer signs the $message_* events it publishes (signed_events.py).
        self.signed_events = SignedEventGate(lambda: keys or key_provider_from_settings(settings))
        self.db = database
        self.t = tables
        self.template_store = TemplateStore(tables)
        self.policy_store = PolicyStore(tables)
        self.message_store = MessageStore(tables)
        self.clock = clock or SystemClock()
        if profiles is None:
            # Resolved at each call: the configured address, else svc_profile in this same process.
            profiles = GrpcProfileDirectory(
                settings.profile_address,
                cache_seconds=settings.profile_cache_seconds,
                timeout_seconds=settings.profile_timeout_seconds,
            )
        self.profiles = profiles
        self.gate = PolicyGate(
            tables,
            default_zone=settings.timezone,
            requires_opt_in=settings.marketing_requires_opt_in,
            sensitive=settings.sensitive_fields,
        )
        self.experiments = Experiments(tables)
        outages = TellingOutages(profiles)
        self.engine = Engine(database, tables, self.clock, outages, self.gate, self.experiments, settings)
        self.walker: Walker = self.engine.walker
        self.journeys = Journeys(tables, self.engine, self.experiments)
        if members is None:
            members = GrpcSegmentMembers(
                settings.profile_address,
                page_size=settings.export_page_size,
                timeout_seconds=settings.export_timeout_seconds,
            )
        self.scheduler = Scheduler(self.engine, tables, members)
        if adapter is None:
            adapter = build_adapter(settings)
        self.adapter = adapter
        # One thread per background loop, apart from the pool that serves RPCs (threads.py): the follower, the
        # timer loops, schedules, the outbox, the publisher and auto-promotion.
        self._timer_loops = settings.timer_workers if database.dialect in TIMER_SHARE_DIALECTS else 1
        self.threads = LoopThreads(self._timer_loops + 5, "campaign-loop")
        run = self.threads.run
        self.dispatcher = (
            Dispatcher(database, tables, self.clock, adapter, settings, self._paused, offload=run) if adapter else None
        )
        self.collect = collect
        self.publisher: EventPublisher | None = None
        if collect is not None:
            self.publisher = EventPublisher(
                database, tables, collect, signer=self.signed_events.signer, offload=run, **_publishing(settings)
            )
        self.follower: Any = None
        self._timers_held_since: float | None = None  # monotonic: since when due timers wait for the log follower
        self._timers_released = False  # they fire anyway after timers_wait_for_log_seconds (said once)
        self._tasks: list[asyncio.Task[None]] = []

    def _paused(self) -> list[str]:
        return [j.journey_id for j in self.engine._journeys.values() if j.state == "PAUSED"]

    # -- background work ------------------------------------------------------------------------------

    async def start(self) -> None:
        collect_address = peer_address("collect", self.settings.collect_address)
        self._warn_unconnected(collect_address)
        if self.collect is None and collect_address:
            from svc_common.logclient import CollectClient

            # Made here, on the server's event loop (a gRPC aio channel belongs to the loop it was made on).
            self.collect = CollectClient(
                collect_address,
                keepalive_time_seconds=self.settings.grpc_keepalive_time_seconds,
                keepalive_timeout_seconds=self.settings.grpc_keepalive_timeout_seconds,
            )
            self.publisher = EventPublisher(
                self.db,
                self.t,
                self.collect,
                signer=self.signed_events.signer,
                offload=self.threads.run,
                **_publishing(self.settings),
            )
        if self.collect is not None:
            from svc_common.logclient import LogFollower

            def verified_then_handle(events: list[Any], cursor: str) -> Any:
                return self.engine.handle(self.signed_events.verified(events), cursor)

            async def handle(events: list[Any], cursor: str) -> None:
                await self.threads.run(verified_then_handle, events, cursor)

            await self.threads.run(self.signed_events.open)
            self.follower = LogFollower(
                self.collect,
                name=self.settings.consumer_name,
                load_cursor=lambda: self.threads.run(self.engine.load_cursor),
                handle=handle,
                batch_size=self.settings.log_batch_size,
            )
            self.follower.start()
        poll = self.settings.timer_poll_millis / 1000
        # On PostgreSQL several loops fire at once, each for its share of the customers (row locks, not one writer
        # lock: while one waits on the database, another runs); elsewhere one.
        shares = self._timer_loops
        for share in range(shares):

            async def timers(share: tuple[int, int] | None = (share, shares) if shares > 1 else None) -> int:
                if not self.log_read_for_timers():
                    return 0
                return (await self.threads.run(self.engine.fire_due_timers, None, share)).timers_fired

            self._loop("timers" if shares == 1 else f"timers-{share}", timers, poll)

        async def schedules() -> int:
            return await self.threads.run(self.scheduler.run_once)

        self._loop("schedules", schedules, self.settings.schedule_poll_millis / 1000)
        if self.dispatcher is not None:
            self._loop("outbox", self.dispatcher.run_once, self.settings.delivery_poll_millis / 1000)
        if self.publisher is not None:
            self._loop("publisher", self.publisher.run_once, 0.2)
        self._loop("auto-promotion", self._promote_all, 5.0)

    def _warn_unconnected(self, collect_address: str) -> None:
        """One WARNING per peer this process is not connected to (its own process, with the address unset)."""
        if self.collect is None and not collect_address:
            log.warning(
                "collect_address is not set and this process does not serve svc_collect: svc_campaign reads no "
                "events (no trigger fires, no goal or wait sees its event, no erasure arrives) and publishes none "
                "($message_* events wait in campaign_pending_event); set [campaign] collect_address "
                "(QIMING_CAMPAIGN_COLLECT_ADDRESS)",
                extra={"setting": "collect_address"},
            )
        if isinstance(self.profiles, GrpcProfileDirectory) and not peer_address(
            "profile", self.settings.profile_address
        ):
            log.warning(
                "profile_address is not set and this process does not serve svc_profile: every customer is unknown "
                "to svc_campaign (branches take their default arm, audience segments admit nobody, product "
                "messages are suppressed risk_rating_unknown, scheduled runs cannot read their segment); set "
                "[campaign] profile_address (QIMING_CAMPAIGN_PROFILE_ADDRESS)",
                extra={"setting": "profile_address"},
            )

    def log_read_for_timers(self) -> bool:
        """Whether due timers may fire now: the log follower has read the log to its end since it (re)connected, or
        has not for longer than ``timers_wait_for_log_seconds``. After a restart the events that arrived while
        svc_campaign was down are read first: a timer fired before them answered an absence, a "then not B" or a
        wait's timeout although the customer's event was in the log (walk 2026-12-06). No follower: nothing to
        wait for."""
        follower = self.follower
        if follower is None or follower.caught_up.is_set():
            if self._timers_held_since is not None:
                self._timers_held_since = None
                if self._timers_released:
                    log.info("the log follower has read the log again: due timers wait for it again")
                self._timers_released = False
            return True
        limit = self.settings.timers_wait_for_log_seconds
        if limit == 0:  # never wait (and nothing to say)
            return True
        now = time.monotonic()
        if self._timers_held_since is None:
            self._timers_held_since = now
        if now - self._timers_held_since < limit:
            return False
        if not self._timers_released:
            self._timers_released = True
            log.warning(
                "the log follower has not read the log to its end for %.0f s (timers_wait_for_log_seconds): due "
                'timers fire anyway; an absence, a "then not B" or a wait\'s timeout may be answered although the '
                "customer's event is in the log unread",
                now - self._timers_held_since,
                extra={"setting": "timers_wait_for_log_seconds"},
            )
        return True

    def _loop(self, name: str, once: Callable[[], Awaitable[int]], idle_seconds: float) -> None:
        self._tasks.append(asyncio.create_task(run_loop(name, once, idle_seconds), name=f"campaign-{name}"))

    async def stop(self) -> None:
        if self.follower is not None:
            await self.follower.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.threads.close()
        if self.adapter is not None:
            await self.adapter.close()
        if self.collect is not None:
            await self.collect.close()
        if isinstance(self.profiles, GrpcProfileDirectory):
            self.profiles.close()

    async def _promote_all(self) -> int:
        def promote() -> int:
            with self.db.connection(write=True) as conn:
                running = self.experiments.store.running_ids(conn)
                return sum(self.experiments.maybe_promote(conn, e, self.clock.now()) is not None for e in running)

        await self.threads.run(promote)
        return 0

    # -- policy ---------------------------------------------------------------------------------------

    def set_consent(self, consent: pb.Consent) -> pb.Consent:
        user = customer_id(consent.user, "consent.user")
        if consent.channel not in pb.ChannelType.values():
            raise bad("consent.channel", "not a channel (CHANNEL_TYPE_UNSPECIFIED: every channel)")
        purpose = consent.purpose or "*"
        now = self.clock.now()
        with self.db.connection(write=True) as conn:
            row = {
                "user_id": user,
                "channel": consent.channel,
                "purpose": purpose,
                "granted": consent.granted,
                "source": consent.source,
                "updated_at": now,
            }
            self.policy_store.set_consent(conn, row)
        saved = pb.Consent()
        saved.CopyFrom(consent)
        saved.purpose = purpose
        saved.updated_at.FromDatetime(now)
        return saved

    def get_consent(self, ref: types_pb2.UserRef, history: bool = False) -> list[pb.Consent]:
        """The customer's consent records in force, or with ``history`` every record ever set, oldest first."""
        user = customer_id(ref)
        with self.db.connection() as conn:
            rows = self.policy_store.consents(conn, user, history)
        out = []
        for r in rows:
            consent = pb.Consent(
                user=ref, channel=r["channel"], purpose=r["purpose"], granted=r["granted"], source=r["source"]
            )
            consent.updated_at.FromDatetime(r["updated_at"])
            out.append(consent)
        return out

    def get_policy(self) -> pb.ContactPolicy:
        with self.db.connection() as conn:
            self.walker.invalidate()
            return self.walker.policy(conn)

    def update_policy(self, policy: pb.ContactPolicy, expected_version: int) -> pb.ContactPolicy:
        zones = [("policy.cap_timezone", policy.cap_timezone)]
        for n, rule in enumerate(policy.quiet_hours):
            known(rule.channels, pb.ChannelType, f"policy.quiet_hours[{n}].channels")
            if rule.end.timezone and rule.end.timezone != rule.start.timezone:
                raise bad(
                    f"policy.quiet_hours[{n}].end.timezone",
                    f"{rule.end.timezone!r} is not the start's zone {rule.start.timezone or 'of the service'!r}:"
                    " quiet hours are one span of local time in the start's zone; leave the end's empty or the same",
                )
            for end in ("start", "end"):
                tod = getattr(rule, end)
                if tod.hour > 23 or tod.minute > 59:
                    raise bad(f"policy.quiet_hours[{n}].{end}", "not a time of day")
                zones.append((f"policy.quiet_hours[{n}].{end}.timezone", tod.timezone))
        for where, zone in zones:
            if zone and known_zone(zone) is None:
                raise bad(where, f"unknown time zone {zone!r}")
        check_quiet_hours(policy)
        if policy.cap_window not in pb.CapWindow.values():
            raise bad("policy.cap_window", "CAP_WINDOW_CALENDAR or CAP_WINDOW_ROLLING")
        if policy.dedupe_window_seconds < 0:
            raise bad("policy.dedupe_window_seconds", "must not be negative")
        saved = pb.ContactPolicy()
        saved.CopyFrom(policy)
        for _ in range(3):  # an edit without expected_version tries again when another came first
            with self.db.connection(write=True) as conn:
                current, stored = self.policy_store.policy_version(conn)
                if expected_version and expected_version != current:
                    raise Aborted(f"the contact policy is at version {current}, not {expected_version}")
                saved.version = current + 1
                document = json_format.MessageToDict(saved)
                # Compare-and-set: two edits that read the same version (PostgreSQL runs them at once) cannot both win.
                written = self.policy_store.save_policy(
                    conn, document, saved.version, self.clock.now(), replaces=current if stored else None
                )
            if written:
                self.walker.invalidate()
                return saved
            if expected_version:
                raise Aborted(
                    f"the contact policy changed meanwhile (it was at version {expected_version}): read it again"
                )
        raise Aborted("the contact policy kept changing under this edit: read it again")

    def check_contact(self, request: pb.CheckContactRequest) -> pb.CheckContactResponse:
        user = customer_id(request.user)
        channel_ok(request.channel, "channel")
        service_send_ok(request.is_marketing, request.purpose)
        template = self.get_template(request.template_id) if request.template_id else pb.Template(body=".")
        now = self.clock.now()
        with self.db.connection() as conn:
            policy = self.walker.policy(conn)
            touch = Touch(
                user,
                request.channel,
                template,
                request.purpose or "marketing",
                request.is_marketing,
                0,
                lookup(self.profiles, user),
            )
            decision = self.gate.check(conn, policy, touch, now)
        response = pb.CheckContactResponse(
            allowed=decision.allowed and decision.deferred_until is None, suppression_reason=decision.reason
        )
        if decision.deferred_until is not None:
            response.allowed_at.FromDatetime(decision.deferred_until)
        return response

    # -- messages -------------------------------------------------------------------------------------

    def send_message(self, request: pb.SendMessageRequest) -> pb.Message:
        user = customer_id(request.user)
        channel_ok(request.channel, "channel")
        service_send_ok(request.is_marketing, request.purpose)
        template = self.get_template(request.template_id) if request.template_id else None
        if template is None:
            raise bad("template_id", "name the template")
        if template.channel not in (pb.CHANNEL_TYPE_UNSPECIFIED, request.channel):
            raise bad("channel", f"template {template.template_id!r} is for {pb.ChannelType.Name(template.channel)}")
        key = request.idempotency_key
        # A client's key is its own per customer: the message id and the outbox's key are made from both, so one
        # customer's call never answers with (or suppresses) another customer's message.
        message_id = stable_id("send", user, key) if key else str(uuid.uuid4()).replace("-", "")
        if key:
            sent = self._sent_with_key(user, key, message_id, request)
            if sent is not None:
                return sent
        try:
            return self._send_once(request, user, template, message_id)
        except IntegrityError:
            # The same key sent twice at once: the other call wrote first; answer with its message.
            sent = self._sent_with_key(user, key, message_id, request) if key else None
            if sent is None:
                raise
            return sent

    def _sent_with_key(self, user: str, key: str, message_id: str, request: pb.SendMessageRequest) -> pb.Message | None:
        """The message already sent for ``key`` to ``user``, if any (ids made before keys were per customer
        included); ALREADY_EXISTS when the key was used for another channel or template."""
        with self.db.connection() as conn:
            row = self.message_store.first_of(conn, [message_id, stable_id("send", key)], user)
        if row is None:
            return None
        if row["channel"] != request.channel or row["template_id"] != request.template_id:
            raise AlreadyExists(
                f"idempotency_key {key!r} was already used for this customer with another channel or template; "
                "use a new key for a new message",
                reason="IDEMPOTENCY_KEY_REUSED",
                metadata={"message_id": row["message_id"]},
            )
        return to_proto(row)

    def _send_once(self, request: pb.SendMessageRequest, user: str, template: Any, message_id: str) -> pb.Message:
        key = request.idempotency_key
        now = self.clock.now()
        with self.db.connection(write=True) as conn:
            event = {k: from_proto(v, f"event_properties[{k}]") for k, v in request.event_properties.items()}
            fields = {"journey_id": "", "node_id": "", "instance_id": "", "experiment_id": "", "variant": ""}
            try:
                row, _ = self.walker.decide(
                    conn,
                    user,
                    [request.channel],
                    template,
                    request.purpose or "marketing",
                    request.is_marketing,
                    0,
                    lookup(self.profiles, user),
                    event,
                    now,
                    message_id,
                    fields,
                    f"qiming-send-{message_id}" if key else "",
                )
                self.walker.flush(conn)
            except BaseException:
                self.walker.discard()
                raise
        return to_proto(row)

    def get_message(self, message_id: str) -> pb.Message:
        with self.db.connection() as conn:
            row = self.message_store.get(conn, message_id)
        if row is None:
            raise NotFound(f"no message {message_id!r}", metadata={"message_id": message_id})
        return to_proto(row)

    def report_receipt(self, request: pb.ReportDeliveryReceiptRequest) -> pb.Message:
        known([request.status], pb.MessageStatus, "status")
        status = pb.MessageStatus.Name(request.status).removeprefix("MESSAGE_STATUS_")
        if status not in ("DELIVERED", "FAILED", "CLICKED", "SENT"):
            raise bad("status", "a receipt is SENT, DELIVERED, FAILED or CLICKED")
        at = timestamp_datetime(request.at, "at") if request.HasField("at") else self.clock.now()
        with self.db.connection(write=True) as conn:
            row = self.message_store.get(conn, request.message_id)
            if row is None:
                raise NotFound(f"no message {request.message_id!r}", metadata={"message_id": request.message_id})
            row = dict(row)
            values: dict[str, Any] = {}
            if row["status"] == "SUPPRESSED":
                why = row["suppression_reason"]
                # Never handed to a gateway, or its customer erased since (the row was blanked; an event of theirs
                # would bring them back): no receipt is taken.
                if not row["attempts"] or why == "customer_erased" or erased_at(conn, self.t, [row["user_id"]]):
                    raise FailedPrecondition(
                        f"message {request.message_id!r} was suppressed ({why}): it has no receipts"
                    )
                if status == "FAILED":  # it did not reach the customer: SUPPRESSED says so already
                    return to_proto(row)
                # An attempt whose outcome was unknown (a timeout: the gateway may have taken it), then a cancel (a
                # stopped journey, a preemption, consent withdrawn before the retry): the receipt says the customer
                # has it. The contact history and the caps count it, as when the gateway's answer says so; the
                # reason stays as a note.
                log.info(
                    "message %s was suppressed (%s) after an attempt without an answer; the gateway's %s receipt "
                    "says it was taken: recorded %s",
                    request.message_id,
                    why,
                    status,
                    status,
                )
                values.update(status="SENT", sent_at=row["sent_at"] or at, failure_reason="")
                values.update(next_attempt_at=None, lease_until=None)
                queue_event(conn, self.t, message_event(row, "SENT", at), self.clock.now())
                row.update(values)
            stamp = {"SENT": "sent_at", "DELIVERED": "delivered_at", "CLICKED": "clicked_at"}.get(status)
            if stamp and row[stamp] is None:
                values[stamp] = at
                if status in ("DELIVERED", "CLICKED"):
                    queue_event(conn, self.t, message_event(row, status, at), self.clock.now())
                if status == "CLICKED" and row["experiment_id"]:
                    self.experiments.record(conn, row["experiment_id"], row["user_id"], "click", at)
            if status == "FAILED" and row["status"] not in ("DELIVERED", "CLICKED", "FAILED"):
                values.update(failure_reason=request.failure_reason or "reported by the gateway")
                queue_event(conn, self.t, message_event(row, "FAILED", at), self.clock.now())
            # The status only moves forward: a late DELIVERED after CLICKED keeps CLICKED.
            if RECEIPT_ORDER.get(status, 0) > RECEIPT_ORDER.get(row["status"], 0) or row["status"] in (
                "QUEUED",
                "DEFERRED",
            ):
                values["status"] = status
                values["next_attempt_at"] = None
            if request.gateway_message_id:
                values["gateway_message_id"] = request.gateway_message_id
            if values:
                self.message_store.update(conn, request.message_id, values)
                row.update(values)
        return to_proto(row)

    def list_messages(
        self,
        *,
        user: str,
        journey_id: str,
        channels: list[int],
        start: dt.datetime | None,
        end: dt.datetime | None,
        suppressed: bool,
        reasons: list[str],
        after: tuple[dt.datetime, str] | None,
        limit: int,
    ) -> list[pb.Message]:
        with self.db.connection() as conn:
            rows = self.message_store.history(
                conn,
                user=user,
                journey_id=journey_id,
                channels=channels,
                start=start,
                end=end,
                suppressed=suppressed,
                reasons=reasons,
                after=after,
                limit=limit,
            )
        return [to_proto(r) for r in rows]


def _publishing(settings: CampaignSettings) -> dict[str, float]:
    """The event publisher's settings."""
    return {
        "rejected_retry_seconds": settings.publish_rejected_retry_seconds,
        "rejected_hold_seconds": settings.publish_rejected_hold_seconds,
    }


__all__ = [
    "CampaignService",
    "bad",
    "channel_ok",
    "customer_id",
    "default_policy",
    "json_properties",
    "policy_from_json",
]
