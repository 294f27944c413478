"""Acceptance walk-e M2 (session 17): svc_collect took an unsigned ``$message_sent`` (and ``$message_clicked``,
``$score_written`` ...) from any Ingest caller, and svc_modeling's snapshots then counted that customer as treated by
a journey that never messaged them. svc_campaign now signs every ``$message_*`` event it publishes (at publish:
rows queued by the release before are signed too), svc_collect refuses one without svc_campaign's valid signature
(``UNSIGNED_SYSTEM_EVENT``), and ``$score_written`` / ``$lifecycle_changed`` (written by no service) are refused from
producers."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest
from campaign_helpers import campaign_service
from collect_helpers import KEYRING, collect_settings, make_event, running_service
from profile_helpers import collector, read_batches
from sqlalchemy import select

from svc_campaign.outbox import STATUS_EVENT, message_event
from svc_campaign.publisher import EventPublisher
from svc_campaign.signed_events import SignedEventGate
from svc_campaign.store._outbox import add_pending_event
from svc_collect.service import ACCEPTED as ACCEPTED_RESULT
from svc_collect.service import REJECTED as REJECTED_RESULT
from svc_collect.store import SchemaRecord
from svc_common.errors import InvalidArgument
from svc_common.logclient import CollectClient
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as cpb
from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import errors_pb2, event_pb2
from svc_common.protection import (
    SIGNATURE_PROPERTY,
    SIGNED_EVENT_TYPES,
    JsonKeyProvider,
    SystemEventSigner,
    generate_keyring,
    publisher_of,
)

SIGNER = SystemEventSigner(JsonKeyProvider(KEYRING))
OTHER_KEYRING = SystemEventSigner(JsonKeyProvider(generate_keyring().to_json()))
UNSIGNED = errors_pb2.ERROR_REASON_UNSIGNED_SYSTEM_EVENT
REJECTED, ACCEPTED = collect_pb2.EVENT_STATUS_REJECTED, collect_pb2.EVENT_STATUS_ACCEPTED
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def message(status: str = "SENT", user: str = "C1", journey: str = "promo", message_id: str = "m-1") -> event_pb2.Event:
    """svc_campaign's own event for a message reaching ``status``, unsigned (as queued in campaign_pending_event)."""
    row = {
        "message_id": message_id,
        "user_id": user,
        "channel": cpb.CHANNEL_TYPE_SMS,
        "template_id": "t1",
        "journey_id": journey,
        "node_id": "send",
        "experiment_id": "x1",
        "variant": "B",
    }
    return message_event(row, status, NOW)


def signed(event: event_pb2.Event, signer: SystemEventSigner = SIGNER) -> event_pb2.Event:
    out = event_pb2.Event()
    out.CopyFrom(event)
    return signer.sign(out)


def changed(event: event_pb2.Event, change: Any) -> event_pb2.Event:
    out = event_pb2.Event()
    out.CopyFrom(event)
    change(out)
    return out


def test_message_events_are_signed_types_of_svc_campaign_and_the_reserved_ones_of_none() -> None:
    assert {t for t in SIGNED_EVENT_TYPES if publisher_of(t) == "svc_campaign"} == set(STATUS_EVENT.values())
    assert {t for t in SIGNED_EVENT_TYPES if not publisher_of(t)} == {"$score_written", "$lifecycle_changed"}
    assert publisher_of("$profile_erased") == "svc_profile" and publisher_of("login") == ""


def test_the_signature_covers_the_customer_the_journey_and_every_property_svc_campaign_sets() -> None:
    original = signed(message())
    assert SIGNER.verify(original) and not OTHER_KEYRING.verify(original)
    assert signed(message()).SerializeToString(deterministic=True) == original.SerializeToString(deterministic=True)

    def prop(name: str, value: str) -> Any:
        return lambda e: setattr(e.properties[name], "string_value", value)

    for change in (
        lambda e: setattr(e, "user_id", "C2"),  # another customer
        lambda e: setattr(e, "event_id", str(uuid.uuid4())),
        lambda e: setattr(e, "event_type", "$message_clicked"),  # a send is not a click
        lambda e: e.occurred_at.FromSeconds(e.occurred_at.seconds - 86_400),  # earlier: before a snapshot
        prop("journey_id", "other"),  # another journey's treatment
        prop("message_id", "m-2"),
        prop("channel", "push"),
        prop("template_id", "t2"),
        prop("node_id", "n2"),
        prop("experiment_id", "x2"),
        prop("variant", "A"),
        lambda e: e.properties.pop("variant"),
    ):
        assert not SIGNER.verify(changed(original, change))


def test_svc_collect_refuses_message_events_not_signed_by_svc_campaign(tmp_path: Path) -> None:
    good = [signed(message(status)) for status in STATUS_EVENT]
    forged = [
        message("SENT", user="C2", message_id="forged"),  # the walk's repro: a producer's plain $message_sent
        message("CLICKED", user="C2", message_id="forged"),
        signed(message("SENT", user="C3", message_id="m-3"), OTHER_KEYRING),  # signed, not with the suite's keyring
        changed(good[0], lambda e: setattr(e, "user_id", "C4")),  # a real one, redirected to another customer
        changed(good[0], lambda e: setattr(e.properties["journey_id"], "string_value", "fund_care")),  # or journey
    ]
    reserved = [make_event("$score_written", "C5", score=0.9), make_event("$lifecycle_changed", "C5", stage="churn")]
    profiles = make_event("$profile_erased", "C6", profile_id="p-6")
    with collector(tmp_path) as collect, grpc.insecure_channel(collect.address) as channel:
        stub = collect_pb2_grpc.CollectServiceStub(channel)
        response = stub.Ingest(collect_pb2.IngestRequest(events=[*forged, *reserved, profiles, *good]), timeout=10)
        results = list(response.results)
        refused = results[: len(forged) + len(reserved) + 1]
        assert [(r.status, r.reason, r.field) for r in refused] == [
            (REJECTED, UNSIGNED, f"properties.{SIGNATURE_PROPERTY}")
        ] * len(refused)
        unsigned, *_ = refused
        assert "published only by svc_campaign" in unsigned.message and "upgrade svc_campaign first" in unsigned.message
        assert "svc_profile" not in unsigned.message
        assert all("does not verify" in r.message for r in refused[2:5])
        assert all("none writes it" in r.message for r in refused[5:7])
        assert "published only by svc_profile" in refused[7].message
        assert [r.status for r in results[len(refused) :]] == [ACCEPTED] * len(good)

        request = collect_pb2.ReadEventsRequest(event_types=[*STATUS_EVENT.values(), "$score_written"])
        in_log = [e for r in stub.ReadEvents(request, timeout=10) for e in r.events]
        assert sorted(e.event_type for e in in_log) == sorted(STATUS_EVENT.values())
        assert {e.user_id for e in in_log} == {"C1"} and all(SIGNER.verify(e) for e in in_log)


class Sink:
    """Stands in for svc_collect: takes every event."""

    def __init__(self) -> None:
        self.events: list[event_pb2.Event] = []

    async def publish(self, events: list[event_pb2.Event]) -> collect_pb2.IngestResponse:
        self.events.extend(events)
        return collect_pb2.IngestResponse(
            results=[
                collect_pb2.EventResult(index=i, event_id=e.event_id, status=ACCEPTED) for i, e in enumerate(events)
            ]
        )


def test_the_publisher_signs_every_message_event_even_one_queued_unsigned(tmp_path: Path) -> None:
    with campaign_service(tmp_path / "c") as service:
        queued = [message(status, message_id=f"m-{status}") for status in STATUS_EVENT]
        with service.db.connection(write=True) as conn:
            for event in queued:  # as the release before signing (and this one) queue them: unsigned
                add_pending_event(conn, service.t, event.event_id, event.SerializeToString(), NOW, event.user_id)
        sink = Sink()
        publisher = EventPublisher(service.db, service.t, sink, signer=service.signed_events.signer)
        assert asyncio.run(publisher.run_once()) == len(queued)
        assert [e.event_id for e in sink.events] == [e.event_id for e in queued]
        assert all(SIGNER.verify(e) for e in sink.events)
        # the content sent is the row's, with the signature added
        for q, s in zip(queued, sink.events, strict=True):
            assert signed(q).SerializeToString(deterministic=True) == s.SerializeToString(deterministic=True)


def test_a_service_campaign_sends_messages_whose_events_the_log_takes(tmp_path: Path) -> None:
    """The wiring: svc_campaign's own publisher (CampaignService) signs with the keyring it is given."""
    with collector(tmp_path) as collect, campaign_service(tmp_path / "c") as service:
        event = message()
        with service.db.connection(write=True) as conn:
            add_pending_event(conn, service.t, event.event_id, event.SerializeToString(), NOW, event.user_id)

        async def go() -> int:
            client = CollectClient(collect.address)
            try:
                publisher = EventPublisher(service.db, service.t, client, signer=service.signed_events.signer)
                return await publisher.run_once()
            finally:
                await client.close()

        assert asyncio.run(go()) == 1
        p = service.t["pending_event"]
        with service.db.connection() as conn:
            assert list(conn.execute(select(p.c.event_id))) == []
        (logged,) = [e for batch, _ in read_batches(collect.address) for e in batch]
        assert logged.event_id == event.event_id and SIGNER.verify(logged)


def test_an_svc_collect_upgraded_first_heals_when_svc_campaign_is_upgraded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """svc_collect upgraded before svc_campaign refuses the old campaign's unsigned events; the old publisher keeps
    them pending and holds back each customer's later ones. The upgraded publisher sends them, signed, at its first
    round rather than at their retry time (up to an hour away)."""

    class Unsigning:  # the release before this one: no signature
        def sign(self, event: event_pb2.Event) -> event_pb2.Event:
            return event

    sent, clicked = message("SENT"), message("CLICKED")
    with collector(tmp_path) as collect, campaign_service(tmp_path / "c") as service:
        with service.db.connection(write=True) as conn:
            for at, event in ((NOW, sent), (NOW + dt.timedelta(seconds=1), clicked)):
                add_pending_event(conn, service.t, event.event_id, event.SerializeToString(), at, event.user_id)

        async def go(signer: Any) -> list[int]:
            client = CollectClient(collect.address)
            publisher = EventPublisher(service.db, service.t, client, signer=lambda: signer)
            try:
                return [await publisher.run_once(), await publisher.run_once()]
            finally:
                await client.close()

        assert asyncio.run(go(Unsigning())) == [2, 0]  # both refused; the second round: they wait for their retry
        p = service.t["pending_event"]
        with service.db.connection() as conn:
            rows = list(conn.execute(select(p)))
        assert len(rows) == 2
        for row in rows:
            assert row.rejected_reason == "UNSIGNED_SYSTEM_EVENT" and "svc_campaign" in row.rejected_message
            assert row.retry_at is not None  # the old publisher's retry: a minute away

        caplog.set_level(logging.INFO, logger="qiming.campaign.delivery")
        started = time.monotonic()
        assert asyncio.run(go(SIGNER)) == [1, 1]  # the send at once, then the click it held back (customer order)
        assert time.monotonic() - started < 30
        with service.db.connection() as conn:
            assert list(conn.execute(select(p.c.event_id))) == []
        logged = [e for batch, _ in read_batches(collect.address) for e in batch]
        assert [e.event_id for e in logged] == [sent.event_id, clicked.event_id]
        assert all(SIGNER.verify(e) for e in logged)
        assert any("sent again now, signed" in r.getMessage() for r in caplog.records)


def test_svc_campaign_acts_only_on_message_events_it_signed(caplog: pytest.LogCaptureFixture) -> None:
    gate = SignedEventGate(lambda: JsonKeyProvider(KEYRING))
    good, forged = signed(message("CLICKED")), message("CLICKED", user="C2", message_id="forged")
    other = make_event("login", "C1")
    with caplog.at_level(logging.WARNING, logger="qiming.campaign"):
        assert gate.verified([good, forged, other]) == [good, other]
    assert gate.skipped == 1
    (warning,) = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert forged.event_id in warning and "unsigned" in warning and "svc_campaign's signed events" in warning


def test_a_schema_an_older_release_took_for_message_sent_is_ignored(tmp_path: Path) -> None:
    """Earlier releases let a schema be registered on ``$message_sent``; with ``reject_unknown_properties`` it would
    now quarantine every signed one (UNKNOWN_PROPERTY for ``$signature``). It is ignored: the signature is the check,
    and a new one is refused."""

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path)) as (service, catalog):
            stored = SchemaRecord(
                event_type="$message_sent",
                version=1,
                description="registered by an older release",
                properties=[{"name": "message_id", "type": "VALUE_TYPE_STRING", "required": True}],
                reject_unknown=True,
                created_at=dt.datetime.now(dt.UTC),
            )
            catalog.add_schema(stored, 0, "old release")
            service.schemas.load()
            with pytest.raises(InvalidArgument):
                schema = collect_pb2.EventSchema(event_type="$message_clicked")
                await service.schemas.register(schema, 0, "test")
            accepted, refused = await service.ingest([signed(message()), message(message_id="m-2")])
            assert accepted.status == ACCEPTED_RESULT, accepted
            assert refused.status == REJECTED_RESULT and refused.reason == UNSIGNED

    asyncio.run(scenario())
