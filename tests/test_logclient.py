"""The log client against a real svc_collect process: publish with retries, follow from a stored cursor,
survive a collector restart and a failing handler with every event taking effect exactly once."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from collect_helpers import KEYRING, make_event
from conftest import free_port

from svc_common.errors import Unavailable
from svc_common.logclient import CollectClient, LogFollower, RetryPolicy
from svc_common.process import ServerProcess

FAST = RetryPolicy(attempts=3, initial_backoff_millis=20, max_backoff_millis=50)


class CursorStore:
    """A consumer's state as one 'transaction': effects and cursor change together."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.cursor = ""
        self.fail_next = 0

    async def load(self) -> str:
        return self.cursor

    async def handle(self, events, cursor: str) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("the consumer's database went away")
        self.ids.extend(e.event_id for e in events)
        self.cursor = cursor


async def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


def test_follow_publish_restart_and_failing_handler(tmp_path: Path) -> None:
    port = free_port()
    env = {"QIMING_COLLECT_KEYRING_JSON": KEYRING, "QIMING_COLLECT_GRPC_PORT": str(port)}
    server = ServerProcess("collect", work_dir=tmp_path, env=env).start()

    async def scenario() -> None:
        client = CollectClient(server.address, retry=FAST, timeout_seconds=1)
        store = CursorStore()
        follower = LogFollower(
            client, name="test", load_cursor=store.load, handle=store.handle, batch_size=7, retry=FAST
        )
        first = [make_event(user_id=f"u{i}") for i in range(20)]
        reply = await client.publish(first)
        assert reply.accepted_count == 20
        assert (await client.publish(first)).duplicate_count == 20  # a retry is absorbed by the log

        store.fail_next = 1  # the first batch fails once: it must be retried, not skipped
        follower.start()
        await _wait_for(lambda: len(store.ids) == 20)
        assert store.ids == [e.event_id for e in first]

        server.terminate()
        with pytest.raises(Unavailable, match="did not take 1 events"):
            await client.publish([make_event()])
        server.start()  # same port, same database
        second = [make_event(event_id=str(uuid.uuid4())) for _ in range(15)]
        await client.publish(second)
        await _wait_for(lambda: len(store.ids) == 35)
        assert store.ids == [e.event_id for e in first + second]  # in log order, each once
        await follower.stop()
        await client.close()

    try:
        asyncio.run(scenario())
    finally:
        server.terminate()


class _AnswersClient:
    """Stands in for CollectClient.read: the collector's answers to a follower, ``per`` events each, all at once;
    with ``fail_after`` answers the stream then breaks (the collector went away)."""

    def __init__(self, answers: int, per: int, fail_after: int = 0) -> None:
        self.events = [make_event(user_id=f"u{i}") for i in range(answers * per)]
        self.per = per
        self.fail_after = fail_after
        self.reads: list[str] = []

    async def wait_reachable(self, timeout_seconds: float) -> bool:
        return True

    async def read(self, after_cursor: str, *, event_types=(), follow=False, batch_size=0, max_events=0):
        self.reads.append(after_cursor)
        start = int(after_cursor or 0)
        for n, i in enumerate(range(start, len(self.events), self.per)):
            if self.fail_after and n == self.fail_after:
                raise RuntimeError("the stream broke")
            yield self.events[i : i + self.per], str(min(i + self.per, len(self.events)))
        if follow:
            await asyncio.Event().wait()


def test_answers_that_arrive_while_the_handler_works_are_handed_over_together() -> None:
    """A slow handler gets what arrived meanwhile as one batch (at most ``batch_size`` events, whole answers),
    in log order, with the last answer's cursor: every event once, fewer transactions."""
    client = _AnswersClient(answers=40, per=5)
    store = CursorStore()
    sizes: list[int] = []

    async def slow_handle(events, cursor: str) -> None:
        sizes.append(len(events))
        await asyncio.sleep(0.02)
        await store.handle(events, cursor)

    async def scenario() -> None:
        follower = LogFollower(client, name="t", load_cursor=store.load, handle=slow_handle, batch_size=12)  # type: ignore[arg-type]
        follower.start()
        await _wait_for(lambda: follower.events_handled == 200, timeout=10)
        await follower.stop()

    asyncio.run(scenario())
    assert store.ids == [e.event_id for e in client.events]
    assert store.cursor == "200"
    assert max(sizes) == 10 and len(sizes) < 40  # two answers of 5 fit in 12; a third would not


def test_a_stream_that_breaks_hands_over_what_came_before_and_resumes_from_the_stored_cursor() -> None:
    client = _AnswersClient(answers=10, per=3, fail_after=4)
    store = CursorStore()

    async def scenario() -> None:
        follower = LogFollower(client, name="t", load_cursor=store.load, handle=store.handle, retry=FAST)  # type: ignore[arg-type]
        follower.start()
        await _wait_for(lambda: store.cursor == "30", timeout=10)
        await follower.stop()

    asyncio.run(scenario())
    assert store.ids == [e.event_id for e in client.events]  # every answer before each break handled, once
    assert client.reads[:3] == ["", "12", "24"]  # each time again from the stored cursor
