"""Column types that mean the same on SQLite, PostgreSQL, openGauss and Dameng.

Rules (see docs/database.md): times are ``TIMESTAMP WITH TIME ZONE`` (Dameng's plain ``DateTime``
drops the zone), no Enum (stored as short strings checked in code), no Interval (store
``*_seconds``/``*_millis`` integers), JSON as text so that every database stores it the same way.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import TIMESTAMP, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[dt.datetime]):
    """An aware datetime, stored as TIMESTAMP WITH TIME ZONE and always read back in UTC.

    SQLite has no zone type: values are stored as naive UTC text, which sorts correctly.
    Naive datetimes are refused: a time without a zone is a bug waiting for a daylight change.
    """

    impl = TIMESTAMP(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime (e.g. tz=datetime.UTC)")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class JsonText(TypeDecorator[Any]):
    """A JSON document kept as text (CLOB on Dameng): portable, and readable by any SQL client."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


def storable_text(text: str) -> str:
    """``text`` with NUL written as ``\\x00``, for a text column: PostgreSQL's cannot hold U+0000 (a failed insert
    fails its whole batch), and a client's text is kept as sent elsewhere (svc_collect's quarantine records and
    counts, svc_profile's screen column beside the exact ``context_fields``)."""
    return text.replace("\x00", "\\x00") if "\x00" in text else text
