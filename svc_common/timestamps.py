"""A request's ``google.protobuf.Timestamp``, checked: one out of range (``seconds=2**40``, a client that put epoch
milliseconds in ``seconds``; ``nanos=-5``) is INVALID_ARGUMENT naming the field, not the ValueError that protobuf's
``ToDatetime`` / ``ToMicroseconds`` raise (INTERNAL) or a number past the databases' 64-bit integers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from svc_common.errors import FieldViolation, InvalidArgument

MIN_SECONDS, MAX_SECONDS = -62_135_596_800, 253_402_300_799
"""0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the range protobuf's well-known Timestamp allows."""
REASON = "TIMESTAMP_OUT_OF_RANGE"
RANGE = "between 0001-01-01 and 9999-12-31, nanos in [0, 1e9)"


def valid_timestamp(ts: Any) -> bool:
    return MIN_SECONDS <= ts.seconds <= MAX_SECONDS and 0 <= ts.nanos < 1_000_000_000


def check_timestamp(ts: Any, field: str) -> None:
    """INVALID_ARGUMENT (``TIMESTAMP_OUT_OF_RANGE``) naming ``field`` when ``ts`` is not a valid Timestamp."""
    if not valid_timestamp(ts):
        message = f"{field} is not a valid timestamp (seconds {ts.seconds}, nanos {ts.nanos}): {RANGE}"
        raise InvalidArgument(message, reason=REASON, violations=[FieldViolation(field, RANGE, REASON)])


def timestamp_micros(ts: Any, field: str) -> int:
    """``ts`` in microseconds since the epoch, checked (``check_timestamp``)."""
    check_timestamp(ts, field)
    return int(ts.ToMicroseconds())


def timestamp_datetime(ts: Any, field: str) -> dt.datetime:
    """``ts`` as an aware UTC datetime, checked (``check_timestamp``)."""
    check_timestamp(ts, field)
    return ts.ToDatetime(tzinfo=dt.UTC)


def range_micros(span: Any, field: str = "time_range") -> tuple[int | None, int | None]:
    """A request's ``TimeRange`` as (start, end) microseconds, None for an open bound; each bound checked."""
    start = timestamp_micros(span.start, f"{field}.start") if span.HasField("start") else None
    end = timestamp_micros(span.end, f"{field}.end") if span.HasField("end") else None
    return start, end


def range_datetimes(span: Any, field: str = "time_range") -> tuple[dt.datetime | None, dt.datetime | None]:
    """A request's ``TimeRange`` as aware UTC datetimes, None for an open bound; each bound checked."""
    start = timestamp_datetime(span.start, f"{field}.start") if span.HasField("start") else None
    end = timestamp_datetime(span.end, f"{field}.end") if span.HasField("end") else None
    return start, end
