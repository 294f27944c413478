"""Security review F0: any producer could ingest ``$profile_erased`` (svc_campaign then ended the customer's journeys
and blanked their contact history while svc_profile still held them) or ``$segment_entered`` / ``$segment_exited``.
svc_profile now signs those events (HMAC-SM3 under a key derived from the shared keyring), svc_collect refuses one
without a valid signature, and svc_campaign acts only on one that verifies."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest
from campaign_helpers import add_template, campaign_service, event, run_journey, wait_then_send
from collect_helpers import KEYRING, make_event
from profile_helpers import collector, profile_app, profile_process, profile_settings, ref, wait_for
from sqlalchemy import select

from svc_common.conditions import to_proto
from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import errors_pb2, event_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as ppb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pgrpc
from svc_common.protection import SIGNATURE_PROPERTY, JsonKeyProvider, SystemEventSigner, generate_keyring
from svc_common.protection._signing import SIGNED_PROPERTIES, signed_bytes
from svc_profile.erasure import erasure_events
from svc_profile.segevents import segment_event
from svc_profile.segments import OutboxPublisher

SIGNER = SystemEventSigner(JsonKeyProvider(KEYRING))
OTHER_KEYRING = SystemEventSigner(JsonKeyProvider(generate_keyring().to_json()))
UNSIGNED = errors_pb2.ERROR_REASON_UNSIGNED_SYSTEM_EVENT
NOW_US = time.time_ns() // 1000


def erased(customer: str, profile_id: str = "p-1") -> event_pb2.Event:
    (out,) = erasure_events(profile_id, [customer], NOW_US, SIGNER)
    return out


def entered(customer: str, segment_id: str = "vip", member: bool = True) -> event_pb2.Event:
    return SIGNER.sign(segment_event("p-1", segment_id, 3, 1, member, NOW_US, "event", "", (customer, "")))


def unsigned(signed: event_pb2.Event) -> event_pb2.Event:
    out = event_pb2.Event()
    out.CopyFrom(signed)
    del out.properties[SIGNATURE_PROPERTY]
    return out


def tampered(signed: event_pb2.Event, change: Any) -> event_pb2.Event:
    out = event_pb2.Event()
    out.CopyFrom(signed)
    change(out)
    return out


def test_a_signature_covers_the_ids_the_time_and_what_the_consumer_acts_on() -> None:
    erasure, segment = erased("C1"), entered("C1")
    assert SIGNER.verify(erasure) and SIGNER.verify(segment)
    assert erasure.properties[SIGNATURE_PROPERTY].string_value.startswith("se1:")
    # made again (a retried deletion, a replayed outbox row): the same bytes, the same signature
    assert erased("C1").SerializeToString(deterministic=True) == erasure.SerializeToString(deterministic=True)

    def setter(field: str, value: Any) -> Any:
        return lambda e: setattr(e, field, value)

    def prop(name: str, value: str) -> Any:
        return lambda e: setattr(e.properties[name], "string_value", value)

    for change in (
        setter("user_id", "C2"),
        setter("event_id", str(uuid.uuid4())),
        setter("event_type", "$segment_exited"),
        lambda e: e.occurred_at.FromMicroseconds(NOW_US + 1),
        prop("profile_id", "p-2"),
    ):
        assert not SIGNER.verify(tampered(erasure, change))
    for change in (
        setter("user_id", "C2"),
        prop("segment_id", "other"),
        prop("profile_id", "p-2"),
        lambda e: setattr(e.properties["segment_version"], "int_value", 4),
        lambda e: e.properties.pop("cause"),
    ):
        assert not SIGNER.verify(tampered(segment, change))
    assert not SIGNER.verify(unsigned(erasure))
    assert not OTHER_KEYRING.verify(erasure)  # another keyring's key
    assert not SIGNER.verify(tampered(erasure, lambda e: setattr(e.properties[SIGNATURE_PROPERTY], "int_value", 1)))
    # an upper-case event id is the same event to svc_collect (it lowers it) and to the signature
    assert SIGNER.verify(tampered(erasure, setter("event_id", erasure.event_id.upper())))


def _spec_bytes(event: event_pb2.Event) -> bytes:
    """What the module's docstring says is signed, written from it: each part as a 4-byte big-endian length and its
    bytes."""
    props = event.properties
    parts = [b"qiming/system-event/v1", event.event_type.encode(), event.event_id.lower().encode()]
    parts += [event.user_id.encode(), event.anonymous_id.encode()]
    parts += [str(event.occurred_at.seconds).encode(), str(event.occurred_at.nanos).encode()]
    for name in SIGNED_PROPERTIES.get(event.event_type, ()):
        parts += [name.encode(), b"=" + props[name].SerializeToString(deterministic=True) if name in props else b""]
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def test_the_signed_bytes_are_the_documented_encoding_for_every_signed_type() -> None:
    for event_type in [*sorted(SIGNED_PROPERTIES), "page_view"]:
        names = SIGNED_PROPERTIES.get(event_type, ())
        for present in (names, names[::2], ()):
            event = event_pb2.Event(event_id=str(uuid.uuid4()).upper(), event_type=event_type, user_id="客户-1")
            event.occurred_at.FromMicroseconds(NOW_US + 7)
            for i, name in enumerate(present):
                if i % 3 == 0:
                    event.properties[name].string_value = f"值{i}"
                elif i % 3 == 1:
                    event.properties[name].int_value = -i
                else:
                    event.properties[name].SetInParent()  # an empty Value: present, not absent
            event.properties["other"].string_value = "not signed"
            assert signed_bytes(event) == _spec_bytes(event), (event_type, present)


def test_segment_events_are_queued_unsigned_and_signed_as_the_outbox_publishes_them() -> None:
    """The outbox signs every event it sends (with the keyring it has then), so the transitions it queues are made
    unsigned: they were signed twice, the first about a fifth of a recompute's time."""
    made = segment_event("p-9", "高净值", 2**40, 7, True, NOW_US, "recompute", "e-1", ("", "dev-1"))
    assert SIGNATURE_PROPERTY not in made.properties and not SIGNER.verify(made)
    assert SIGNER.verify(SIGNER.sign(made))


def test_forged_system_events_are_rejected_at_ingest_and_kept_in_quarantine(tmp_path: Path) -> None:
    with collector(tmp_path) as collect, grpc.insecure_channel(collect.address) as channel:
        stub = collect_pb2_grpc.CollectServiceStub(channel)
        forged = [
            unsigned(erased("C3001")),  # the review's repro: a plain $profile_erased
            unsigned(entered("C3001")),
            OTHER_KEYRING.sign(unsigned(entered("C3001", member=False))),  # signed, but not with our keyring
            tampered(erased("C1"), lambda e: setattr(e, "user_id", "C3001")),  # a real one, redirected
        ]
        fine = [
            erased("C1"),
            entered("C1"),
            SIGNER.sign(make_event("$message_clicked", "C3001", message_id="m-1")),  # svc_campaign's: signed too
            make_event("$identify", "C3001"),
        ]
        response = stub.Ingest(collect_pb2.IngestRequest(events=forged + fine), timeout=10)
        results = list(response.results)
        assert [(r.status, r.reason, r.field) for r in results[:4]] == [
            (collect_pb2.EVENT_STATUS_REJECTED, UNSIGNED, f"properties.{SIGNATURE_PROPERTY}")
        ] * 4
        assert "unsigned" in results[0].message and "upgrade svc_profile first" in results[0].message
        assert "does not verify" in results[2].message and "does not verify" in results[3].message
        assert [r.status for r in results[4:]] == [collect_pb2.EVENT_STATUS_ACCEPTED] * 4
        assert response.accepted_count == 4 and response.rejected_count == 4

        quarantine = collect_pb2_grpc.QuarantineServiceStub(channel)
        listed = quarantine.ListQuarantinedEvents(
            collect_pb2.ListQuarantinedEventsRequest(reasons=[UNSIGNED]), timeout=10
        )
        assert sorted(q.event.event_id for q in listed.events) == sorted(e.event_id for e in forged)
        replay = quarantine.ReplayQuarantinedEvents(
            collect_pb2.ReplayQuarantinedEventsRequest(reasons=[UNSIGNED]), timeout=10
        )
        assert replay.accepted_count == 0 and replay.still_rejected_count == 4  # a signature cannot come later
        request = collect_pb2.ReadEventsRequest(event_types=["$profile_erased", "$segment_entered", "$segment_exited"])
        in_log = [e for r in stub.ReadEvents(request, timeout=10) for e in r.events]
        assert [e.user_id for e in in_log] == ["C1", "C1"] and all(SIGNER.verify(e) for e in in_log)


class LogWith:
    """Stands in for svc_collect to svc_campaign's log follower: a log holding ``events``."""

    address = "in-test"

    def __init__(self, events: list[event_pb2.Event]) -> None:
        self.events = events

    async def wait_reachable(self, timeout: float) -> bool:
        return True

    async def read(self, after: str, *, event_types: Any = (), follow: bool = False, batch_size: int = 1000) -> Any:
        if after != "end":
            yield list(self.events), "end"
        if follow:
            await asyncio.Event().wait()

    async def publish(self, events: list[event_pb2.Event]) -> collect_pb2.IngestResponse:
        return collect_pb2.IngestResponse(
            results=[
                collect_pb2.EventResult(index=i, event_id=e.event_id, status=collect_pb2.EVENT_STATUS_ACCEPTED)
                for i, e in enumerate(events)
            ]
        )

    async def close(self) -> None:
        pass


def _follow_once(service: Any) -> None:
    async def go() -> None:
        await service.start()
        try:
            await asyncio.wait_for(service.follower.caught_up.wait(), 30)
        finally:
            await service.stop()

    asyncio.run(go())


def _exits(service: Any) -> dict[str, str]:
    with service.db.connection() as conn:
        i = service.t["instance"].c
        return {row.user_id: row.exit_reason or "" for row in conn.execute(select(i.user_id, i.exit_reason))}


def test_campaign_acts_only_on_signed_system_events_in_the_log(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    forged_erasure = unsigned(erased("c1"))  # in the log from before svc_collect refused it
    other_keyring = OTHER_KEYRING.sign(unsigned(erased("c3")))
    log = LogWith([forged_erasure, other_keyring, erased("c2")])
    with campaign_service(tmp_path, database_url, collect=log, keys=JsonKeyProvider(KEYRING)) as service:
        add_template(service, "t1")
        run_journey(service, wait_then_send(), "waiting")
        service.engine.handle([event("signup", c) for c in ("c1", "c2", "c3")])
        with caplog.at_level(logging.WARNING, logger="qiming.campaign"):
            _follow_once(service)
        assert _exits(service) == {"c1": "", "c2": "customer_erased", "c3": ""}
        assert service.signed_events.skipped == 2
        warnings = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
        assert len(warnings) == 2
        assert forged_erasure.event_id in warnings[0] and "$profile_erased" in warnings[0] and "unsigned" in warnings[0]
        assert other_keyring.event_id in warnings[1] and "does not verify" in warnings[1]
        # the follower moved past them: a restart does not meet them again
        assert service.engine.load_cursor() == "end"


def test_the_erasure_svc_profile_publishes_is_signed_accepted_and_acted_on(tmp_path: Path, database_url: str) -> None:
    """DeleteProfile in a real svc_profile → its outbox → svc_collect's Ingest → the log → svc_campaign."""
    with collector(tmp_path) as collect, profile_process(tmp_path, collect.address) as profile:
        with grpc.insecure_channel(profile.address) as channel:
            profiles = pgrpc.ProfileServiceStub(channel)
            attributes = {"risk_rating": to_proto("C3")}
            for customer in ("c1", "c2"):
                profiles.UpsertAttributes(
                    ppb.UpsertAttributesRequest(user=ref(customer), attributes=attributes, source_system="crm"),
                    timeout=10,
                )
            profiles.DeleteProfile(ppb.DeleteProfileRequest(user=ref("c1"), reason="PIPL-2026-1"), timeout=10)
        with grpc.insecure_channel(collect.address) as channel:
            stub = collect_pb2_grpc.CollectServiceStub(channel)
            request = collect_pb2.ReadEventsRequest(event_types=["$profile_erased"])

            def published() -> list[event_pb2.Event]:
                return [e for r in stub.ReadEvents(request, timeout=10) for e in r.events]

            in_log = wait_for(published)
    assert [e.user_id for e in in_log] == ["c1"] and SIGNER.verify(in_log[0])
    with campaign_service(tmp_path, database_url, collect=LogWith(in_log), keys=JsonKeyProvider(KEYRING)) as service:
        add_template(service, "t1")
        run_journey(service, wait_then_send(), "waiting")
        service.engine.handle([event("signup", c) for c in ("c1", "c2")])
        _follow_once(service)
        assert _exits(service) == {"c1": "customer_erased", "c2": ""}
        assert service.signed_events.skipped == 0


def test_an_outbox_row_queued_unsigned_by_the_previous_release_is_signed_when_published(tmp_path: Path) -> None:
    class Sink:
        def __init__(self) -> None:
            self.events: list[event_pb2.Event] = []

        async def publish(self, events: list[event_pb2.Event]) -> collect_pb2.IngestResponse:
            self.events.extend(events)
            return collect_pb2.IngestResponse(
                results=[
                    collect_pb2.EventResult(index=i, event_id=e.event_id, status=collect_pb2.EVENT_STATUS_ACCEPTED)
                    for i, e in enumerate(events)
                ]
            )

    with profile_app(profile_settings(tmp_path)) as app:
        legacy = unsigned(erased("C9"))
        with app.core.database.connection(write=True) as conn:
            row = {"event_id": legacy.event_id, "body": legacy.SerializeToString(), "created_us": NOW_US}
            app.core.store.add_outbox(conn, [row])
        sink = Sink()
        assert asyncio.run(OutboxPublisher(app.core, sink).drain()) == 1
        assert [e.event_id for e in sink.events] == [legacy.event_id] and SIGNER.verify(sink.events[0])
