"""The output-only fields a client sets are cleared by the ingest requests' deserializer, found from the request's
bytes (svc_collect.output_only), and the servicer tells ``_prepare`` not to look again: what the log keeps and
fingerprints must be what it was when ``_prepare`` cleared them event by event."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from collect_helpers import collect_settings, make_event, running_service

from svc_collect.output_only import any_output_only
from svc_collect.server import CollectServicer, _sized
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import event_pb2


def _set(event: event_pb2.Event, field: str) -> None:
    if field == "received_at":
        event.received_at.SetInParent()  # present, even at 0 s 0 ns (two bytes on the wire)
    elif field in ("masked_fields", "flags"):
        getattr(event, field).append("")
    else:
        setattr(event, field, "client-made")


@pytest.mark.parametrize("field", ["received_at", "cursor", "fingerprint", "masked_fields", "flags"])
@pytest.mark.parametrize("message", [collect_pb2.IngestRequest, collect_pb2.IngestStreamRequest])
def test_any_output_only_finds_each_field_in_any_event(field: str, message: type) -> None:
    events = [make_event(amount_fen=5), make_event(), make_event()]
    extra = {"batch_id": 7} if message is collect_pb2.IngestStreamRequest else {}
    assert not any_output_only(message(events=events, **extra).SerializeToString())
    _set(events[1], field)
    assert any_output_only(message(events=events, **extra).SerializeToString())


def test_a_served_batch_keeps_and_fingerprints_no_client_output_only_field(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_service(collect_settings(tmp_path)) as (service, _):
            dirty = [make_event(screen="home") for _ in range(3)]
            clean = [event_pb2.Event() for _ in dirty]
            for d, c in zip(dirty, clean, strict=True):
                c.CopyFrom(d)
            dirty[1].cursor = "forged.1"
            dirty[1].fingerprint = "f" * 32
            dirty[1].masked_fields.append("screen")
            dirty[2].flags.append("occurred_at_too_old")
            dirty[2].received_at.FromMicroseconds(1)
            deserialize = _sized(collect_pb2.IngestRequest.FromString, 1 << 20)
            request = deserialize(collect_pb2.IngestRequest(events=dirty).SerializeToString())
            response = collect_pb2.IngestResponse.FromString(
                (await CollectServicer(service).Ingest(request, None)).data  # type: ignore[arg-type]
            )
            assert response.accepted_count == 3
            stored = [e async for page, _ in service.read(collect_pb2.ReadEventsRequest(), frozenset()) for e in page]
            assert [e.event_id for e in stored] == [e.event_id for e in clean]
            for got, want in zip(stored, clean, strict=True):
                assert got.cursor != "forged.1" and got.fingerprint != "f" * 32
                assert not got.masked_fields and not got.flags
                assert got.received_at.ToMicroseconds() > 1
                assert got.fingerprint == service._fingerprints.fingerprint(want.SerializeToString(deterministic=True))

    asyncio.run(go())


def test_sqlite_binds_bytes_and_none_as_they_are_with_the_identity_adapters() -> None:
    import sqlite3

    from svc_collect.store._sqlite_binding import bind_bytes_and_none_directly

    bind_bytes_and_none_directly(sqlite3)
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE TABLE t (a BLOB, b BLOB, c TEXT)")
        conn.execute("INSERT INTO t VALUES (?, ?, ?)", (b"\x00payload", None, "text"))
        assert conn.execute("SELECT a, typeof(a), b IS NULL, c FROM t").fetchall() == [
            (b"\x00payload", "blob", 1, "text")
        ]
    finally:
        conn.close()
