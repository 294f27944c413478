"""Leftovers of the svc_collect walks, mended in session 23: rejected events whose type is not a valid name were counted
under that name, which GetIngestStats refused as a filter (one count per client-made string)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from collect_helpers import collect_settings, make_event, running_service

from svc_collect.service import REJECTED
from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.common.v1 import errors_pb2


def test_rejected_events_with_an_invalid_type_are_counted_under_one_name(tmp_path: Path, database_url: str) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, database_url)) as (service, catalog):
            spaced, long = make_event("login", "c1"), make_event("login", "c2")
            spaced.event_type, long.event_type = "page view; DROP TABLE x", "v" * 300
            outcomes = await service.ingest([spaced, long, make_event("login", "c3")])
            assert [o.status for o in outcomes[:2]] == [REJECTED] * 2
            assert {o.reason for o in outcomes[:2]} == {errors_pb2.ERROR_REASON_INVALID_NAME}
            stats = await service.stats(None, None, [])
            assert [row[:4] for row in stats.by_type] == [("(invalid)", 0, 0, 2), ("login", 1, 0, 0)]
            only = await service.stats(None, None, ["(invalid)"])
            assert [row[0] for row in only.by_type] == ["(invalid)"]
            # The quarantine keeps the name as sent, and lists by it.
            (record,) = catalog.list_quarantine(event_types=["page view; DROP TABLE x"])
            assert record.event_type == "page view; DROP TABLE x"
            with pytest.raises(InvalidArgument) as refused:
                await service.stats(None, None, ["page view; DROP TABLE x"])
            (violation,) = refused.value.violations
            assert violation.field == "event_types[0]" and "(invalid) (rejected events whose type" in violation.description

    asyncio.run(scenario())
