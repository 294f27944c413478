"""Reading one person's events from the SQL log, which keeps no index by person (each would cost every insert a
random page): the primary key is scanned in windows, results stay in log order with the same cursors, and a
following reader moves past what matched nothing instead of examining it again on every poll."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from collect_helpers import collect_settings, make_event, running_service

from svc_collect.store import _log
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import types_pb2

CUSTOMER, ANONYMOUS = types_pb2.ID_TYPE_CUSTOMER, types_pb2.ID_TYPE_ANONYMOUS


async def read(service, **request) -> list[tuple[str, str]]:
    out = []
    async for events, cursor in service.read(collect_pb2.ReadEventsRequest(**request), frozenset()):
        if not events:  # the position past what matched nothing, at the end of the read
            continue
        assert cursor == events[-1].cursor
        out.extend((e.event_type, e.cursor) for e in events)
    return out


def test_a_persons_events_come_in_log_order_across_scan_windows(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_log, "USER_SCAN_WINDOW", 7)

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, database_url)) as (service, _):
            events = [make_event("page_view", f"u{100 + i}") for i in range(60)]
            for i, kind in ((3, "login"), (20, "fund_view"), (21, "page_view"), (55, "fund_view")):
                events[i] = make_event(kind, "u1")
            for i in (10, 40):
                events[i] = make_event("app_open", "")
                events[i].ClearField("user_id")
                events[i].anonymous_id = "dev-1"
            outcomes = await service.ingest(events)
            cursor = [o.cursor for o in outcomes]
            u1 = {"type": CUSTOMER, "value": "u1"}
            expected = [("login", cursor[3]), ("fund_view", cursor[20]), ("page_view", cursor[21])]
            expected.append(("fund_view", cursor[55]))
            assert await read(service, user=u1, batch_size=2) == expected
            assert await read(service, user=u1, event_types=["fund_view"]) == [expected[1], expected[3]]
            assert await read(service, user=u1, after_cursor=cursor[20]) == expected[2:]
            assert await read(service, user=u1, max_events=3, batch_size=10) == expected[:3]
            dev = {"type": ANONYMOUS, "value": "dev-1"}
            assert await read(service, user=dev) == [("app_open", cursor[10]), ("app_open", cursor[40])]
            assert await read(service, user={"type": CUSTOMER, "value": "nobody"}) == []

            page = await asyncio.to_thread(service._log.read, 0, 10, (), "nobody", None)
            assert page.events == [] and page.scanned_to == service._log.head().last_seq

    asyncio.run(scenario())


def test_a_following_reader_of_one_person_moves_past_what_matched_nothing(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        settings = collect_settings(tmp_path, database_url, follow_poll_interval_millis=20)
        async with running_service(settings) as (service, _):
            starts: list[int] = []
            original = service._log.read

            def recording_read(after_seq, *args):
                starts.append(after_seq)
                return original(after_seq, *args)

            monkeypatch.setattr(service._log, "read", recording_read)
            request = collect_pb2.ReadEventsRequest(user={"type": CUSTOMER, "value": "u9"}, follow=True, max_events=1)
            reader = asyncio.ensure_future(read_one(service, request))
            await service.ingest([make_event("page_view", f"other{i}") for i in range(30)])
            head_after_others = service._log.head().last_seq
            await asyncio.sleep(0.3)  # several polls over the 30 events that are not u9's
            assert not reader.done()
            polls_after_others = starts[-1]
            (mine,) = await service.ingest([make_event("trade_filled", "u9")])
            assert await asyncio.wait_for(reader, 10) == [("trade_filled", mine.cursor)]
            assert starts == sorted(starts)
            assert polls_after_others == head_after_others  # polls resume after the 30th event, not before the 1st

    asyncio.run(scenario())


async def read_one(service, request) -> list[tuple[str, str]]:
    async for events, _cursor in service.read(request, frozenset()):
        return [(e.event_type, e.cursor) for e in events]
    return []
