"""Undeclared personal data over real gRPC: svc_collect's ``undeclared_pii`` policies (seal, mask, reject, off) on
string properties and context fields no schema protects, what readers and svc_profile's consumer then see, and that
the values never reach logs, quarantine reasons or the stored rows in clear."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from collect_helpers import collect_settings, make_event
from grpc import aio
from server_helpers import served
from test_pii15_detect import ID, UNIONPAY

from svc_collect.server import build_spec
from svc_collect.store import SCHEMA
from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import errors_pb2, event_pb2, types_pb2
from svc_common.runtime import ServiceRuntime
from svc_common.server._call import Principal

MOBILE = "13812345678"
EMAIL = "zhang.san@example.com"
SECRETS = (MOBILE, ID, UNIONPAY, EMAIL, "1234 5678")
UNDECLARED = collect_pb2.PropertySpec(name="comment", type=types_pb2.VALUE_TYPE_STRING)
DECLARED = collect_pb2.PropertySpec(
    name="contact", type=types_pb2.VALUE_TYPE_STRING, sensitivity=types_pb2.SENSITIVITY_LEVEL_3
)
R = errors_pb2.ErrorReason


class RolesFromMetadata:
    """The caller holds the roles its ``x-roles`` metadata names (comma-separated)."""

    async def authenticate(self, method: str, metadata: Mapping[str, str], peer: str) -> Principal:
        roles = frozenset(r for r in metadata.get("x-roles", "").split(",") if r)
        return Principal(subject="test", roles=roles, authenticated=True)


UNMASK = (("x-roles", "unmask"),)


@contextlib.asynccontextmanager
async def collector(tmp_path: Path, **overrides: Any) -> AsyncIterator[aio.Channel]:
    settings = collect_settings(tmp_path, grpc_host="127.0.0.1", grpc_port=0, **overrides)
    runtime = await asyncio.to_thread(ServiceRuntime.open, SCHEMA, settings)
    try:
        async with served(build_spec(runtime), settings, hooks=True, authenticator=RolesFromMetadata()) as channel:
            yield channel
    finally:
        runtime.database.dispose()


def feedback_event(**properties: str) -> event_pb2.Event:
    event = make_event("feedback", "c1", **properties)
    event.context.screen = "feedback"
    event.context.page_url = f"https://m.example.com/bind?mobile={MOBILE}&from=app"
    return event


async def register(channel: aio.Channel, *specs: collect_pb2.PropertySpec, version: int = 0) -> None:
    schema = collect_pb2.EventSchema(event_type="feedback", properties=specs)
    await collect_pb2_grpc.EventSchemaServiceStub(channel).RegisterEventSchema(
        collect_pb2.RegisterEventSchemaRequest(schema=schema, expected_version=version), timeout=10
    )


async def ingest(channel: aio.Channel, *events: event_pb2.Event) -> collect_pb2.IngestResponse:
    return await collect_pb2_grpc.CollectServiceStub(channel).Ingest(
        collect_pb2.IngestRequest(events=events), timeout=10
    )


async def read(channel: aio.Channel, unmask: bool = False) -> list[event_pb2.Event]:
    call = collect_pb2_grpc.CollectServiceStub(channel).ReadEvents(
        collect_pb2.ReadEventsRequest(unmask=unmask), timeout=10, metadata=UNMASK if unmask else None
    )
    return [e async for response in call for e in response.events]


def stored_bytes(tmp_path: Path) -> bytes:
    settings = collect_settings(tmp_path)
    engine = sa.create_engine(settings.resolved_database_url())
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT payload, sealed_values FROM collect_event")).all()
        quarantined = conn.execute(sa.text("SELECT * FROM collect_quarantine")).all()
    engine.dispose()
    blob = b"".join(bytes(p) + (bytes(s) if s else b"") for p, s in rows)
    return blob + repr(quarantined).encode()


def assert_nowhere(caplog: pytest.LogCaptureFixture, *texts: str) -> None:
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records  # the server did log (calls, starts): the check below has something to look at
    for text in texts:
        assert text not in logged


def test_seal_by_default_withholds_found_values_like_level_3_and_unmask_restores_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario() -> tuple[list[event_pb2.Event], list[event_pb2.Event]]:
        async with collector(tmp_path) as channel:
            await register(channel, UNDECLARED, DECLARED)
            event = feedback_event(
                comment=f"please call {MOBILE} or mail {EMAIL}",
                contact="13900001111",  # declared level 3: sealed by its schema, once
                note=f"card {' '.join(UNIONPAY[i : i + 4] for i in range(0, 19, 4))}",
                order_id="20261206141000123",
                sent_ms="1765012345678",
            )
            event.properties["ids"].string_list_value.values.extend(["none", ID])
            reply = await ingest(channel, event)
            assert reply.accepted_count == 1, reply
            return await read(channel), await read(channel, unmask=True)

    (masked,), (clear,) = asyncio.run(scenario())
    found = ["comment", "note", "ids", "context.page_url"]
    assert sorted(masked.masked_fields) == sorted(["contact", *found])
    assert list(masked.masked_fields).count("contact") == 1
    assert sorted(masked.flags) == sorted(f"personal_data_sealed:{f}" for f in found)  # not contact: declared
    assert set(masked.properties) == {"order_id", "sent_ms"}  # the look-alikes stay, in clear
    assert masked.context.screen == "feedback" and not masked.context.page_url
    assert clear.properties["comment"].string_value == f"please call {MOBILE} or mail {EMAIL}"
    assert list(clear.properties["ids"].string_list_value.values) == ["none", ID]
    assert clear.properties["contact"].string_value == "13900001111"
    assert clear.context.page_url.endswith(f"mobile={MOBILE}&from=app") and not clear.masked_fields
    blob = stored_bytes(tmp_path)
    for secret in (MOBILE, ID, UNIONPAY[:4] + " " + UNIONPAY[4:8], EMAIL, "13900001111"):
        assert secret.encode() not in blob
    assert_nowhere(caplog, *SECRETS)


def test_svc_profile_consumes_sealed_values_as_it_consumes_declared_level_3(tmp_path: Path) -> None:
    """svc_profile reads the log masked (LogClient.read): a found value is absent from what it retains and counts,
    as a declared level-3 property is."""
    from profile_helpers import profile_settings

    from svc_profile.features import FeatureUpdater

    async def scenario() -> list[event_pb2.Event]:
        async with collector(tmp_path / "collect") as channel:
            await register(channel, UNDECLARED, DECLARED)
            await ingest(channel, feedback_event(comment=f"call {MOBILE}", contact="13900001111", label="ok"))
            return await read(channel)

    events = asyncio.run(scenario())
    (tmp_path / "profile").mkdir()
    updater = FeatureUpdater(profile_settings(tmp_path / "profile", event_retention_days=30))
    docs: dict[str, dict[str, Any]] = {"p1": {}}
    _, rows = updater.apply(docs, ["p1"], events)
    (row,) = rows
    text = repr(row)
    assert MOBILE not in text and "13900001111" not in text
    assert '{"label":["s","ok"]}' in row  # the rest of the event is retained as ever
    assert row[-1] is None  # its context_fields: the sealed page_url is not among them (screen has its column)
    assert docs["p1"]["events_total"] == ("i", 1)


def test_mask_replaces_found_values_in_place(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario() -> tuple[list[event_pb2.Event], list[event_pb2.Event]]:
        async with collector(tmp_path, undeclared_pii="mask") as channel:
            await register(channel, UNDECLARED, DECLARED)
            reply = await ingest(channel, feedback_event(comment=f"call {MOBILE}, id {ID}", contact="13900001111"))
            assert reply.accepted_count == 1
            return await read(channel), await read(channel, unmask=True)

    (masked,), (clear,) = asyncio.run(scenario())
    assert masked.properties["comment"].string_value == f"call ****5678, id ****{ID[-4:]}"
    assert masked.context.page_url == "https://m.example.com/bind?mobile=****5678&from=app"
    assert sorted(masked.flags) == ["personal_data_masked:comment", "personal_data_masked:context.page_url"]
    assert list(masked.masked_fields) == ["contact"]  # the declared property is sealed as ever
    assert clear.properties["comment"].string_value == masked.properties["comment"].string_value  # gone for good
    assert clear.properties["contact"].string_value == "13900001111"
    assert MOBILE.encode() not in stored_bytes(tmp_path).replace(b"13900001111", b"")
    assert_nowhere(caplog, *SECRETS)


def test_reject_quarantines_the_event_naming_the_field_never_the_value(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario() -> None:
        async with collector(tmp_path, undeclared_pii="reject") as channel:
            await register(channel, UNDECLARED)
            bad = feedback_event(comment=f"call {MOBILE}")
            bad.ClearField("context")
            fine = feedback_event(comment="all good")
            fine.ClearField("context")
            reply = await ingest(channel, bad, fine)
            assert (reply.accepted_count, reply.rejected_count) == (1, 1)
            result = reply.results[0]
            assert result.reason == R.ERROR_REASON_UNDECLARED_PERSONAL_DATA
            assert result.field == "properties.comment" and "a mobile number" in result.message
            assert MOBILE not in result.message

            quarantine = collect_pb2_grpc.QuarantineServiceStub(channel)
            request = collect_pb2.ListQuarantinedEventsRequest(reasons=[R.ERROR_REASON_UNDECLARED_PERSONAL_DATA])
            (listed,) = (await quarantine.ListQuarantinedEvents(request, timeout=10)).events
            assert listed.field == "properties.comment" and MOBILE not in listed.message
            assert "comment" not in listed.event.properties and list(listed.event.masked_fields) == ["comment"]
            request.unmask = True
            (opened,) = (await quarantine.ListQuarantinedEvents(request, timeout=10, metadata=UNMASK)).events
            assert opened.event.properties["comment"].string_value == f"call {MOBILE}"

            # Still undeclared: a replay rejects it again. Declared at level 3: it enters the log, sealed.
            replay = collect_pb2.ReplayQuarantinedEventsRequest(quarantine_ids=[listed.quarantine_id])
            again = await quarantine.ReplayQuarantinedEvents(replay, timeout=10)
            assert again.still_rejected_count == 1
            assert again.results[0].reason == R.ERROR_REASON_UNDECLARED_PERSONAL_DATA
            level3 = collect_pb2.PropertySpec()
            level3.CopyFrom(UNDECLARED)
            level3.sensitivity = types_pb2.SENSITIVITY_LEVEL_3
            await register(channel, level3, version=1)
            released = await quarantine.ReplayQuarantinedEvents(replay, timeout=10)
            assert released.accepted_count == 1
            replayed = [e for e in await read(channel) if e.event_id == bad.event_id]
            assert [list(e.masked_fields) for e in replayed] == [["comment"]] and not replayed[0].flags

    asyncio.run(scenario())
    assert_nowhere(caplog, MOBILE)


def test_a_context_field_is_rejected_by_its_name(tmp_path: Path) -> None:
    async def scenario() -> collect_pb2.EventResult:
        async with collector(tmp_path, undeclared_pii="reject") as channel:
            event = make_event("page_view", "c1")
            event.context.referrer = f"https://x.example/?card={UNIONPAY}"
            return (await ingest(channel, event)).results[0]

    result = asyncio.run(scenario())
    assert result.reason == R.ERROR_REASON_UNDECLARED_PERSONAL_DATA
    assert result.field == "context.referrer" and "a bank card number" in result.message
    assert UNIONPAY not in result.message


def test_off_stores_values_as_sent(tmp_path: Path) -> None:
    async def scenario() -> list[event_pb2.Event]:
        async with collector(tmp_path, undeclared_pii="off") as channel:
            await ingest(channel, feedback_event(comment=f"call {MOBILE}"))
            return await read(channel)

    (event,) = asyncio.run(scenario())
    assert event.properties["comment"].string_value == f"call {MOBILE}" and not event.masked_fields
    assert not event.flags


def test_an_unknown_policy_is_a_configuration_error(tmp_path: Path) -> None:
    from svc_common.errors import ConfigError

    with pytest.raises(ConfigError):
        collect_settings(tmp_path, undeclared_pii="drop")
