"""Behavioural features, updated incrementally from the log, aggregated per person per batch.

Kept per person (``profile_person.features``): first/last seen, events, sessions, trades (count, last,
turnover), product views by category and fund type, views and trades by product risk level. Kept per
person per event type per day (``profile_day``): counts and amounts, from which every rolling window
(``count.<type>.<N>d``, ``turnover_fen.<N>d``) is derived at read time. See docs/profile.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Iterator, Mapping
from typing import Any

from svc_common.amounts import bounded_sum, number_as_fen
from svc_common.conditions import Money
from svc_common.db import storable_text
from svc_common.pb.qiming.common.v1 import event_pb2
from svc_profile.config import ProfileSettings
from svc_profile.model import DAY_US, Days, decode, document_json, from_us

_COUNTERS_MAX = ("risk.max_traded_level",)
FIRST_CUSTOMER_EVENT = "first_customer_event_at"
"""When the person became a customer here (0.2.10): their first event with a ``user_id`` on a customer's profile, or the
event that gave a known device its customer number (``seed_customer_since``). Where a customer without
``account_opened_at`` dates their account from (``finance.lifecycle``); ``first_seen_at`` also counts a device's
browsing merged in at login or signup."""
VIEWS_CHANGED = "~views"
"""Marks a person whose view features (views.*, risk_views.*) changed in a batch: rules reading them re-run."""
MAX_STORED_PROPERTIES = 16
RECENT_SESSIONS = 16
"""The distinct session ids a person's features remember, most recent first (``_sessions``): ``sessions`` counts a
session id once unless it comes back after this many others."""
SESSIONS_SEEN = "_sessions"
MAX_SESSION_CHARS = 128
"""A session id is remembered (and compared) by its first 128 characters, as a retained event keeps it."""
_LAST_SESSION = "_last_session"
"""Before 0.2.7: the last session id alone (a switch back to an earlier session counted it again)."""
_SHARED = 4096
_INTS = tuple(("i", n) for n in range(_SHARED))
"""Counter items of small values, made once and shared: a batch replaces a counter's item with one of these rather
than a new tuple, so fewer objects survive a batch for the cyclic collector to walk after it (docs/benchmarks.md,
session 15)."""


def _int(n: int) -> tuple[str, int]:
    return _INTS[n] if 0 <= n < _SHARED else ("i", n)


def _amount_reader(per_unit: int) -> Any:
    """A trade amount's reader for names in fen (``per_unit`` 1) or in yuan (100): an int or a double in that unit,
    a ``money_fen_value`` in fen whatever the name (the type says so); whole, bounded fen (``svc_common.amounts``)."""

    def read(value: Any) -> int | None:
        kind = value.WhichOneof("kind")
        if kind == "money_fen_value":
            return number_as_fen(value.money_fen_value)
        if kind in ("int_value", "double_value"):
            return number_as_fen(getattr(value, kind), per_unit)
        return None

    return read


_FEN, _YUAN = _amount_reader(1), _amount_reader(100)


def event_us(e: event_pb2.Event) -> int:
    """An event's time as the fold counts it (``FeatureUpdater.apply``, inline there): ``occurred_at``, but never
    after ``received_at``."""
    at, received = e.occurred_at, e.received_at
    us = at.seconds * 1_000_000 + at.nanos // 1000
    if received.seconds and us > received.seconds * 1_000_000:
        us = min(us, received.seconds * 1_000_000 + received.nanos // 1000)
    return us


def _risk_level(value: Any) -> int | None:
    kind = value.WhichOneof("kind")
    if kind == "int_value" and 1 <= value.int_value <= 5:
        return int(value.int_value)
    if kind == "string_value":
        text = value.string_value.strip().upper().lstrip("RC")
        if text.isdecimal() and 1 <= int(text) <= 5:  # not isdigit(): "²" is a digit that int() refuses
            return int(text)
    return None


class FeatureUpdater:
    """Applies a batch's events to the features of the persons they belong to."""

    def __init__(self, settings: ProfileSettings) -> None:
        self.days = Days(settings.day_offset_hours)
        self.trades = frozenset(settings.trade_event_types)
        self.views = frozenset(settings.view_event_types)
        # Fen names first, then yuan names: the first present wins (config validation keeps the two lists apart).
        self.amount_readers = tuple((name, _FEN) for name in settings.amount_properties) + tuple(
            (name, _YUAN) for name in settings.yuan_amount_properties
        )
        self.keep_events = settings.event_retention_days > 0

    def apply(
        self,
        docs: dict[str, dict[str, Any]],
        pids: list[str | None],
        events: list[event_pb2.Event],
        customers: Container[str] | None = None,
    ) -> tuple[dict[tuple[str, str, int], list[int]], list[tuple[Any, ...]]]:
        """Update ``docs`` ({pid: raw feature dict, its items owned by the caller}) in place; returns day-bucket
        deltas and retained-event rows (``ProfileStore.EVENT_COLUMNS``, properties as JSON text).

        The hot loop of the consumer: counters are incremented in place, each event's fields read once. Also
        left in ``types`` (the event types of each person, plus ``VIEWS_CHANGED`` where view features changed:
        which rules can change) and ``triggers`` (each person's last event id). ``customers``: the persons holding a
        customer number after resolving (None: all); an event's ``user_id`` counts as the customer's only on theirs
        (a placeholder ``user_id``, "undefined", leaves the event on a device's profile)."""
        deltas: dict[tuple[str, str, int], list[int]] = {}
        self.first_customer: set[str] = set()
        """The persons this batch gave a ``first_customer_event_at`` (``seed_customer_since``)."""
        self.changed: dict[str, set[str]] = defaultdict(set)
        self.types: dict[str, set[str]] = {}
        self.triggers: dict[str, str] = {}
        types, triggers = self.types, self.triggers
        rows: list[tuple[Any, ...]] = []
        offset, day_us = self.days.offset_us, DAY_US
        trades, views, keep = self.trades, self.views, self.keep_events
        for pid, e in zip(pids, events, strict=True):
            if pid is None:
                continue
            doc = docs[pid]
            at = e.occurred_at
            us = at.seconds * 1_000_000 + at.nanos // 1000
            received = e.received_at  # a device clock ahead: the event counts when svc_collect received it
            if received.seconds and us > received.seconds * 1_000_000:
                us = min(us, received.seconds * 1_000_000 + received.nanos // 1000)
            event_type, event_id = e.event_type, e.event_id
            triggers[pid] = event_id
            mine = types.get(pid)
            if mine is None:
                types[pid] = {event_type}
            else:
                mine.add(event_type)
            # Items are replaced, never changed in place: tuples (a cached person's features are dicts of tuples of
            # ints and strings, which the garbage collector stops tracking).
            item = doc.get("first_seen_at")
            if item is None or us < item[1]:
                doc["first_seen_at"] = ("t", us)
            item = doc.get("last_seen_at")
            if item is None or us > item[1]:
                doc["last_seen_at"] = ("t", us)
            item = doc.get("events_total")
            doc["events_total"] = _INTS[1] if item is None else _int(item[1] + 1)
            user = e.user_id
            if user and (customers is None or pid in customers):  # the customer's own first event: not a device's
                item = doc.get(FIRST_CUSTOMER_EVENT)
                if item is None:
                    doc[FIRST_CUSTOMER_EVENT] = ("t", us)
                    self.first_customer.add(pid)
                elif us < item[1]:
                    doc[FIRST_CUSTOMER_EVENT] = ("t", us)
            session = e.session_id
            if session:
                if len(session) > MAX_SESSION_CHARS:
                    session = session[:MAX_SESSION_CHARS]
                recent = doc.get(SESSIONS_SEEN)
                if recent is None or recent[0] != session:  # most events go on with the latest session
                    _see_session(doc, session)
            amount = 0
            properties = e.properties
            if event_type in trades:
                amount = self._trade(doc, e, properties, us)
            elif properties and event_type in views:
                self._view(doc, pid, properties)
            key = (pid, event_type, (us + offset) // day_us)
            slot = deltas.get(key)
            if slot is None:
                deltas[key] = [1, amount]
            else:
                slot[0] += 1
                slot[1] += amount
            if keep:
                context = e.context
                screen = context.screen
                fields = context.ListFields()  # the set fields only: usually screen alone, or nothing
                anonymous = e.anonymous_id
                rows.append(
                    (
                        event_id,
                        pid,
                        us,
                        event_type,
                        session[:128],
                        storable_text(screen)[:SCREEN_COLUMN_CHARS],  # screen_column, inline: once an event
                        _json(_scalar_properties(properties)) if properties else "{}",
                        e.channel or None,
                        user[:256] if user else None,
                        anonymous[:256] if anonymous else None,
                        _context(fields, screen) if len(fields) > (1 if screen else 0) or _off_column(screen) else None,
                    )
                )
        for pid, marks in self.changed.items():
            types[pid].update(marks)
        return deltas, rows

    def seed_customer_since(
        self,
        rows: Mapping[str, Any],
        fresh: Container[str],
        seen_before: Mapping[str, int | None],
        gained_us: Mapping[str, int],
    ) -> None:
        """``first_customer_event_at`` where this batch is the first to set it, for persons that were customers before
        the batch (not in ``fresh``: made or given a customer number by it) — a document of 0.2.9 or earlier, an
        imported customer —: the earliest of it, their own ``first_seen_at`` (``seen_before``: as it was before this
        batch's merges, where they absorbed a device) and the profile's creation, as their account was dated before
        0.2.10; and for a person given a customer number without an event as the customer (an alias, an identity on a
        plain event): the time of the event that gave it (``gained_us``). ``rows``: the batch's person rows (their
        ``features`` and ``created_us``)."""
        for pid in self.first_customer:
            if pid in fresh:
                continue
            row = rows[pid]
            doc = row.features
            if pid in seen_before:
                seen = seen_before[pid]
            else:
                item = doc.get("first_seen_at")
                seen = item[1] if item else None
            since = min(doc[FIRST_CUSTOMER_EVENT][1], row.created_us)
            doc[FIRST_CUSTOMER_EVENT] = ("t", since if seen is None else min(since, seen))
        for pid, at in gained_us.items():
            row = rows.get(pid)
            if row is not None and FIRST_CUSTOMER_EVENT not in row.features:
                row.features[FIRST_CUSTOMER_EVENT] = ("t", at)

    def forget(self) -> None:
        """Drop the last batch's ``types``, ``triggers`` and ``changed`` once it has used them: kept until the next
        batch, their sets (one a touched person, ~8,700 a 10,000-event batch) were the most numerous objects the
        collection after the batch walks (docs/benchmarks.md, session 16)."""
        self.changed, self.types, self.triggers, self.first_customer = defaultdict(set), {}, {}, set()

    def _trade(self, doc: dict[str, Any], e: event_pb2.Event, properties: Any, us: int) -> int:
        amount = 0
        _add(doc, "trade_count", 1)
        _first_last(doc, "first_trade_at", "last_trade_at", us)
        for name, read in self.amount_readers:
            if name in properties:
                amount = read(properties[name]) or 0
                break
        else:
            if any(n in e.masked_fields for n, _ in self.amount_readers):
                _add(doc, "trade_amount_masked", 1)
        if amount:
            doc["turnover_fen"] = ("m", bounded_sum(_get(doc, "turnover_fen") + amount))
        if "product_risk_level" in properties:
            level = _risk_level(properties["product_risk_level"])
            if level and level > _get(doc, "risk.max_traded_level"):
                doc["risk.max_traded_level"] = _int(level)
        return amount

    def _view(self, doc: dict[str, Any], pid: str, properties: Any) -> None:
        category = properties.get("product_category")
        if category is not None and category.WhichOneof("kind") == "string_value" and category.string_value:
            _add(doc, f"views.{category.string_value.lower()[:32]}", 1)
            self.changed[pid].add(VIEWS_CHANGED)
        fund_type = properties.get("fund_type")
        if fund_type is not None and fund_type.WhichOneof("kind") == "string_value" and fund_type.string_value:
            _add(doc, f"views.fund.{fund_type.string_value.lower()[:32]}", 1)
            self.changed[pid].add(VIEWS_CHANGED)
        if "product_risk_level" in properties:
            level = _risk_level(properties["product_risk_level"])
            if level:
                _add(doc, f"risk_views.R{level}", 1)
                self.changed[pid].add(VIEWS_CHANGED)


_json = document_json


_NOT_KEPT = frozenset({"screen", "ip"})
"""Context fields a retained event does not keep in ``context_fields``: screen has its column, ip is level 3."""


SCREEN_COLUMN_CHARS = 256


def screen_column(screen: str) -> str:
    """A screen as the retained event's ``screen`` column holds it, and as paths group and find it: its first 256
    characters, a NUL written as ``\\x00`` (``storable_text``)."""
    return storable_text(screen)[:SCREEN_COLUMN_CHARS]


def _off_column(screen: str) -> bool:
    """A screen its column cannot hold as it is: longer than 256 characters, or with a NUL (svc_collect keeps
    context text verbatim; PostgreSQL's text refuses U+0000, which failed the batch at every retry before 0.2.9)."""
    return len(screen) > SCREEN_COLUMN_CHARS or "\x00" in screen


def _context(fields: list[tuple[Any, str]], screen: str) -> str | None:
    """The retained event's ``context_fields``: its set context fields but ip, whole (svc_collect bounds them by
    its ``max_string_chars``), so that a filter sees what the event carried (a cut page_url would miss a
    ``utm_`` parameter past the cut, or equal a shorter URL). Screen is there only when its column cannot hold it
    (``_off_column``)."""
    kept = {f.name: value for f, value in fields if f.name not in _NOT_KEPT}
    if _off_column(screen):
        kept["screen"] = screen
    return _json(kept) if kept else None


def recent_sessions(doc: Mapping[str, Any]) -> tuple[str, ...]:
    """The session ids ``doc`` remembers, most recent first (a document of 0.2.6 or earlier: its last one)."""
    recent = doc.get(SESSIONS_SEEN)
    if recent is not None:
        return tuple(recent)
    last = doc.get(_LAST_SESSION)
    return (last[:MAX_SESSION_CHARS],) if isinstance(last, str) and last else ()


def _see_session(doc: dict[str, Any], session: str) -> None:
    """``session`` is the person's latest; counted in ``sessions`` when not among the recent ones."""
    recent = doc.get(SESSIONS_SEEN)
    if recent is None:  # the first, or a document of 0.2.6
        recent = recent_sessions(doc)
        doc.pop(_LAST_SESSION, None)
    if session in recent:
        doc[SESSIONS_SEEN] = (session, *[s for s in recent if s != session])
        return
    doc[SESSIONS_SEEN] = (session, *recent[: RECENT_SESSIONS - 1])
    _add(doc, "sessions", 1)


def _get(doc: dict[str, Any], name: str) -> int:
    item = doc.get(name)
    return item[1] if item else 0


def _add(doc: dict[str, Any], name: str, n: int) -> None:
    item = doc.get(name)
    doc[name] = _int((item[1] if item else 0) + n)


def _first_last(doc: dict[str, Any], first: str, last: str, us: int) -> None:
    item = doc.get(first)
    if item is None or us < item[1]:
        doc[first] = ("t", us)
    item = doc.get(last)
    if item is None or us > item[1]:
        doc[last] = ("t", us)


def _scalar_properties(properties: Any) -> dict[str, Any]:
    """The scalar properties a retained event keeps: all of them, or of more than ``MAX_STORED_PROPERTIES`` the first
    in name order (a protobuf map's order changes from one process to the next: until 0.2.10 which 16 of an event's
    20 were kept, and so whether a step filter on one found it, changed with it, and a replay could keep others)."""
    out: dict[str, Any] = {}
    items = properties.items() if len(properties) <= MAX_STORED_PROPERTIES else sorted(properties.items())
    for name, value in items:
        kind = value.WhichOneof("kind")
        if kind == "string_value":
            out[name] = ("s", value.string_value)  # whole, as context fields: filters compare what was sent
        elif kind == "int_value":
            out[name] = ("i", value.int_value)
        elif kind == "double_value":
            out[name] = ("d", value.double_value)
        elif kind == "bool_value":
            out[name] = ("b", value.bool_value)
        elif kind == "money_fen_value":
            out[name] = ("m", value.money_fen_value)
        if len(out) >= MAX_STORED_PROPERTIES:
            break
    return out


def merge_features(winner: dict[str, Any], loser: dict[str, Any]) -> dict[str, Any]:
    """The features of two merged persons: counters add up, first_* keep the earliest, last_* the latest."""
    out = dict(winner)
    for name, item in loser.items():
        mine = out.get(name)
        if mine is None:
            out[name] = item
        elif name.startswith("_"):
            continue
        elif name.startswith("first_"):
            out[name] = min(mine, item, key=lambda i: i[1])
        elif name.startswith("last_") or name in _COUNTERS_MAX:
            out[name] = max(mine, item, key=lambda i: i[1])
        elif mine[0] in ("i", "m") and item[0] == mine[0]:
            out[name] = [mine[0], bounded_sum(mine[1] + item[1])]
    theirs = recent_sessions(loser)
    if theirs:  # a session both had among their recent ones is one session: counted once
        mine = recent_sessions(winner)
        both = len(set(mine) & set(theirs))
        counted = out.get("sessions")
        if both and counted is not None and counted[0] == "i":
            out["sessions"] = ["i", max(counted[1] - both, 1)]
        # The side seen last first: its session goes on (a login merges the device into the customer, whose 16
        # remembered sessions would otherwise push out the device's current one, counted again at its next event).
        if _last_seen(loser) > _last_seen(winner):
            mine, theirs = theirs, mine
        out[SESSIONS_SEEN] = (*mine, *(s for s in theirs if s not in mine))[:RECENT_SESSIONS]
        out.pop(_LAST_SESSION, None)
    return out


def _last_seen(doc: Mapping[str, Any]) -> int:
    item = doc.get("last_seen_at")
    return item[1] if item else 0


class LazyFeatures(Mapping[str, object]):
    """``decoded_features(doc)`` decoding each feature when it is read: the log consumer evaluates a few
    features of each person (formulas read a handful; most features, timestamps among them, are never read in a
    batch). A view of ``doc`` as it is when read: the batch has folded its events into it before evaluating."""

    __slots__ = ("_decoded", "_doc")

    def __init__(self, doc: dict[str, Any]) -> None:
        self._doc = doc
        self._decoded: dict[str, object] = {}

    def get(self, name: str, default: Any = None) -> Any:
        value = self._decoded.get(name, _ABSENT)
        if value is _ABSENT:
            item = self._doc.get(name)
            if item is None or name.startswith("_"):
                return default
            value = self._decoded[name] = decode(item)
        return value

    def __getitem__(self, name: str) -> object:
        value = self.get(name, _ABSENT)
        if value is _ABSENT:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and not name.startswith("_") and name in self._doc

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._doc if not name.startswith("_"))

    def __len__(self) -> int:
        return sum(1 for name in self._doc if not name.startswith("_"))


_ABSENT: Any = object()


def decoded_features(doc: dict[str, Any]) -> dict[str, object]:
    """The stored features as Python values (internal ``_`` entries left out)."""
    out: dict[str, object] = {}
    for name, item in doc.items():
        if not name.startswith("_"):
            out[name] = decode(item)
    return out


__all__ = ["FeatureUpdater", "LazyFeatures", "Money", "decoded_features", "from_us", "merge_features"]
