"""Time as a dependency: the engine, the policy gate and the outbox read ``clock.now()``, so tests of
"3 days later" and quiet hours move a manual clock instead of sleeping."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Protocol

EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)
LATEST = dt.datetime.max.replace(tzinfo=dt.UTC)
_LONGEST = dt.timedelta(days=999_999_999)


def window_start(at: dt.datetime, window: dt.timedelta) -> dt.datetime:
    """``at - window``, or the calendar's first moment when that is before it: a goal event of year 1 is a valid one,
    and its attribution window overflowed the calendar, failing the log batch at every retry (before 0.2.9)."""
    return at - window if at - EARLIEST > window else EARLIEST


def span(seconds: float) -> dt.timedelta:
    """A duration from a definition (a timeout, a window, a cooldown), within the longest ``timedelta`` there is, either
    sign: any int64 of seconds is a valid field value, and a longer one overflowed, failing every batch that used it."""
    longest = _LONGEST.total_seconds()
    if seconds >= longest:
        return _LONGEST
    return dt.timedelta(seconds=seconds) if seconds > -longest else -_LONGEST


def later(at: dt.datetime, seconds: float) -> dt.datetime:
    """``at`` plus ``seconds``, within the calendar (its last moment: a due time of "never")."""
    if seconds < 0:
        return earlier(at, -seconds)
    return at + span(seconds) if LATEST - at > span(seconds) else LATEST


def earlier(at: dt.datetime, seconds: float) -> dt.datetime:
    """``at`` less ``seconds``, within the calendar (its first moment)."""
    if seconds < 0:
        return later(at, -seconds)
    return window_start(at, span(seconds))


GOAL_CLOCK_SLACK = dt.timedelta(minutes=5)
"""How far a goal event's own time may read before that of the event that entered the customer and still count as
after it: the two may come from systems with clocks apart (an app's signup, the trading system's deposit)."""


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """An aware UTC datetime."""


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class ManualClock:
    """A clock that moves only when told (tests, simulations)."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be aware")
        self._now = start.astimezone(dt.UTC)
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def advance(self, **delta: float) -> dt.datetime:
        with self._lock:
            self._now += dt.timedelta(**delta)
            return self._now

    def set(self, moment: dt.datetime) -> None:
        with self._lock:
            self._now = moment.astimezone(dt.UTC)


_ISO: dict[dt.datetime, str] = {}


def utc_iso(at: dt.datetime) -> str:
    """``at.isoformat()``, remembered for UTC datetimes: a batch of timers or events formats the same few instants
    (its ``now``, the due times its timers share) for every customer. Only ``tzinfo is UTC`` is remembered (equal
    instants in other zones, or at a fold, compare equal but print differently)."""
    if at.tzinfo is not dt.UTC:
        return at.isoformat()
    found = _ISO.get(at)
    if found is None:
        if len(_ISO) >= 4096:
            _ISO.clear()
        found = _ISO[at] = at.isoformat()
    return found
