"""Review 12, svc_collect's read path: a read whose filter matches nothing still tells the reader its position
(R13); an idle following reader writes no spans (F10 a); a graceful stop ends follow streams at once (F10 b)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import grpc
import pytest
from collect_helpers import collect_settings, make_event, running_service
from collect_helpers import serving_collect as serving
from conftest import free_port
from grpc import aio

from svc_collect import reading
from svc_collect.server import build_spec
from svc_collect.store import SCHEMA
from svc_common.logclient import CollectClient, LogFollower, RetryPolicy
from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.runtime import ServiceRuntime
from svc_common.server import serve

TIMEOUT = 10


async def _pages(service, **request) -> list[tuple[int, str]]:
    return [
        (len(events), cursor)
        async for events, cursor in service.read(collect_pb2.ReadEventsRequest(**request), frozenset())
    ]


def test_a_read_that_matches_nothing_ends_with_its_position(tmp_path: Path, log_backend: dict[str, str]) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, **log_backend)) as (service, _catalog):
            outcomes = await service.ingest([make_event("page_view") for _ in range(5)])
            last = outcomes[-1].cursor
            assert await _pages(service, event_types=["trade"]) == [(0, last)]
            assert await _pages(service, user={"type": 1, "value": "nobody"}) == [(0, last)]
            assert await _pages(service, event_types=["trade"], after_cursor=last) == []  # nothing new: no page
            assert await _pages(service) == [(5, last)]  # unfiltered: the last event's cursor says it all

    asyncio.run(scenario())


def test_a_filtered_follow_sends_its_position_while_the_log_moves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "POSITION_EVERY_SECONDS", 0.2)

    async def scenario() -> None:
        async with serving(tmp_path, follow_poll_interval_millis=20) as s:
            client = CollectClient(s.address)
            got: list[tuple[int, str]] = []
            positioned = asyncio.Event()
            cursors: list[str] = []

            async def handle(events: list, cursor: str) -> None:
                got.append((len(events), cursor))
                if cursors and cursor == cursors[-1]:
                    positioned.set()

            follower = LogFollower(
                client, name="filtered", load_cursor=lambda: _async(""), handle=handle, event_types=["trade"]
            )
            follower.start()
            try:
                await asyncio.wait_for(follower.caught_up.wait(), TIMEOUT)
                outcomes = await client.publish([make_event("page_view") for _ in range(3)])
                cursors.append(outcomes.results[-1].cursor)
                await asyncio.wait_for(positioned.wait(), TIMEOUT)  # the follower stored the position
                assert got[-1] == (0, cursors[-1]) and follower.cursor == cursors[-1]
                assert all(n == 0 for n, _ in got)
            finally:
                await follower.stop()
                await client.close()

    asyncio.run(scenario())


async def _async(value: str) -> str:
    return value


def test_an_idle_follow_writes_no_spans(tmp_path: Path, span_exporter) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, follow_poll_interval_millis=10)) as (service, _c):
            await service.ingest([make_event()])
            span_exporter.clear()
            pages: asyncio.Queue = asyncio.Queue()

            async def follow() -> None:
                async for events, _cursor in service.read(collect_pb2.ReadEventsRequest(follow=True), frozenset()):
                    await pages.put(len(events))

            task = asyncio.create_task(follow())
            try:
                assert await asyncio.wait_for(pages.get(), TIMEOUT) == 1
                await asyncio.sleep(0.5)  # about 50 idle polls
                names = [s.name for s in span_exporter.get_finished_spans()]
                assert names == ["collect.read_page"]  # the page sent; nothing per poll
                await service.ingest([make_event(), make_event()])
                assert await asyncio.wait_for(pages.get(), TIMEOUT) == 2
                await asyncio.sleep(0.2)
                read_spans = [s for s in span_exporter.get_finished_spans() if s.name == "collect.read_page"]
                assert [s.attributes["collect.events"] for s in read_spans] == [1, 2]
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    asyncio.run(scenario())


def test_a_graceful_stop_ends_follow_streams_at_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    settings = collect_settings(
        tmp_path, grpc_host="127.0.0.1", grpc_port=port, shutdown_grace_seconds=60, follow_poll_interval_millis=20
    )

    async def scenario() -> None:
        runtime = await asyncio.to_thread(ServiceRuntime.open, SCHEMA, settings)
        stop = asyncio.Event()
        server = asyncio.create_task(serve([build_spec(runtime)], settings, stop=stop))
        client = CollectClient(f"127.0.0.1:{port}", retry=RetryPolicy(attempts=0))
        handled: list[str] = []

        async def handle(events: list, cursor: str) -> None:
            handled.extend(e.event_id for e in events)

        follower = LogFollower(client, name="stopping", load_cursor=lambda: _async(""), handle=handle)
        async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = collect_pb2_grpc.CollectServiceStub(channel)
            try:
                event = make_event()
                await client.publish([event])
                follower.start()
                raw = stub.ReadEvents(collect_pb2.ReadEventsRequest(follow=True))
                assert len((await raw.read()).events) == 1
                while handled != [event.event_id]:
                    await asyncio.sleep(0.05)
                caplog.clear()
                stop.set()
                # Within the 60 s grace: the follow streams end by themselves, cleanly.
                await asyncio.wait_for(server, 30)
                assert await raw.read() is aio.EOF
                assert await raw.code() == grpc.StatusCode.OK
                await asyncio.sleep(0.5)  # the follower notices and waits for the collector to come back
                noisy = [r for r in caplog.records if r.name == "qiming.logclient" and r.levelno >= logging.WARNING]
                assert noisy == []
            finally:
                await follower.stop()
                await client.close()
                if not server.done():
                    stop.set()
                    await server

    asyncio.run(scenario())
