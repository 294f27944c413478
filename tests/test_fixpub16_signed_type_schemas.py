"""svc_collect took a schema for ``$segment_entered`` (and the other signed system types); with
``reject_unknown_properties`` every one of svc_profile's events was then quarantined (UNKNOWN_PROPERTY for
``$signature``), and the outbox lost them (acceptance walk, finding 1). Registration is now refused, and a schema an
older release stored for such a type is ignored: the signature is their only check."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from pathlib import Path

import pytest
from collect_helpers import KEYRING, collect_settings, running_service

from svc_collect.service import ACCEPTED, REJECTED
from svc_collect.store import SchemaRecord
from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import errors_pb2, types_pb2
from svc_common.protection import (
    SIGNATURE_PROPERTY,
    SIGNED_EVENT_TYPES,
    JsonKeyProvider,
    SystemEventSigner,
    publisher_of,
)
from svc_profile.segevents import segment_event

SIGNER = SystemEventSigner(JsonKeyProvider(KEYRING))
STRICT = [{"name": "segment_id", "type": types_pb2.VALUE_TYPE_STRING, "required": True}]


def test_a_schema_for_a_signed_system_type_is_refused_naming_the_type(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path)) as (service, _):
            for event_type in sorted(SIGNED_EVENT_TYPES):
                schema = collect_pb2.EventSchema(event_type=event_type, properties=STRICT)
                with pytest.raises(InvalidArgument) as refused:
                    await service.schemas.register(schema, 0, "test")
                (violation,) = refused.value.violations
                assert violation.field == "schema.event_type"
                writer = publisher_of(event_type) or "none in this release"
                assert event_type in violation.description and writer in violation.description
            # other reserved types still take one ($message_* are svc_campaign's signed types since session 17)
            other = collect_pb2.EventSchema(event_type="$identify", properties=STRICT)
            assert (await service.schemas.register(other, 0, "test")).version == 1

    asyncio.run(scenario())


def test_a_schema_an_older_release_stored_for_a_signed_type_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path)) as (service, catalog):
            stored = SchemaRecord(
                event_type="$segment_entered",
                version=1,
                description="registered before the refusal",
                properties=[{"name": "segment_id", "type": "VALUE_TYPE_STRING", "required": True}],
                reject_unknown=True,
                created_at=dt.datetime.now(dt.UTC),
            )
            catalog.add_schema(stored, 0, "old release")
            with caplog.at_level(logging.ERROR, logger="qiming.collect.schemas"):
                service.schemas.load()
            assert any(r.event_type == "$segment_entered" for r in caplog.records if hasattr(r, "event_type"))
            assert (await service.schemas.get("$segment_entered")).version == 1  # still listed

            now = time.time_ns() // 1000
            good = SIGNER.sign(segment_event("p-1", "vip", 1, 1, True, now, "event", "", ("c1", "")))
            unsigned = SIGNER.sign(segment_event("p-1", "vip", 1, 2, False, now, "event", "", ("c1", "")))
            del unsigned.properties[SIGNATURE_PROPERTY]
            accepted, refused = await service.ingest([good, unsigned])
            assert accepted.status == ACCEPTED, accepted  # not UNKNOWN_PROPERTY for $signature
            assert refused.status == REJECTED and refused.reason == errors_pb2.ERROR_REASON_UNSIGNED_SYSTEM_EVENT

    asyncio.run(scenario())
