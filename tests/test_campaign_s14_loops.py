"""Session 14 (a failure drill: the database stopped for 80 s): svc_campaign's background loops back off and say so
once, with a reminder at most every minute, instead of a traceback at ERROR every 200 ms per loop (14 MB of log in
80 s); the recovery is one INFO line."""

from __future__ import annotations

import asyncio
import logging

import pytest

from svc_campaign import loops
from svc_common.errors import Unavailable


def _run(outcomes: list[object], idle_seconds: float = 0.001) -> list[float]:
    """Runs the loop over ``outcomes`` (an exception to raise or the work done), then cancels it; the waits taken."""
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await real_sleep(0)

    async def once() -> int:
        if not outcomes:
            raise asyncio.CancelledError
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return int(outcome)  # type: ignore[call-overload]

    async def scenario() -> None:
        with pytest.raises(asyncio.CancelledError):
            await loops.run_loop("timers-0", once, idle_seconds, max_backoff_seconds=0.05, sleep=sleep)

    asyncio.run(scenario())
    return waits


def test_a_database_outage_is_one_warning_a_backoff_and_one_recovery_line(caplog) -> None:
    down = Unavailable("the service's database is unavailable; retry with backoff")
    with caplog.at_level(logging.INFO, logger="qiming.campaign"):
        waits = _run([1, *[down] * 40, 0, 1])
    lines = [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert lines == [
        (
            "WARNING",
            "campaign timers-0 loop failed: the service's database is unavailable; retry with backoff; retrying with"
            " backoff",
            False,
        ),
        ("INFO", "campaign timers-0 loop works again after 40 failed attempt(s)", False),
    ]
    failed = waits[1:41]
    assert failed[:4] == [0.002, 0.004, 0.008, 0.016] and set(failed[6:]) == {0.05}  # doubling, then the cap
    assert waits[0] == 0 and waits[41:] == [0.001, 0]  # busy: at once; idle: idle_seconds


def test_an_unexpected_error_keeps_its_traceback_once(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="qiming.campaign"):
        _run([RuntimeError("boom"), RuntimeError("boom"), 0])
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert errors[0].getMessage() == "campaign timers-0 loop failed; retrying with backoff"
