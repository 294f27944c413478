"""A following reader is woken by an append of its own collector: with a poll interval of a minute it still gets a
new event at once (the poll is only for events other collectors append to a shared log)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from collect_helpers import collect_settings, make_event, running_service

from svc_common.pb.qiming.collect.v1 import collect_pb2


def test_an_append_wakes_a_follower_without_waiting_for_its_poll(tmp_path: Path, database_url: str) -> None:
    async def scenario() -> None:
        settings = collect_settings(tmp_path, database_url, follow_poll_interval_millis=60_000)
        async with running_service(settings) as (service, _):
            (first,) = await service.ingest([make_event("login", "c1")])
            request = collect_pb2.ReadEventsRequest(after_cursor=first.cursor, follow=True, max_events=2)
            received: list[str] = []

            async def follow() -> None:
                async for events, _cursor in service.read(request, frozenset()):
                    received.extend(e.cursor for e in events)

            reader = asyncio.ensure_future(follow())
            await asyncio.sleep(0.2)  # the reader found nothing and waits (for a minute, were it polling)
            (second,) = await service.ingest([make_event("trade_filled", "c1")])
            (third,) = await service.ingest([make_event("logout", "c1")])
            await asyncio.wait_for(reader, 10)  # far less than one poll: only the wake-up can end it in time
            assert received == [second.cursor, third.cursor]

    asyncio.run(scenario())
