"""The in-memory person: typed values as stored, derived window features, and the condition ``Subject``.

One ``Person`` serves every evaluation (tags, lifecycle, segments), whether built for the persons a log
batch touched or bulk-loaded for a full recompute, so both paths answer a condition the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import json.encoder
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from svc_common.amounts import bounded_sum
from svc_common.conditions import EventAbsence, EventCount, Money, Source, matches_event
from svc_common.pb.qiming.common.v1 import event_pb2, types_pb2

DAY_US = 86_400_000_000
WINDOW_DAYS = (1, 7, 30, 90)
"""Rolling windows published as features: ``count.<event_type>.<N>d`` and ``turnover_fen.<N>d``."""


# ---------------------------------------------------------------------------------------------------
# Values: JSON as [kind, value]; Python values as svc_common.conditions compares them.


def _compact_json() -> Any:
    """``json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode``, its C encoder made once: ``encode``
    builds one (and a closure) per call, half the time of encoding a person's short features document. The same
    text for every value; without the circular-reference check (what it encodes is decoded JSON and counters)."""
    standard = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
    make = json.encoder.c_make_encoder
    if make is None:
        return standard.encode
    chunks = make(None, standard.default, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    join = "".join

    def compact_json(value: object) -> str:
        return join(chunks(value, 0))

    return compact_json


compact_json = _compact_json()
"""A JSON document as svc_profile writes it (compact, not ASCII-escaped)."""

# Values orjson writes but the standard library refuses, made to refuse (and so written by the fallback, which
# raises TypeError as compact_json does).
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def document_json(value: object) -> str:
    """``compact_json``'s document, through orjson (~2.5x quicker on a person's features: the log consumer writes one
    per touched person per batch, and one per retained event). The text parses to the same value; it is the same
    text but for some floats written with an exponent (orjson ``1e-7``, the standard library ``1e-07``), so it is
    not used for tag values (their text must be what the store's JSON column type writes). What orjson cannot write
    as the standard library does — NaN and infinities (it writes ``null``), integers past 64 bits, lone surrogates,
    keys that are not strings, nesting past 254 — goes to ``compact_json``."""
    try:
        data = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return compact_json(value)
    if b"null" in data:  # a None, or a NaN or infinity written as null: rare in a document (a string may hold it)
        return compact_json(value)
    return data.decode()


def encode(value: object) -> list[Any]:
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, Money):
        return ["m", int(value)]
    if isinstance(value, int):
        return ["i", value]
    if isinstance(value, float):
        return ["d", value]
    if isinstance(value, str):
        return ["s", value]
    if isinstance(value, dt.datetime):
        return ["t", to_us(value)]
    if isinstance(value, list | tuple):
        return ["l", [str(v) for v in value]]
    raise TypeError(f"cannot store {type(value).__name__}")


def decode(item: list[Any]) -> object:
    kind, value = item[0], item[1]
    if kind == "t":
        return from_us(value)
    if kind == "m":
        return Money(value)
    if kind == "l":
        return tuple(value)
    return value


def to_us(moment: dt.datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(micros: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=micros)


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def window_days(span: str) -> int | None:
    """N of a feature window's last part, ``<N>d`` (``count.login.30d``): decimal digits only, which ``int`` reads
    (``isdigit`` also takes ``²``, which ``int`` refuses: an error instead of an unknown feature before 0.2.9)."""
    return int(span[:-1]) if span.endswith("d") and span[:-1].isdecimal() else None


_ATTRIBUTE_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.")


def is_attribute_name(name: str) -> bool:
    """A name a declared attribute may have: 1-64 characters of a-z, 0-9, ``_`` and ``.``, not starting with ``_``
    (a document's ``_`` entries are internal: every reader but SQL's leaves them out, ``decode_map``)."""
    return 0 < len(name) <= 64 and set(name) <= _ATTRIBUTE_NAME_CHARS and name[0] != "_"


def now_us() -> int:
    return to_us(dt.datetime.now(dt.UTC))


def value_type_of(value: object) -> int:
    if isinstance(value, bool):
        return types_pb2.VALUE_TYPE_BOOL
    if isinstance(value, Money):
        return types_pb2.VALUE_TYPE_MONEY_FEN
    if isinstance(value, int):
        return types_pb2.VALUE_TYPE_INT
    if isinstance(value, float):
        return types_pb2.VALUE_TYPE_DOUBLE
    if isinstance(value, str):
        return types_pb2.VALUE_TYPE_STRING
    if isinstance(value, dt.datetime):
        return types_pb2.VALUE_TYPE_TIMESTAMP
    return types_pb2.VALUE_TYPE_STRING_LIST


class Days:
    """Calendar days of the configured UTC offset: bucket numbers of event counts."""

    def __init__(self, offset_hours: int) -> None:
        self.offset_us = offset_hours * 3_600_000_000
        self._firsts: dict[tuple[int, int], int] = {}
        """(now, window) → first day: one batch evaluates every person at the same ``now``."""

    def of(self, micros: int) -> int:
        return (micros + self.offset_us) // DAY_US

    def start_of(self, day: int) -> int:
        """The first microsecond of a day bucket."""
        return day * DAY_US - self.offset_us

    def first_of_window(self, now: int, window_seconds: int) -> int:
        """The first day bucket of a window of ``window_seconds`` ending now: whole calendar days, today
        included (a 7-day window is today and the 6 days before)."""
        key = (now, window_seconds)
        first = self._firsts.get(key)
        if first is None:
            if len(self._firsts) > 1024:
                self._firsts.clear()
            days = max(1, -(-window_seconds // 86_400))
            first = self._firsts[key] = self.of(now) - days + 1
        return first


@dataclass(slots=True)
class StoredEvent:
    """A row of the compact event table, enough to answer filtered event conditions, funnels and paths. Rows
    stored before profile_0006 have no channel, ids or context (None): they read as an event without them."""

    occurred_us: int
    event_type: str
    session_id: str
    screen: str
    properties: dict[str, Any]
    channel: int | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    context: dict[str, str] | None = None

    @classmethod
    def of(cls, row: Any) -> StoredEvent:
        """From a row of ``ProfileStore.load_events`` / ``scan_events``."""
        return cls(
            row.occurred_us,
            row.event_type,
            row.session_id,
            row.screen,
            row.properties,
            row.channel,
            row.user_id,
            row.anonymous_id,
            row.context_fields,
        )

    def as_event(self) -> event_pb2.Event:
        event = event_pb2.Event(event_type=self.event_type, session_id=self.session_id)
        event.occurred_at.FromMicroseconds(self.occurred_us)
        if self.channel:
            event.channel = self.channel
        if self.user_id:
            event.user_id = self.user_id
        if self.anonymous_id:
            event.anonymous_id = self.anonymous_id
        context = event.context
        context.screen = self.screen
        for name, text in (self.context or {}).items():
            if name in _CONTEXT_FIELDS:
                setattr(context, name, text)
        for name, item in self.properties.items():
            event.properties[name].CopyFrom(_to_proto(decode(item)))
        return event


_CONTEXT_FIELDS = frozenset(f.name for f in event_pb2.EventContext.DESCRIPTOR.fields)


def _to_proto(value: object) -> types_pb2.Value:
    from svc_common.conditions import to_proto

    return to_proto(value)


@dataclass
class Person:
    """One profile as conditions see it. ``days`` holds {event_type: {day: (count, amount_fen)}} for the types
    the evaluated definitions read (a tuple or a list); ``events`` the retained events of types read through a
    filter."""

    profile_id: str
    attributes: dict[str, object] = field(default_factory=dict)
    features: Mapping[str, object] = field(default_factory=dict)
    tags: dict[str, object] = field(default_factory=dict)
    scores: dict[str, object] = field(default_factory=dict)
    days: dict[str, dict[int, Sequence[int]]] = field(default_factory=dict)
    events: list[StoredEvent] = field(default_factory=list)
    segments: set[str] = field(default_factory=set)
    has_customer: bool = False
    lifecycle_stage: str = "PROSPECT"
    lifecycle_since_us: int = 0
    clock: Days | None = None
    now: int = 0
    trade_types: tuple[str, ...] = ()
    sums: dict[tuple[str, int, int], int] | None = None
    """Window totals aggregated by the database, (event_type, first_day, column) → total (a full recompute)."""
    fund_params: dict[str, Any] | None = None
    """The fund preference formula's parameters (``fund_pref.<type>``); None: its defaults."""
    created_us: int | None = None
    """When the profile was created (lifecycle dates a customer's account from it without ``account_opened_at``);
    None: not known to the caller (``now`` stands in)."""

    # -- Subject -----------------------------------------------------------------------------------
    def value(self, source: Source, name: str) -> object:
        if source is Source.ATTRIBUTE:
            return self.attributes.get(name)
        if source is Source.FEATURE:
            found = self.features.get(name)
            return found if found is not None else self.derived(name)
        if source is Source.TAG:
            return self.tags.get(name)
        if source is Source.SCORE:
            return self.scores.get(name)
        return None

    def count_events(self, node: EventCount | EventAbsence) -> int:
        since = self.now - node.window_seconds * 1_000_000
        if node.filter is None and node.window_seconds % 86_400 == 0:
            # Rolling, not calendar: the buckets of the days wholly inside the window (today's included), plus the
            # retained events of the edge day from ``since`` on (docs/conditions.md, "Event windows").
            assert self.clock is not None
            edge_end = self.clock.start_of(self.clock.first_of_window(self.now, node.window_seconds))
            edge = sum(1 for e in self.events if e.event_type == node.event_type and since <= e.occurred_us < edge_end)
            return self.count_days(node.event_type, node.window_seconds) + edge
        return sum(
            1
            for e in self.events
            if e.event_type == node.event_type
            and e.occurred_us >= since
            and (node.filter is None or matches_event(node.filter, e.as_event()))
        )

    def in_segment(self, segment_id: str) -> bool:
        return segment_id in self.segments

    # -- windows -----------------------------------------------------------------------------------
    def count_days(self, event_type: str, window_seconds: int, column: int = 0) -> int:
        assert self.clock is not None
        first = self.clock.first_of_window(self.now, window_seconds)
        if self.sums is not None and (event_type, first, column) in self.sums:
            return self.sums[(event_type, first, column)]
        buckets = self.days.get(event_type)
        if not buckets:
            return 0
        total = 0
        for day, values in buckets.items():
            if day >= first:
                total += values[column]
        return total

    def count_types(self, event_types: Iterable[str], days: int) -> int:
        """The sum of ``count_days`` over ``event_types`` (one window: its first day found once)."""
        assert self.clock is not None
        first = self.clock.first_of_window(self.now, days * 86_400)
        sums, by_type, total = self.sums, self.days, 0
        for event_type in event_types:
            if sums is not None and (event_type, first, 0) in sums:
                total += sums[(event_type, first, 0)]
                continue
            buckets = by_type.get(event_type)
            if buckets:
                for day, values in buckets.items():
                    if day >= first:
                        total += values[0]
        return total

    def derived(self, name: str) -> object:
        """``count.<type>.<N>d`` and ``turnover_fen.<N>d`` for any N of days, from the day buckets;
        ``fund_pref.<type>``, the fund preference index."""
        head, _, window = name.rpartition(".")
        if head == "fund_pref":  # the share GetProfile shows, from views and holdings
            from svc_profile.finance import DEFAULTS, fund_preference_index  # finance imports this module

            return fund_preference_index(self, self.fund_params or DEFAULTS["fund_preference"]).get(window)
        days = window_days(window)
        if days is None or self.clock is None or not 1 <= days <= 400:
            return None
        if head.startswith("count."):
            return self.count_days(head[6:], days * 86_400)
        if head == "turnover_fen":
            return Money(bounded_sum(sum(self.count_days(t, days * 86_400, 1) for t in self.trade_types)))
        return None

    def window_features(self) -> dict[str, object]:
        """The published rolling windows of every event type this person has buckets of."""
        out: dict[str, object] = {}
        for event_type in sorted(self.days):
            for days in WINDOW_DAYS:
                out[f"count.{event_type}.{days}d"] = self.count_days(event_type, days * 86_400)
        for days in WINDOW_DAYS:
            out[f"turnover_fen.{days}d"] = self.derived(f"turnover_fen.{days}d")
        return out


def decode_map(doc: Mapping[str, list[Any]] | None) -> dict[str, object]:
    return {k: decode(v) for k, v in (doc or {}).items() if not k.startswith("_")}
