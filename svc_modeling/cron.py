"""Five-field cron expressions (minute hour day-of-month month day-of-week) and their next run time.

Each field: ``*``, a number, a range ``a-b``, a step ``*/n`` or ``a-b/n``, or a list of those. Day of week 0
or 7 is Sunday. As in Vixie cron, when both day fields are restricted a day matches either.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from svc_common.errors import FieldViolation, InvalidArgument

_LIMITS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_NAMES = ("minute", "hour", "day of month", "month", "day of week")


def _bad(message: str, field: str = "schedule.cron") -> InvalidArgument:
    return InvalidArgument(message, violations=[FieldViolation(field, message)])


def _field(text: str, index: int) -> tuple[frozenset[int], bool]:
    low, high = _LIMITS[index]
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if body == "*":
                start, end = low, high
            elif "-" in body:
                start, end = (int(v) for v in body.split("-", 1))
            else:
                start = end = int(body)
        except ValueError:
            raise _bad(f"cron {_NAMES[index]} field {text!r} is not a number, range, step or list") from None
        if step < 1 or start < low or end > high or start > end:
            raise _bad(f"cron {_NAMES[index]} field {text!r} is out of range {low}-{high}")
        values.update(range(start, end + 1, step))
    if index == 4 and 7 in values:
        values = (values - {7}) | {0}
    return frozenset(values), text != "*"


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_restricted: bool
    weekdays_restricted: bool
    zone: ZoneInfo

    @classmethod
    def parse(cls, expression: str, timezone: str = "") -> Cron:
        fields = expression.split()
        if len(fields) != 5:
            raise _bad(f"cron {expression!r} must have five fields: minute hour day-of-month month day-of-week")
        try:
            zone = ZoneInfo(timezone or "Asia/Shanghai")
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a zone directory such as 'Asia'
            raise _bad(f"unknown time zone {timezone!r}", "schedule.timezone") from None
        parsed = [_field(text, i) for i, text in enumerate(fields)]
        return cls(
            parsed[0][0], parsed[1][0], parsed[2][0], parsed[3][0], parsed[4][0], parsed[2][1], parsed[4][1], zone
        )

    def _day_matches(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_month or in_week
        return in_month and in_week

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first matching minute strictly after ``moment`` (an aware datetime), in UTC."""
        local = moment.astimezone(self.zone).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        day = local.date()
        for _ in range(366 * 5):
            if self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.zone)
                        if candidate >= local:
                            return candidate.astimezone(dt.UTC)
            day += dt.timedelta(days=1)
        raise _bad("the cron expression never matches (e.g. 31 February)")
