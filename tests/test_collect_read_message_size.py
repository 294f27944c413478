"""ReadEvents sends a page of large events as several messages of at most ~1 MiB of events (one event at least),
each with its last event's cursor: 100 events of ~64 KiB asked as one 500-event page were one 6.4 MB message,
which a default gRPC client (4 MiB) refused, failing the stream RESOURCE_EXHAUSTED in the middle of the log."""

from __future__ import annotations

import asyncio
from pathlib import Path

from collect_helpers import make_event
from collect_helpers import serving_collect as serving

from svc_common.pb.qiming.collect.v1 import collect_pb2

TIMEOUT = 30


def test_large_events_come_in_messages_a_default_client_accepts(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with serving(tmp_path) as s:  # the test's channel keeps gRPC's default 4 MiB receive limit
            events = [make_event(user_id=f"c{i}", **{f"note{k}": "x" * 7_900 for k in range(8)}) for i in range(100)]
            for start in range(0, 100, 10):
                answer = await s.collect.Ingest(collect_pb2.IngestRequest(events=events[start : start + 10]))
                assert answer.accepted_count == 10
            messages = [
                m async for m in s.collect.ReadEvents(collect_pb2.ReadEventsRequest(batch_size=500), timeout=TIMEOUT)
            ]
            got = [e for m in messages for e in m.events]
            assert [e.event_id for e in got] == [e.event_id for e in events]
            assert len(messages) >= 7 and all(m.ByteSize() <= 1024 * 1024 + 70_000 for m in messages)
            assert [m.cursor for m in messages] == [m.events[-1].cursor for m in messages]
            # Resuming from a message's cursor goes on after its last event.
            resumed = [
                e.event_id
                async for m in s.collect.ReadEvents(
                    collect_pb2.ReadEventsRequest(after_cursor=messages[2].cursor, batch_size=500), timeout=TIMEOUT
                )
                for e in m.events
            ]
            assert resumed == [e.event_id for e in got[sum(len(m.events) for m in messages[:3]) :]]

    asyncio.run(scenario())
