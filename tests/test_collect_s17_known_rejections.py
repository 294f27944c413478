"""A re-sent event the log holds already is answered DUPLICATE even when the checks changed since its first send
(a stricter schema, another unknown-type policy): not REJECTED, not quarantined again, counted as a duplicate
(acceptance walk of 2026-12-06, walkc F1). On every backend of the log."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from collect_helpers import collect_settings, make_event, running_service

from svc_collect.server import _fill_results, encode_ingest_response
from svc_collect.service import DUPLICATE, HELD_MESSAGE, REJECTED, EventOutcome
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import errors_pb2, event_pb2, types_pb2

ACCEPTED = collect_pb2.EVENT_STATUS_ACCEPTED
STRICT = collect_pb2.EventSchema(
    event_type="f1_open",
    properties=[{"name": "app_build", "type": types_pb2.VALUE_TYPE_STRING, "required": True}],
)


def _copy(event: event_pb2.Event) -> event_pb2.Event:
    copy = event_pb2.Event()
    copy.CopyFrom(event)
    return copy


def test_a_retry_refused_by_a_stricter_schema_is_answered_duplicate(log_backend: dict, tmp_path: Path) -> None:
    settings = collect_settings(tmp_path, **log_backend)

    async def scenario() -> None:
        async with running_service(settings) as (service, catalog):
            first = make_event("f1_open", label="one")
            (accepted,) = await service.ingest([_copy(first)])
            assert accepted.status == ACCEPTED
            await service.schemas.register(STRICT, 0, "test")

            same, changed, unknown = _copy(first), _copy(first), make_event("f1_open", label="new")
            changed.properties["label"].string_value = "two"
            outcomes = await service.ingest([same, changed, unknown])
            response = collect_pb2.IngestResponse.FromString(encode_ingest_response(outcomes))
            assert (response.accepted_count, response.duplicate_count, response.rejected_count) == (0, 1, 2)
            assert [r.status for r in response.results] == [DUPLICATE, REJECTED, REJECTED]
            filled = collect_pb2.IngestResponse()
            assert _fill_results(filled, outcomes) == (0, 1, 2)
            assert filled.results == response.results
            results = list(outcomes)

            # The retry is the stored event: a duplicate at its cursor, not quarantined.
            assert (results[0].cursor, results[0].reason, results[0].quarantine_id) == (accepted.cursor, 0, "")
            # Another payload under the stored id is content the log does not hold: refused and kept, as is a new id.
            missing = errors_pb2.ERROR_REASON_MISSING_REQUIRED_PROPERTY
            assert [(r.reason, bool(r.quarantine_id)) for r in results[1:]] == [(missing, True)] * 2
            quarantined = await asyncio.to_thread(catalog.list_quarantine, event_types=["f1_open"])
            assert sorted(q.quarantine_id for q in quarantined) == sorted(r.quarantine_id for r in results[1:])
            stats = await service.stats(None, None, ["f1_open"])
            assert [row[1:] for row in stats.by_type] == [(1, 1, 2)]  # accepted, duplicate, rejected

    asyncio.run(scenario())


def test_jetstream_a_retry_refused_by_another_collector_is_answered_duplicate(jetstream_server, tmp_path: Path) -> None:
    """review17 M1: a collector looked the rejected event's id up in its own index only; one that had not read the
    pack another collector wrote answered REJECTED (and quarantined it again) for an event the stream holds."""
    from collect_helpers import jetstream_settings

    name = f"t{uuid.uuid4().hex[:12]}"
    settings = jetstream_settings(tmp_path, jetstream_server, name)

    async def scenario() -> None:
        async with running_service(settings) as (a, _), running_service(settings) as (b, catalog):
            await b.ingest([make_event("f1_open", label="warm-up")])  # b has read the stream once
            first = make_event("f1_open", label="one")
            (stored,) = await a.ingest([_copy(first)])
            assert stored.status == ACCEPTED
            await b.schemas.register(STRICT, 0, "test")
            (retry,) = await b.ingest([_copy(first)])
            assert (retry.status, retry.cursor, retry.quarantine_id) == (DUPLICATE, stored.cursor, "")
            assert await asyncio.to_thread(catalog.list_quarantine) == []

    asyncio.run(scenario())


def test_jetstream_a_failed_catch_up_before_the_look_up_does_not_fail_the_call(
    jetstream_server, tmp_path: Path, monkeypatch
) -> None:
    """The group's events are published by then: a failed read of the other collectors' packs is answered from this
    collector's index, not by failing a call whose events are in the log."""
    from collect_helpers import jetstream_settings

    from svc_collect.store.jetstream import JetStreamEventLog
    from svc_common.errors import Unavailable

    settings = jetstream_settings(tmp_path, jetstream_server, f"t{uuid.uuid4().hex[:12]}")

    async def scenario() -> None:
        async with running_service(settings) as (service, _):
            first = make_event("f1_open", label="one")
            (stored,) = await service.ingest([_copy(first)])
            await service.schemas.register(STRICT, 0, "test")

            async def unreachable(self) -> None:
                raise Unavailable("NATS is gone", reason="LOG_UNAVAILABLE")

            monkeypatch.setattr(JetStreamEventLog, "_read_all_news", unreachable)
            fresh = make_event("f1_open", label="new")
            retry, refused = await service.ingest([_copy(first), fresh])
            assert (retry.status, retry.cursor) == (DUPLICATE, stored.cursor)
            assert refused.status == REJECTED and refused.quarantine_id

    asyncio.run(scenario())


def test_an_event_with_a_bad_id_is_still_quarantined(tmp_path: Path) -> None:
    settings = collect_settings(tmp_path)

    async def scenario() -> None:
        async with running_service(settings) as (service, catalog):
            event = make_event("f1_open")
            event.event_id = "not-a-uuid"
            (result,) = await service.ingest([event])
            assert isinstance(result, EventOutcome)
            assert result.status == REJECTED and result.reason == errors_pb2.ERROR_REASON_INVALID_EVENT_ID
            assert [q.event_id for q in await asyncio.to_thread(catalog.list_quarantine)] == ["not-a-uuid"]

    asyncio.run(scenario())


def test_a_replay_under_an_id_another_payload_holds_stays_quarantined(database_url: str, tmp_path: Path) -> None:
    """walkc F4: the replay answered DUPLICATE PAYLOAD_MISMATCH but counted it accepted and released the record, so
    content the log never stored dropped out of the quarantine's listing."""
    import grpc
    from collect_helpers import KEYRING

    from svc_common.pb.qiming.collect.v1 import collect_pb2_grpc
    from svc_common.process import ServerProcess

    env = {"QIMING_COLLECT_KEYRING_JSON": KEYRING}
    if database_url:
        env["QIMING_COLLECT_DATABASE_URL"] = database_url
    with ServerProcess("collect", work_dir=tmp_path, env=env) as server, grpc.insecure_channel(server.address) as ch:
        collect = collect_pb2_grpc.CollectServiceStub(ch)
        schemas = collect_pb2_grpc.EventSchemaServiceStub(ch)
        quarantine = collect_pb2_grpc.QuarantineServiceStub(ch)
        schemas.RegisterEventSchema(collect_pb2.RegisterEventSchemaRequest(schema=STRICT), timeout=10)
        original = make_event("f1_open", label="first")
        (rejected,) = collect.Ingest(collect_pb2.IngestRequest(events=[original]), timeout=10).results
        assert rejected.status == REJECTED
        corrected = _copy(original)
        corrected.properties["app_build"].string_value = "1.2"
        (stored,) = collect.Ingest(collect_pb2.IngestRequest(events=[corrected]), timeout=10).results
        assert stored.status == ACCEPTED
        relaxed = collect_pb2.EventSchema(event_type="f1_open")
        schemas.RegisterEventSchema(
            collect_pb2.RegisterEventSchemaRequest(schema=relaxed, expected_version=1), timeout=10
        )

        request = collect_pb2.ReplayQuarantinedEventsRequest(quarantine_ids=[rejected.quarantine_id])
        replayed = quarantine.ReplayQuarantinedEvents(request, timeout=10)
        (result,) = replayed.results
        assert (result.status, result.reason) == (DUPLICATE, errors_pb2.ERROR_REASON_PAYLOAD_MISMATCH)
        assert result.cursor == stored.cursor
        assert (replayed.accepted_count, replayed.still_rejected_count) == (0, 1)
        listed = quarantine.ListQuarantinedEvents(collect_pb2.ListQuarantinedEventsRequest(), timeout=10).events
        assert [(q.quarantine_id, q.reason, q.replay_count) for q in listed] == [
            (rejected.quarantine_id, errors_pb2.ERROR_REASON_PAYLOAD_MISMATCH, 1)
        ]


def test_allowed_values_on_a_list_or_timestamp_property_name_the_field(tmp_path: Path) -> None:
    """walkc F2: such a schema failed INTERNAL (a message is no set member)."""
    import pytest

    from svc_common.errors import InvalidArgument

    settings = collect_settings(tmp_path)
    listed = types_pb2.Value()
    listed.string_list_value.values.append("a")
    stamped = types_pb2.Value()
    stamped.timestamp_value.FromSeconds(1_700_000_000)

    async def scenario() -> None:
        async with running_service(settings) as (service, _):
            for value_type, value in (
                (types_pb2.VALUE_TYPE_STRING_LIST, listed),
                (types_pb2.VALUE_TYPE_STRING_LIST, types_pb2.Value(string_value="a")),
                (types_pb2.VALUE_TYPE_TIMESTAMP, stamped),
            ):
                spec = collect_pb2.PropertySpec(name="p", type=value_type, allowed_values=[value])
                with pytest.raises(InvalidArgument) as refused:
                    await service.schemas.register(collect_pb2.EventSchema(event_type="t", properties=[spec]), 0, "x")
                assert [v.field for v in refused.value.violations] == ["schema.properties[0].allowed_values"]

    asyncio.run(scenario())


def test_a_schema_on_a_signed_type_names_the_service_that_writes_it(tmp_path: Path) -> None:
    import pytest

    from svc_common.errors import InvalidArgument

    settings = collect_settings(tmp_path)

    async def scenario() -> None:
        async with running_service(settings) as (service, _):
            for event_type, writer in (
                ("$message_sent", "only svc_campaign writes it"),
                ("$segment_entered", "only svc_profile writes it"),
                ("$score_written", "none in this release"),
            ):
                with pytest.raises(InvalidArgument) as refused:
                    await service.schemas.register(collect_pb2.EventSchema(event_type=event_type), 0, "x")
                (violation,) = refused.value.violations
                assert violation.field == "schema.event_type" and writer in violation.description

    asyncio.run(scenario())


def test_a_quarantined_event_the_log_holds_since_is_released_by_a_replay(log_backend: dict, tmp_path: Path) -> None:
    """review17 m1: the record of an event later sent again and accepted (the same bytes) replayed REJECTED under a
    strict schema and stayed listed as unresolved for ever; it is the stored event: released at its cursor."""
    settings = collect_settings(tmp_path, **log_backend)

    async def scenario() -> None:
        async with running_service(settings) as (service, catalog):
            await service.schemas.register(STRICT, 0, "test")
            event = make_event("f1_open", label="one")
            (refused,) = await service.ingest([_copy(event)])
            assert refused.status == REJECTED
            await service.schemas.register(collect_pb2.EventSchema(event_type="f1_open"), 1, "test")
            (stored,) = await service.ingest([_copy(event)])
            assert stored.status == ACCEPTED
            await service.schemas.register(STRICT, 2, "test")
            other = make_event("f1_open", label="never sent again")
            (hopeless,) = await service.ingest([other])

            records = await asyncio.to_thread(catalog.get_quarantined, [refused.quarantine_id, hopeless.quarantine_id])
            results = {r.quarantine_id: r for r in await service.replay(records)}
            released, still = results[refused.quarantine_id], results[hopeless.quarantine_id]
            assert (released.status, released.cursor, released.reason) == (DUPLICATE, stored.cursor, 0)
            assert released.message == HELD_MESSAGE  # not "released by an earlier replay" (review17b)
            assert still.status == REJECTED
            listed = await asyncio.to_thread(catalog.list_quarantine, event_types=["f1_open"])
            assert [q.quarantine_id for q in listed] == [hopeless.quarantine_id]
            (record,) = await asyncio.to_thread(catalog.get_quarantined, [refused.quarantine_id])
            assert record.released_seq is not None and service.cursor(record.released_seq) == stored.cursor
            # Named again, it is the usual "released by an earlier replay".
            (again,) = await service.replay([record])
            assert (again.status, again.cursor) == (DUPLICATE, stored.cursor)

    asyncio.run(scenario())
