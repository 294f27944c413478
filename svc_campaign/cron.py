"""Five-field cron expressions (``minute hour day-of-month month day-of-week``) in a time zone.

Each field is ``*``, a number, a range ``a-b``, a list ``a,b``, each with an optional step ``/n``; months and
days of the week may be named (``jan``, ``mon``); day of week 0 and 7 are Sunday. As in Vixie cron, when both
day of month and day of week are restricted a day matching either one matches. Times are local to the zone:
a local time that does not exist (a daylight-saving gap) is skipped; one that happens twice runs once.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from svc_common.errors import InvalidArgument


def known_zone(name: str) -> zoneinfo.ZoneInfo | None:
    """The IANA zone of that name, or None for a name that is none (including a directory such as ``Asia``, which
    ``ZoneInfo`` answers with ``IsADirectoryError``, and a path-like name, ``ValueError``)."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return None


_MONTH_NAMES = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_MONTHS = {m: n for n, m in enumerate(_MONTH_NAMES, start=1)}
_DAYS = {d: n for n, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}), ("month", 1, 12, _MONTHS))
_DOW = ("day of week", 0, 7, _DAYS)
MAX_YEARS = 5


def _number(text: str, names: dict[str, int], name: str, low: int, high: int, where: str) -> int:
    value = names.get(text.lower()) if not text.isdecimal() else int(text)
    if value is None or not low <= value <= high:
        raise InvalidArgument(f"{where}: {name} {text!r} is not in {low}-{high}")
    return value


def _field(text: str, name: str, low: int, high: int, names: dict[str, int], where: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = _number(step_text, {}, f"{name} step", 1, high - low + 1, where) if step_text else 1
        if body == "*":
            first, last = low, high
        elif "-" in body:
            a, _, b = body.partition("-")
            first, last = _number(a, names, name, low, high, where), _number(b, names, name, low, high, where)
            if first > last:
                raise InvalidArgument(f"{where}: {name} range {body!r} runs backwards")
        else:
            first = _number(body, names, name, low, high, where)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


class Cron:
    """A parsed expression; ``next_after(moment)`` is the first time it names strictly after ``moment``."""

    def __init__(self, expression: str, zone: str = "Asia/Shanghai", where: str = "cron") -> None:
        parts = expression.split()
        if len(parts) != 5:
            raise InvalidArgument(
                f"{where}: a cron expression has five fields (minute hour day-of-month month day-of-week), "
                f"got {len(parts)} in {expression!r}"
            )
        found = known_zone(zone or "Asia/Shanghai")
        if found is None:
            raise InvalidArgument(f"{where}: unknown time zone {zone!r}")
        self.zone = found
        self.expression = expression
        fields = zip(parts[:4], _FIELDS, strict=True)
        self.minutes, self.hours, self.days, self.months = (
            sorted(_field(p, name, low, high, names, where)) for p, (name, low, high, names) in fields
        )
        days_of_week = _field(parts[4], *_DOW, where)
        self.weekdays = frozenset(d % 7 for d in days_of_week)
        self.any_day, self.any_weekday = parts[2] == "*", parts[4] == "*"
        if self.next_after(dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) is None:
            raise InvalidArgument(f"{where}: {expression!r} names no time (e.g. 30 February)")

    def _day_matches(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        by_date = day.day in self.days
        by_weekday = (day.weekday() + 1) % 7 in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return by_weekday
        if self.any_weekday:
            return by_date
        return by_date or by_weekday

    def next_after(self, moment: dt.datetime) -> dt.datetime | None:
        """The first matching minute after ``moment`` (UTC), within five years; None if there is none."""
        local = moment.astimezone(self.zone)
        day, first = local.date(), True
        for _ in range(366 * MAX_YEARS):
            if self._day_matches(day):
                # Hours before the moment's cannot follow it (a DST fold repeats an hour: keep that one).
                for hour in (h for h in self.hours if not first or h >= local.hour - 1):
                    for minute in self.minutes:
                        naive = dt.datetime.combine(day, dt.time(hour, minute))
                        candidate = naive.replace(tzinfo=self.zone)
                        # A time in a daylight-saving gap does not survive the round trip through UTC: skip it.
                        if candidate.astimezone(dt.UTC).astimezone(self.zone).replace(tzinfo=None) != naive:
                            continue
                        if candidate.astimezone(dt.UTC) > moment:
                            return candidate.astimezone(dt.UTC)
            day, first = day + dt.timedelta(days=1), False
        return None

    def latest_until(self, start: dt.datetime, end: dt.datetime) -> dt.datetime | None:
        """The last matching time in (start, end], or None."""
        found = None
        moment = self.next_after(start)
        while moment is not None and moment <= end:
            found = moment
            moment = self.next_after(moment)
        return found
