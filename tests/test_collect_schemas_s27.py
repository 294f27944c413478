"""Findings of the schema walk of session 27: a stored `$identify`/`$alias` version this release cannot apply was
ignored (the type then had no schema, and the level 3 property that version declares was stored in clear);
GetEventSchema and ListEventSchemas answered INTERNAL for such a version; and the schema poll could put back, with
what it had read before, a version the same collector had just registered (its protection too)."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import threading
import time
from pathlib import Path

import pytest
from collect_helpers import collect_settings, make_event, running_service, serving_collect

from svc_collect.store import SchemaRecord
from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import types_pb2

# An enum value this release does not know (a newer release stored it).
NEWER = {"name": "risk_answer", "type": "VALUE_TYPE_STRING", "sensitivity": "SENSITIVITY_LEVEL_3", "protection": "X"}
SECRET = "ZZ-secret-3"


def synchronous(test):
    """An ``async def`` test run by ``asyncio.run`` (the suite has no asyncio plugin)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return run


def _stored(catalog, event_type: str, spec: dict) -> None:
    catalog.add_schema(SchemaRecord(event_type, 1, "", [spec], False, dt.datetime.now(dt.UTC)), 0, "newer")


@pytest.mark.parametrize("event_type", ["$identify", "$alias", "trade"])
@synchronous
async def test_an_unusable_stored_schema_of_a_schema_checked_type_quarantines_its_events(
    tmp_path: Path, event_type: str
) -> None:
    settings = collect_settings(tmp_path)
    async with running_service(settings) as (_, catalog):
        _stored(catalog, event_type, NEWER)
    async with running_service(settings) as (service, _):
        event = make_event(event_type, "c1", risk_answer=SECRET)
        event.anonymous_id = "a1"
        (outcome,) = await service.ingest([event])
        assert outcome.status == collect_pb2.EVENT_STATUS_REJECTED
        assert "cannot be applied" in outcome.message
        page = service.event_log.read(0, 10, [event_type])
        assert not page.events  # nothing stored, in clear or otherwise


@synchronous
async def test_schemas_a_newer_release_stored_are_listed_not_internal(tmp_path: Path) -> None:
    async with running_service(collect_settings(tmp_path)) as (_, catalog):
        _stored(catalog, "apple", {"name": "side", "type": "VALUE_TYPE_STRING"})
        _stored(catalog, "trade", {**NEWER, "keep_days": 9})  # a field this release does not know
    async with serving_collect(tmp_path) as served:
        stub = collect_pb2_grpc.EventSchemaServiceStub(served.channel)
        got = await stub.GetEventSchema(collect_pb2.GetEventSchemaRequest(event_type="trade"))
        assert [p.name for p in got.schema.properties] == ["risk_answer"]
        listed = await stub.ListEventSchemas(collect_pb2.ListEventSchemasRequest())
        assert [s.event_type for s in listed.schemas] == ["apple", "trade"]


def _survey(level: int) -> collect_pb2.EventSchema:
    schema = collect_pb2.EventSchema(event_type="survey")
    schema.properties.add(name="note", type=types_pb2.VALUE_TYPE_STRING, sensitivity=level)
    return schema


@synchronous
async def test_a_poll_read_begun_before_a_registration_does_not_put_the_older_version_back(tmp_path: Path) -> None:
    async with running_service(collect_settings(tmp_path)) as (service, catalog):
        registry = service.schemas
        await registry.register(_survey(types_pb2.SENSITIVITY_LEVEL_2), 0, "ops")
        reading, original = threading.Event(), catalog.latest_schemas

        def slow_latest(*args, **kwargs):
            rows = original(*args, **kwargs)
            if not args and not kwargs:  # the poll's whole read: held while the next version is registered
                reading.set()
                time.sleep(0.8)
            return rows

        catalog.latest_schemas = slow_latest
        assert await asyncio.to_thread(reading.wait, 10)
        assert (await registry.register(_survey(types_pb2.SENSITIVITY_LEVEL_3), 1, "ops")).version == 2
        await asyncio.sleep(1.0)  # the poll's read has ended
        assert registry.schema_for("survey").version == 2
        assert "note" in registry.protected.names
        (outcome,) = await service.ingest([make_event("survey", "c1", note=SECRET)])
        assert outcome.status == collect_pb2.EVENT_STATUS_ACCEPTED
        page = service.event_log.read(0, 10, ["survey"])
        assert len(page.events) == 1 and SECRET.encode() not in page.events[0].payload
        catalog.latest_schemas = original
        await asyncio.sleep(2.5)  # the next poll reads again, and finds version 2
        assert registry.schema_for("survey").version == 2
