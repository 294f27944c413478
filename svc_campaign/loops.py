"""svc_campaign's background loops (timers, outbox, publisher, schedules): run a step again and again, and when it
fails, back off and say so once, not with a traceback five times a second.

A failure drill stopped the database for 80 s: each loop logged ``loop failed`` with a full traceback every 200 ms
(14 MB of log in 80 s, ~650 MB an hour, in one process). Now: the first failure is one line (a WARNING without a
traceback for a dependency that is down, which the database layer has logged already; an ERROR with it for
anything else), a reminder at most every ``REMINDER_SECONDS``, the wait doubles up to ``max_backoff_seconds``, and
the recovery is an INFO line with the count.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from svc_common.errors import ResourceExhausted, Unavailable

log = logging.getLogger("qiming.campaign")
REMINDER_SECONDS = 60.0
# A database or service that is down or full: the caller-facing errors of svc_common.db, logged there already.
DEPENDENCY_ERRORS = (Unavailable, ResourceExhausted)


async def run_loop(
    name: str,
    once: Callable[[], Awaitable[int]],
    idle_seconds: float,
    max_backoff_seconds: float = 5.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Run ``once`` for ever: again at once when it did work, after ``idle_seconds`` when it found none, and after
    a doubling wait (``idle_seconds`` up to ``max_backoff_seconds``) while it fails."""
    failures, reminded = 0, 0.0
    while True:
        try:
            busy = await once()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            now = time.monotonic()
            if failures == 1 or now - reminded >= REMINDER_SECONDS:
                reminded = now
                _report(name, exc, failures)
            await sleep(min(max_backoff_seconds, idle_seconds * 2 ** min(failures, 30)))
            continue
        if failures:
            log.info("campaign %s loop works again after %d failed attempt(s)", name, failures)
            failures = 0
        await sleep(0 if busy else idle_seconds)


def _report(name: str, exc: Exception, failures: int) -> None:
    again = "" if failures == 1 else f" (still, {failures} attempts)"
    if isinstance(exc, DEPENDENCY_ERRORS):
        log.warning("campaign %s loop failed%s: %s; retrying with backoff", name, again, exc)
    else:
        log.error("campaign %s loop failed%s; retrying with backoff", name, again, exc_info=exc)
