"""A log follower says why it is not following: svc_collect unreachable from the start (a wrong collect_address, a
collector not started) is a WARNING every UNREACHABLE_WARNING_SECONDS (the stream waited for ready without a word,
and the service served profiles that never changed); a read svc_collect refuses (a cursor of a restored log) is an
ERROR naming the cursor, not a "lost svc_collect … retrying" warning every few seconds."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
import pytest
from collect_helpers import make_event
from collect_helpers import serving_collect as serving
from conftest import free_port

from svc_common import logclient
from svc_common.logclient import CollectClient, LogFollower, RetryPolicy

TIMEOUT = 10


async def _nothing(events: list, cursor: str) -> None:
    return None


async def _until(condition, timeout: float = TIMEOUT) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def _lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "qiming.logclient" and r.levelno == level]


def test_a_collector_never_reached_is_warned_about_until_it_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logclient, "UNREACHABLE_WARNING_SECONDS", 0.3)
    address = f"127.0.0.1:{free_port()}"

    async def scenario() -> None:
        client = CollectClient(address, retry=RetryPolicy(attempts=0, max_backoff_millis=200))
        follower = LogFollower(client, name="wrong-address", load_cursor=lambda: _cursor(""), handle=_nothing)
        follower.start()
        try:
            await _until(lambda: len(_lines(caplog, logging.WARNING)) >= 2)
        finally:
            await follower.stop()
            await client.close()

    with caplog.at_level(logging.INFO, logger="qiming.logclient"):
        asyncio.run(scenario())
    first = _lines(caplog, logging.WARNING)[0]
    assert first.startswith(f"log follower wrong-address cannot reach svc_collect at {address} (waited 0 s)")
    assert "check collect_address" in first


def test_a_cursor_svc_collect_refuses_is_an_error_naming_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with serving(tmp_path) as s:
            client = CollectClient(s.address, retry=RetryPolicy(attempts=0))
            await client.publish([make_event()])
            handled: list[str] = []

            async def handle(events: list, cursor: str) -> None:
                handled.append(cursor)

            # A cursor of another log, as consumers hold after svc_collect's database is restored from a backup.
            follower = LogFollower(client, name="restored", load_cursor=lambda: _cursor("0badc0de.5"), handle=handle)
            follower.start()
            try:
                await _until(lambda: _lines(caplog, logging.ERROR))
                await asyncio.sleep(0.5)  # no quick retries after it: the slowest pace
            finally:
                await follower.stop()
                await client.close()
            assert handled == []

    with caplog.at_level(logging.INFO, logger="qiming.logclient"):
        asyncio.run(scenario())
    (error,) = _lines(caplog, logging.ERROR)
    assert "refuses to read the log from cursor '0badc0de.5' (INVALID_ARGUMENT" in error
    assert "a retry cannot fix this" in error and _lines(caplog, logging.WARNING) == []


async def _cursor(value: str) -> str:
    return value


class _StoppingCollector:
    """A follow stream that ends cleanly (the collector stopping), then reads that fail ``code`` (UNAVAILABLE while
    its connection closes, CANCELLED when its server cancels the calls still open as it stops), then the collector
    back."""

    address = "127.0.0.1:1"

    def __init__(self, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE, failing: range = range(3, 5)) -> None:
        self.reads = 0
        self.code = code
        self.failing = failing

    async def wait_reachable(self, timeout_seconds: float) -> bool:
        return True  # the channel still says READY while the collector's connection closes

    async def read(self, after_cursor, *, event_types=(), follow=False, batch_size=0, max_events=0):
        self.reads += 1
        if self.reads in self.failing:
            raise grpc.aio.AioRpcError(self.code, grpc.aio.Metadata(), grpc.aio.Metadata(), "Socket closed")
        return
        yield


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED])
def test_a_collector_that_ends_its_stream_to_stop_is_not_a_lost_collector(
    caplog: pytest.LogCaptureFixture, code: grpc.StatusCode
) -> None:
    # CANCELLED: a read that reached the stopping server before it closed (a full test run saw it, 2026-12-06).
    _follow_a_stopping_collector(caplog, code)
    # The failures right after the clean end are the collector stopping (said once); a CI machine under load saw a
    # second read start on the closing connection, which warned "lost svc_collect".
    assert _lines(caplog, logging.INFO) == ["log follower t: svc_collect at 127.0.0.1:1 is stopping; waiting for it"]
    assert _lines(caplog, logging.WARNING) == []


def test_a_read_the_stopping_collector_cancels_before_any_clean_end_is_not_a_lost_collector(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The collector's server cancelled the follower's reads as it stopped, before any stream of it ended cleanly (the
    # fresh-clone CI of 2026-12-06 saw "lost svc_collect (CANCELLED …)" at WARNING).
    _follow_a_stopping_collector(caplog, grpc.StatusCode.CANCELLED, range(1, 3))
    assert _lines(caplog, logging.INFO) == ["log follower t: svc_collect at 127.0.0.1:1 is stopping; waiting for it"]
    assert _lines(caplog, logging.WARNING) == []


def test_a_collector_still_failing_after_it_stopped_is_a_lost_collector(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Past UNREACHABLE_WARNING_SECONDS after the stream ended (here 0), an UNAVAILABLE read is no longer "stopping".
    monkeypatch.setattr(logclient, "UNREACHABLE_WARNING_SECONDS", 0.0)

    _follow_a_stopping_collector(caplog)
    assert [m.split(" (")[0] for m in _lines(caplog, logging.WARNING)] == ["log follower t lost svc_collect"] * 2


def _follow_a_stopping_collector(
    caplog: pytest.LogCaptureFixture,
    code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
    failing: range = range(3, 5),
) -> None:
    """A follower over :class:`_StoppingCollector` until it has read six times, its log captured at INFO."""

    async def scenario() -> None:
        collector = _StoppingCollector(code, failing)
        fast = RetryPolicy(attempts=0, initial_backoff_millis=1, max_backoff_millis=5)
        follower = LogFollower(collector, name="t", load_cursor=lambda: _cursor(""), handle=_nothing, retry=fast)  # type: ignore[arg-type]
        follower.start()
        try:
            await _until(lambda: collector.reads >= 6)
        finally:
            await follower.stop()

    with caplog.at_level(logging.INFO, logger="qiming.logclient"):
        asyncio.run(scenario())
