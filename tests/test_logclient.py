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
