"""GetIngestStats (walk 2026-12-06, findings 7 and 9): swapped time bounds and names no event type can have are
INVALID_ARGUMENT (they answered OK and empty, which looked like no traffic), and the delivery delay leaves out events
flagged for their client time (one event stamped five years ago made the p99 five years)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from collect_helpers import collect_settings, make_event, running_service

from svc_collect.service import ACCEPTED
from svc_common.errors import InvalidArgument

DAY_US = 86_400_000_000


def test_swapped_bounds_and_bad_type_names_are_refused_naming_the_field(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path)) as (service, _catalog):
            now = time.time_ns() // 1000
            with pytest.raises(InvalidArgument) as swapped:
                await service.stats(now, now - 60_000_000, [])
            assert swapped.value.violations[0].field == "time_range.end"
            with pytest.raises(InvalidArgument) as bad:
                await service.stats(None, None, ["login", "Bad Name!"])
            assert bad.value.violations[0].field == "event_types[1]"
            assert (await service.stats(now - 60_000_000, now, ["login", "$segment_entered"])).by_type == []

    asyncio.run(scenario())


def test_the_delivery_delay_leaves_out_events_flagged_for_their_client_time(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path)) as (service, _catalog):
            now = time.time_ns() // 1000
            events = [make_event("login", f"u{i}", occurred_at_us=now - 2_000_000) for i in range(20)]
            events.append(make_event("login", "old", occurred_at_us=now - 5 * 365 * DAY_US))  # flagged too old
            outcomes = await service.ingest(events)
            assert [o.status for o in outcomes] == [ACCEPTED] * 21
            stats = await service.stats(None, None, [])
            assert 1_000 <= stats.delay_p99_millis < 600_000  # seconds, not five years

    asyncio.run(scenario())
