"""Entry triggers as per-(customer, journey) state machines over the log (complex event processing).

A compiled trigger is pure: ``on_event(state, event)`` and ``on_timer(state, payload)`` return a
:class:`Step` — whether it fires, the new state (JSON-able, persisted by the engine in the transaction of
the event), and the timers to arm or cancel (absence, "A then no B", dwell). Windows are measured on the
events' own times (``occurred_at``, never later than ``received_at``: :func:`event_time`); timers come due at event
time + the timeout (the calendar's last moment at most: ``clock.later``) and fire on the clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from svc_campaign.clock import later
from svc_common.conditions import EVENT_FILTER_SCOPE, Node, compile_condition, from_proto, matches_event
from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import event_pb2
from svc_common.timestamps import MAX_SECONDS, MIN_SECONDS, timestamp_datetime

SEGMENT_ENTERED = "$segment_entered"
SEGMENT_EXITED = "$segment_exited"
ALL_EVENTS = "*"
DWELL_SCREEN_EVENTS = ("page_view", "page_enter", "screen_view", "$screen_view")
"""The events of a screen that arm a dwell trigger on it (docs/campaign.md names each; a test checks)."""


@dataclass
class Step:
    fire: bool = False
    state: dict[str, Any] | None = None
    """The new state; None: unchanged."""
    arm: list[tuple[str, dt.datetime, dict[str, Any]]] = field(default_factory=list)
    """(timer key, due, payload) to arm (replacing a timer of the same key)."""
    cancel: list[str] = field(default_factory=list)
    """Timer keys to cancel."""
    event: dict[str, Any] | None = None
    """For a timer that fires: the properties of the event that started it (for personalisation)."""


def event_time(event: event_pb2.Event) -> dt.datetime:
    """When the event happened: its ``occurred_at``, but never after svc_collect received it (as svc_profile reads
    it). svc_collect flags, and by default keeps, a time far in the future: an event of 9999-12-31 made a timer's due
    time overflow the calendar, failing the log batch at every retry, which stopped every journey (before 0.2.9)."""
    received = received_time(event)
    if event.HasField("occurred_at"):
        occurred = event.occurred_at.ToDatetime(tzinfo=dt.UTC)
        return occurred if received is None or occurred <= received else received
    return received if received is not None else dt.datetime.now(dt.UTC)


def received_time(event: event_pb2.Event) -> dt.datetime | None:
    """When svc_collect received the event (None for one that never went through it)."""
    return event.received_at.ToDatetime(tzinfo=dt.UTC) if event.HasField("received_at") else None


def _ts(moment: dt.datetime) -> float:
    return moment.timestamp()


def _at(seconds: float) -> dt.datetime:
    """A stored time (seconds) as a datetime, within the calendar: a sequence's start kept by 0.2.8 from an event of
    9999-12-31, plus its window, overflowed it at the next step, failing the batch at every retry."""
    return dt.datetime.fromtimestamp(min(max(seconds, MIN_SECONDS), MAX_SECONDS), dt.UTC)


def event_properties(event: event_pb2.Event) -> dict[str, Any]:
    return {k: from_proto(v) for k, v in event.properties.items()}


def json_properties(event: event_pb2.Event) -> dict[str, Any]:
    """Properties as JSON values (times as ISO text) for persisted state and personalisation."""
    out: dict[str, Any] = {}
    for name, value in event_properties(event).items():
        if isinstance(value, dt.datetime):
            out[name] = value.isoformat()
        elif isinstance(value, tuple):
            out[name] = list(value)
        else:
            out[name] = value
    return out


class EventMatcher:
    """``SingleEventTrigger``: an event type and an optional property filter."""

    def __init__(self, spec: pb.SingleEventTrigger, where: str) -> None:
        if not spec.event_type:
            raise InvalidArgument(f"{where}.event_type: name the event type")
        self.event_type = spec.event_type
        self.filter: Node | None = (
            compile_condition(spec.filter, EVENT_FILTER_SCOPE, field=f"{where}.filter")
            if spec.HasField("filter") and spec.filter.WhichOneof("node")
            else None
        )

    def __call__(self, event: event_pb2.Event) -> bool:
        return event.event_type == self.event_type and (self.filter is None or matches_event(self.filter, event))


ERASED_CAUSE = "erased"
"""The ``cause`` of the ``$segment_exited`` events svc_profile publishes for an erasure (svc_profile.erasure)."""


def _key(event: event_pb2.Event, prop: str) -> str:
    if not prop:
        return ""
    value = event.properties.get(prop)
    return "" if value is None else str(from_proto(value))


def _positive(value: int, where: str) -> None:
    if value <= 0:
        raise InvalidArgument(f"{where} must be positive")


class Trigger:
    """Base: ``event_types`` are the types that can change its state (``*``: every event of the customer)."""

    event_types: frozenset[str] = frozenset()
    stateful: bool = False

    def on_event(self, state: dict[str, Any], event: event_pb2.Event) -> Step:
        raise NotImplementedError

    def on_timer(self, state: dict[str, Any], payload: dict[str, Any]) -> Step:
        return Step()


class SingleTrigger(Trigger):
    def __init__(self, spec: pb.SingleEventTrigger, where: str) -> None:
        self.match = EventMatcher(spec, where)
        self.event_types = frozenset({self.match.event_type})

    def on_event(self, state: dict[str, Any], event: event_pb2.Event) -> Step:
        return Step(fire=self.match(event))


class SegmentChangeTrigger(Trigger):
    def __init__(self, spec: pb.SegmentTrigger, where: str) -> None:
        if not spec.segment_id:
            raise InvalidArgument(f"{where}.segment_id: name the segment")
        if spec.change == pb.SegmentTrigger.CHANGE_UNSPECIFIED:
            raise InvalidArgument(f"{where}.change: CHANGE_ENTERED or CHANGE_EXITED")
        self.segment_id = spec.segment_id
        self.event_type = SEGMENT_ENTERED if spec.change == pb.SegmentTrigger.CHANGE_ENTERED else SEGMENT_EXITED
        self.event_types = frozenset({self.event_type})

    def on_event(self, state: dict[str, Any], event: event_pb2.Event) -> Step:
        # An erasure's exits (cause "erased") come just before its $profile_erased: a journey must not start for a
        # customer whose data is being erased.
        fire = event.event_type == self.event_type and _key(event, "segment_id") == self.segment_id
        return Step(fire=fire and _key(event, "cause") != ERASED_CAUSE)


class RepeatedTrigger(Trigger):
    """N matching events within a window (optionally sharing one property's value)."""

    stateful = True

    def __init__(self, spec: pb.RepeatedEventTrigger, where: str) -> None:
        self.match = EventMatcher(pb.SingleEventTrigger(event_type=spec.event_type, filter=spec.filter), where)
        if spec.count < 2:
            raise InvalidArgument(f"{where}.count must be at least 2 (use a single-event trigger for one)")
        _positive(spec.window_seconds, f"{where}.window_seconds")
        self.count, self.window, self.same = spec.count, spec.window_seconds, spec.same_property
        self.event_types = frozenset({spec.event_type})

    def on_event(self, state: dict[str, Any], event: event_pb2.Event) -> Step:
        if not self.match(event):
            return Step()
        now = _ts(event_time(event))
        hits: dict[str, list[float]] = {
            k: [t for t in v if t > now - self.window] for k, v in state.get("hits", {}).items()
        }
        hits = {k: v for k, v in hits.items() if v}
        key = _key(event, self.same)
        seen = sorted([*hits.get(key, []), now])[-self.count :]
        if len(seen) >= self.count:
            hits.pop(key, None)
            return Step(fire=True, state={"hits": hits})
        hits[key] = seen
        return Step(state={"hits": hits})


class SequenceTrigger(Trigger):
    """Steps in order within a window; with ``last_step_absent``: the steps but the last, then NO last step."""

    stateful = True

    def __init__(self, spec: pb.SequenceTrigger, where: str) -> None:
        if len(spec.steps) < 2:
            raise InvalidArgument(f"{where}.steps: a sequence needs at least two steps")
        _positive(spec.within_seconds, f"{where}.within_seconds")
        self.steps = [EventMatcher(s, f"{where}.steps[{i}]") for i, s in enumerate(spec.steps)]
        self.within = spec.within_seconds
        self.absent = spec.last_step_absent
        self.event_types = frozenset(m.event_type for m in self.steps)

    def on_event(self, state: dict[str, Any], event: event_pb2.Event) -> Step:
        now = _ts(event_time(event))
        if self.absent and state.get("armed"):
            if self.steps[-1](event):
                return Step(state={}, cancel=["sequence"])
            return Step()
        prefix = self.steps[:-1] if self.absent else self.steps
        position, started = state.get("step", 0), state.get("started", 0.0)
        received = received_time(event)
        if position and (now - started > self.within or (received is not None and started > _ts(received))):
            # Too late, or a start after this event was even received (one 0.2.8 kept from an event of 9999-12-31):
            # start over (this event may begin a new sequence).
            position = 0
        if not prefix[position](event):
            if position and prefix[0](event):
                position, started = 0, now  # a new first step restarts the window
            else:
                return Step() if position == state.get("step", 0) else Step(state={})
        if position == 0:
            started = now
        position += 1
        if position < len(prefix):
            return Step(state={"step": position, "started": started})
        if not self.absent:
            return Step(fire=True, state={})
        due = _at(started + self.within)
        return Step(state={"armed": True}, arm=[("sequence", due, {"event": json_properties(event)})])

    def on_timer(self, state: dict[str, Any], payload: dict[str, Any]) -> Step:
        return Step(fire=bool(state.get("armed")), state={}, event=payload.get("event"))


class AbsenceTrigger(Trigger):
    """A start event, and no expected event (sharing the correlating property) within the timeout."""

    stateful = True

    def __init__(self, spec: pb.AbsenceTrigger, where: str) -> None:
        self.start = EventMatcher(spec.start, f"{where}.start")
        self.expected = EventMatcher(spec.expected, f"{where}.expected")
        _positive(spec.timeout_seconds, f"{where}.timeout_seconds")
        self.timeout, self.correlate = spec.timeout_seconds, spec.correlate_property
        self.event_types = frozenset({self.start.event_type, self.expected.event_type})

    def on_event(self, state: dict[str, Any], event: event_pb2.Event) -> Step:
        pending: dict[str, float] = dict(state.get("pending", {}))
        key = _key(event, self.correlate)
        if self.expected(event) and key in pending:
            del pending[key]
            return Step(state={"pending": pending}, cancel=[f"absence:{key}"])
        if self.start(event) and key not in pending:
            due = later(event_time(event), self.timeout)
            pending[key] = _ts(due)
            return Step(
                state={"pending": pending}, arm=[(f"absence:{key}", due, {"key": key, "event": json_properties(event)})]
            )
        return Step()

    def on_timer(self, state: dict[str, Any], payload: dict[str, Any]) -> Step:
        pending = dict(state.get("pending", {}))
        if pending.pop(payload.get("key", ""), None) is None:
            return Step()
        return Step(fire=True, state={"pending": pending}, event=payload.get("event"))


class DwellTrigger(Trigger):
    """A screen entered and nothing else done within the timeout; or a dwell property over a threshold."""

    stateful = True

    def __init__(self, spec: pb.DwellTrigger, where: str) -> None:
        self.screen, self.timeout = spec.screen, spec.timeout_seconds
        self.dwell_event, self.dwell_property = spec.dwell_event_type, spec.dwell_property
        self.threshold = spec.dwell_threshold_millis
        if self.screen:
            _positive(self.timeout, f"{where}.timeout_seconds")
        elif self.dwell_event and self.dwell_property:
            _positive(self.threshold, f"{where}.dwell_threshold_millis")
        else:
            raise InvalidArgument(f"{where}: set screen and timeout_seconds, or dwell_event_type and dwell_property")
        self.event_types = frozenset({ALL_EVENTS}) if self.screen else frozenset({self.dwell_event})
        self.stateful = bool(self.screen)

    def on_event(self, state: dict[str, Any], event: event_pb2.Event) -> Step:
        if not self.screen:
            value = (
                from_proto(event.properties[self.dwell_property]) if self.dwell_property in event.properties else None
            )
            over = isinstance(value, int | float) and not isinstance(value, bool) and value >= self.threshold
            return Step(fire=event.event_type == self.dwell_event and over)
        if event.context.screen == self.screen and event.event_type in DWELL_SCREEN_EVENTS:
            due = later(event_time(event), self.timeout)
            return Step(state={"on": event.event_id}, arm=[("dwell", due, {"event": json_properties(event)})])
        if state.get("on"):
            return Step(state={}, cancel=["dwell"])  # any other action or page ends the dwell
        return Step()

    def on_timer(self, state: dict[str, Any], payload: dict[str, Any]) -> Step:
        return Step(fire=bool(state.get("on")), state={}, event=payload.get("event"))


class ScheduledEntry(Trigger):
    """Everyone in a segment at a time (once, or by cron): no events; the scheduler enters the members."""

    def __init__(self, spec: pb.ScheduledTrigger, where: str) -> None:
        from svc_campaign.cron import Cron

        if not spec.segment_id:
            raise InvalidArgument(f"{where}.segment_id: name the svc_profile segment whose members enter")
        if spec.cron and spec.HasField("run_at"):
            raise InvalidArgument(f"{where}: set run_at (once) or cron (recurring), not both")
        self.segment_id = spec.segment_id
        self.run_at = timestamp_datetime(spec.run_at, f"{where}.run_at") if spec.HasField("run_at") else None
        self.cron = Cron(spec.cron, spec.timezone, f"{where}.cron") if spec.cron else None
        if spec.timezone and self.cron is None:
            raise InvalidArgument(f"{where}.timezone: a time zone applies to a cron expression; set cron")

    def on_event(self, state: dict[str, Any], event: event_pb2.Event) -> Step:
        return Step()


_BUILDERS: dict[str, Callable[[Any, str], Trigger]] = {
    "event": SingleTrigger,
    "repeated_event": RepeatedTrigger,
    "sequence": SequenceTrigger,
    "absence": AbsenceTrigger,
    "dwell": DwellTrigger,
    "segment": SegmentChangeTrigger,
    "scheduled": ScheduledEntry,
}


def compile_trigger(spec: pb.Trigger, where: str = "trigger") -> Trigger:
    """Validate and compile; ``InvalidArgument`` naming the field when it is wrong."""
    kind = spec.WhichOneof("kind")
    if kind is None:
        raise InvalidArgument(f"{where}: choose a trigger kind")
    return _BUILDERS[kind](getattr(spec, kind), f"{where}.{kind}")
