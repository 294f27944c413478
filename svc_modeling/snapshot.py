"""Point-in-time profile features from the event log: what svc_profile's live features would have been at a
moment, with no event from after it.

The log is read once, in log order. Events of a customer (``user_id``) that happened at or before the snapshot
(``occurred_at``; and at or after ``since`` for a funnel's time range) are folded into features by svc_profile's
own ``FeatureUpdater``, so every name and meaning is the live profile's: ``first_seen_at``, ``last_seen_at``,
``events_total``, ``sessions``, ``trade_count``, ``turnover_fen``, ``views.<category>`` ... and, from per-day
buckets of the same calendar days (``day_offset_hours``), the windows ``count.<type>.<N>d`` and
``turnover_fen.<N>d`` ending at the snapshot. The label is read from the events after the snapshot (within the
horizon), the treatment from ``$message_sent`` events of a journey before it.

Events without a ``user_id`` (anonymous, before login) are not counted: svc_profile stitches them to the person
once they log in, a snapshot keyed by customer number does not.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from svc_common.amounts import bounded_sum
from svc_common.conditions import EventAbsence, EventCount, Money, Node, Source, from_proto, matches_event
from svc_common.errors import FieldViolation, InvalidArgument
from svc_common.pb.qiming.common.v1 import event_pb2, types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_modeling.frame import Frame
from svc_profile.features import FeatureUpdater, decoded_features
from svc_profile.model import WINDOW_DAYS, Days, window_days

VT = types_pb2.ValueType
SEGMENT_EVENTS = "$segment_"
"""svc_profile's own events, which it does not count (nor does a snapshot)."""
MESSAGE_SENT = "$message_sent"
PROFILE_ERASED = "$profile_erased"
"""svc_profile's erasure of a customer (DeleteProfile): a snapshot forgets what it counted of them, and ignores their
events from before the erasure read later, as svc_campaign does."""
COUNTERS = frozenset(
    {"events_total", "sessions", "trade_count", "turnover_fen", "trade_amount_masked", "risk.max_traded_level"}
    | {"first_seen_at", "last_seen_at", "first_trade_at", "last_trade_at"}
    | {f"risk_views.R{level}" for level in range(1, 6)}
)
"""svc_profile's fixed features (a counter is 0, a time missing, until an event sets it): never an unknown name."""
ID_COLUMN = "customer_id"
TREATMENT_COLUMN = "treatment"
CONTROL = "control"


@dataclass(frozen=True)
class LabelSpec:
    name: str
    event_type: str
    filter: Node | None
    horizon_us: int
    absent: bool


@dataclass
class Customer:
    """One customer's state at the snapshot."""

    doc: dict[str, Any] = field(default_factory=dict)
    days: dict[str, dict[int, list[int]]] = field(default_factory=lambda: defaultdict(dict))
    events: list[event_pb2.Event] = field(default_factory=list)


class SnapshotBuilder:
    """Feed it the log's batches with :meth:`add`; then read features, labels and treatment."""

    def __init__(
        self,
        settings: Any,
        at_us: int,
        *,
        since_us: int | None = None,
        label: LabelSpec | None = None,
        treatment_journey: str = "",
        keep_event_types: Iterable[str] = (),
    ) -> None:
        self.updater = FeatureUpdater(
            SimpleNamespace(
                day_offset_hours=settings.day_offset_hours,
                trade_event_types=settings.trade_event_types,
                view_event_types=settings.view_event_types,
                amount_properties=settings.amount_properties,
                yuan_amount_properties=settings.yuan_amount_properties,
                event_retention_days=0,
            )
        )
        self.trade_types = tuple(settings.trade_event_types)
        self.clock = Days(settings.day_offset_hours)
        self.at_us = at_us
        self.since_us = since_us
        self.label = label
        self.journey = treatment_journey
        self.keep = frozenset(keep_event_types)
        self.customers: dict[str, Customer] = defaultdict(Customer)
        self.labelled: set[str] = set()
        self.treated: set[str] = set()
        self.events_read = 0
        self.events_after = 0
        self.first_event_us: int | None = None
        """The earliest time of a customer's event the snapshot counts (None: none yet)."""
        self.erased: dict[str, int] = {}
        """Customers erased in svc_profile, and when (their events until then are not counted)."""
        self._log_features: set[str] | None = None

    def add(self, events: Sequence[event_pb2.Event]) -> None:
        mine: list[event_pb2.Event] = []
        label = self.label
        for e in events:
            self.events_read += 1
            if not e.user_id or e.event_type.startswith(SEGMENT_EVENTS):
                continue
            us = e.occurred_at.seconds * 1_000_000 + e.occurred_at.nanos // 1000
            if e.event_type == PROFILE_ERASED:
                self._forget(e.user_id, us, mine)
                continue
            if us <= self.erased.get(e.user_id, -1):
                continue
            if us > self.at_us:
                self.events_after += 1
                if (
                    label is not None
                    and e.event_type == label.event_type
                    and us <= self.at_us + label.horizon_us
                    and (label.filter is None or matches_event(label.filter, e))
                ):
                    self.labelled.add(e.user_id)
                continue
            if self.since_us is not None and us < self.since_us:
                continue
            if self.journey and e.event_type == MESSAGE_SENT:
                journey = e.properties.get("journey_id")
                if journey is not None and journey.string_value == self.journey:
                    self.treated.add(e.user_id)
            if e.event_type.startswith("$message_"):  # svc_campaign's deliveries: not counted by svc_profile
                continue
            if self.first_event_us is None or us < self.first_event_us:
                self.first_event_us = us
            if e.event_type in self.keep:
                self.customers[e.user_id].events.append(e)
            mine.append(e)
        if not mine:
            return
        docs = _Docs(self.customers)
        deltas, _rows = self.updater.apply(docs, [e.user_id for e in mine], mine)
        for (user, event_type, day), (count, amount) in deltas.items():
            slot = self.customers[user].days[event_type].setdefault(day, [0, 0])
            slot[0] += count
            slot[1] += amount

    def _forget(self, user: str, erased_us: int, pending: list[event_pb2.Event]) -> None:
        """An erased customer: nothing counted of them so far (this batch's pending events included) stays."""
        self.erased[user] = max(erased_us, self.erased.get(user, erased_us))
        self.customers.pop(user, None)
        self.labelled.discard(user)
        self.treated.discard(user)
        pending[:] = [e for e in pending if e.user_id != user]

    def seen(self) -> list[str]:
        """Every customer with an event up to the snapshot, sorted."""
        return sorted(self.customers)

    # -- features ---------------------------------------------------------------------------------

    def window(self, customer: Customer, name: str) -> object:
        """``count.<type>.<N>d`` or ``turnover_fen.<N>d`` (N from 1 to 400) ending at the snapshot; None otherwise."""
        head, _, span = name.rpartition(".")
        days = window_days(span)
        if days is None or not 1 <= days <= 400:
            return None
        first = self.clock.of(self.at_us) - days + 1
        if head.startswith("count."):
            buckets = customer.days.get(head[6:]) or {}
            return sum(v[0] for d, v in buckets.items() if d >= first)
        if head == "turnover_fen":
            days = (customer.days.get(t) or {} for t in self.trade_types)
            return Money(bounded_sum(sum(v[1] for by_day in days for d, v in by_day.items() if d >= first)))
        return None

    def features(self, user: str) -> dict[str, object]:
        """The live profile's feature names and values at the snapshot (windows 1, 7, 30, 90 days)."""
        customer = self.customers.get(user) or Customer()
        out = decoded_features(customer.doc)
        for event_type in sorted(customer.days):
            for n in WINDOW_DAYS:
                out[f"count.{event_type}.{n}d"] = self.window(customer, f"count.{event_type}.{n}d")
        for n in WINDOW_DAYS:
            out[f"turnover_fen.{n}d"] = self.window(customer, f"turnover_fen.{n}d")
        return out

    def known_features(self, names: Iterable[str]) -> set[str]:
        """Of ``names``, the event features: svc_profile's counters, and any name some customer of the log has
        at the snapshot (read once: the rare path of a population lacking a model's feature)."""
        wanted = set(names)
        known = wanted & COUNTERS
        if self._log_features is None and wanted - known:
            self._log_features = {name for user in self.customers for name in self.features(user)}
        return known | (wanted & (self._log_features or set()))

    def label_of(self, user: str) -> int:
        assert self.label is not None
        return int((user in self.labelled) != self.label.absent)


class _Docs(dict):  # type: ignore[type-arg]
    """FeatureUpdater's ``docs``: each customer's raw feature document, created on first use."""

    def __init__(self, customers: dict[str, Customer]) -> None:
        super().__init__()
        self._customers = customers

    def __missing__(self, user: str) -> dict[str, Any]:
        doc = self._customers[user].doc
        self[user] = doc
        return doc


class SnapshotSubject:
    """A customer as conditions see it at the snapshot: features from the log, attributes and tags from
    svc_profile (now), event conditions over the windows ending at the snapshot."""

    def __init__(self, builder: SnapshotBuilder, user: str, profile: Any | None) -> None:
        self.builder = builder
        self.customer = builder.customers.get(user) or Customer()
        self.features = builder.features(user)
        self.attributes: dict[str, object] = {}
        self.tags: dict[str, object] = {}
        self.scores: dict[str, object] = {}
        self.segments: set[str] = set()
        if profile is not None:
            self.attributes = {k: from_proto(v) for k, v in profile.attributes.items()}
            for tag in profile.tags:
                self.tags[tag.name] = from_proto(tag.value)
                if tag.provenance.source == types_pb2.Provenance.SOURCE_MODEL:
                    self.scores[tag.name] = self.tags[tag.name]
            self.segments = set(profile.segment_ids)

    def value(self, source: Source, name: str) -> object:
        if source is Source.ATTRIBUTE:
            return self.attributes.get(name)
        if source is Source.FEATURE:
            found = self.features.get(name)
            return found if found is not None else self.builder.window(self.customer, name)
        if source is Source.TAG:
            return self.tags.get(name)
        if source is Source.SCORE:
            return self.scores.get(name)
        return None

    def count_events(self, node: EventCount | EventAbsence) -> int:
        if node.filter is None and node.window_seconds % 86_400 == 0:
            days = node.window_seconds // 86_400
            counted = self.builder.window(self.customer, f"count.{node.event_type}.{days}d")
            return int(counted or 0)  # type: ignore[call-overload]
        since = self.builder.at_us - node.window_seconds * 1_000_000
        return sum(
            1
            for e in self.customer.events
            if e.event_type == node.event_type
            and e.occurred_at.ToMicroseconds() >= since
            and (node.filter is None or matches_event(node.filter, e))
        )

    def in_segment(self, segment_id: str) -> bool:
        return segment_id in self.segments


# -- the dataset ------------------------------------------------------------------------------------


def _value_type(values: list[object]) -> int | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    if any(isinstance(v, tuple) for v in present):
        return None  # string lists are not a column type
    if any(isinstance(v, str) for v in present):
        return VT.VALUE_TYPE_STRING
    if all(isinstance(v, dt.datetime) for v in present):
        return VT.VALUE_TYPE_TIMESTAMP
    if any(isinstance(v, dt.datetime) for v in present):
        return VT.VALUE_TYPE_STRING
    if all(isinstance(v, bool) for v in present):
        return VT.VALUE_TYPE_BOOL
    if all(isinstance(v, Money) for v in present):
        return VT.VALUE_TYPE_MONEY_FEN
    if all(isinstance(v, int) for v in present):
        return VT.VALUE_TYPE_INT
    return VT.VALUE_TYPE_DOUBLE


def _column_values(values: list[object], value_type: int) -> np.ndarray:
    if value_type == VT.VALUE_TYPE_STRING:
        return np.array([None if v is None else str(v) for v in values], dtype=object)
    if value_type == VT.VALUE_TYPE_TIMESTAMP:
        return np.array(
            [np.nan if v is None else (v - _EPOCH) / dt.timedelta(microseconds=1) for v in values], dtype=np.float64
        )
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)  # type: ignore[arg-type]


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def check_window_names(names: Sequence[str], field_name: str = "features") -> None:
    """A window feature's N must be 1 to 400 days: INVALID_ARGUMENT before a job reads the log."""
    for i, name in enumerate(names):
        head, _, span = name.rpartition(".")
        days = window_days(span) if head.startswith("count.") or head == "turnover_fen" else None
        if days is not None and not 1 <= days <= 400:
            raise InvalidArgument(
                f"{field_name}[{i}] {name!r}: a window is 1 to 400 days",
                violations=[FieldViolation(f"{field_name}[{i}]", "N from 1 to 400 in <name>.<N>d")],
            )


def is_window(name: str) -> bool:
    head, _, span = name.rpartition(".")
    days = window_days(span)
    return (head.startswith("count.") or head == "turnover_fen") and days is not None and 1 <= days <= 400


def snapshot_frame(
    builder: SnapshotBuilder,
    customers: Sequence[str],
    attributes: dict[str, dict[str, object]],
    wanted: Sequence[str] = (),
    *,
    field_name: str = "features",
    withheld: frozenset[str] | set[str] = frozenset(),
) -> Frame:
    """A row per customer: ``customer_id``, features (and declared attributes), then label and treatment.

    ``wanted`` restricts the columns (a window feature of any N is computed on demand); empty: every feature and
    attribute, absolute times (``first_seen_at`` ...) kept with role IGNORED: their meaning shifts between a
    snapshot and scoring time (name them to use them anyway).
    """
    per_customer = [builder.features(c) for c in customers]
    feature_names = sorted({name for f in per_customer for name in f})
    attribute_names = sorted({name for a in attributes.values() for name in a} - set(feature_names))
    names = feature_names + attribute_names
    from_log: set[str] = set()
    if wanted:
        # A model's feature that no customer of this population has (no fund view in a small segment) is what
        # training saw for such customers: 0 (missing for a time). Refused only when nobody in the log has it.
        absent = [w for w in wanted if w not in names and not is_window(w)]
        from_log = builder.known_features(absent) if absent else set()
        unknown = [w for w in absent if w not in from_log]
        masked = [w for w in unknown if w in withheld]
        if masked:
            raise InvalidArgument(
                f"{masked[0]!r} is a level 3+ attribute that svc_profile withholds from svc_modeling (it reads "
                "profiles without an unmask role): leave it out, or give svc_modeling's caller identity an unmask "
                "role in svc_profile",
                violations=[FieldViolation(field_name, f"withheld by svc_profile: {', '.join(masked)}")],
            )
        if unknown:
            shown = ", ".join(names[:40]) + (f" and {len(names) - 40} more" if len(names) > 40 else "")
            raise InvalidArgument(
                f"no customer of the population has {unknown[0]!r}; known: {shown or 'none'} (and windows "
                "count.<event_type>.<N>d / turnover_fen.<N>d, N from 1 to 400)",
                violations=[
                    FieldViolation(field_name, f"unknown: {', '.join(unknown)}; known: {', '.join(names[:60])}")
                ],
            )
        names = list(dict.fromkeys(wanted))
    data: dict[str, Any] = {ID_COLUMN: np.array(list(customers), dtype=object)}
    columns = [pb.Column(name=ID_COLUMN, type=VT.VALUE_TYPE_STRING, role=pb.COLUMN_ROLE_ID)]
    for name in names:
        if name in attribute_names or (name not in feature_names and name not in from_log and not is_window(name)):
            values = [attributes.get(c, {}).get(name) for c in customers]
            description = "declared attribute (svc_profile, as of the build)"
        else:
            values = [f.get(name) for f in per_customer]
            if is_window(name) or not name.endswith("_at"):
                values = [
                    builder.window(builder.customers.get(c) or Customer(), name) if v is None and is_window(name)
                    else (0 if v is None else v)
                    for c, v in zip(customers, values, strict=True)
                ]  # fmt: skip
            description = "feature at the snapshot (from the event log)"
        value_type = _value_type(values)
        if value_type is None:
            if wanted:
                value_type = VT.VALUE_TYPE_DOUBLE  # named but nobody has it: an empty column, still there
            else:
                continue
        role = pb.COLUMN_ROLE_FEATURE
        if value_type == VT.VALUE_TYPE_TIMESTAMP and not wanted:
            role = pb.COLUMN_ROLE_IGNORED
        data[name] = _column_values(values, value_type)
        columns.append(pb.Column(name=name, type=value_type, role=role, description=description))
    if builder.label is not None:
        label_name = builder.label.name or "label"
        if label_name in data:
            raise InvalidArgument(
                f"label name {label_name!r} is also a column of the snapshot",
                violations=[FieldViolation("label.name", "choose another name, e.g. renewed_30d")],
            )
        data[label_name] = np.array([float(builder.label_of(c)) for c in customers], dtype=np.float64)
        columns.append(pb.Column(name=label_name, type=VT.VALUE_TYPE_INT, role=pb.COLUMN_ROLE_LABEL))
    if builder.journey:
        data[TREATMENT_COLUMN] = np.array(
            [builder.journey if c in builder.treated else CONTROL for c in customers], dtype=object
        )
        columns.append(
            pb.Column(
                name=TREATMENT_COLUMN,
                type=VT.VALUE_TYPE_STRING,
                role=pb.COLUMN_ROLE_TREATMENT,
                description=f"{builder.journey}: sent a message by journey {builder.journey} before the snapshot",
            )
        )
    return Frame(pd.DataFrame(data), columns)
