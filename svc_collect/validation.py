"""What makes an event acceptable: its form (ids, type, times, sizes, typed values) and, when its type
has a registered schema, the schema (required properties, types, allowed values, lengths).

This runs for every event on the ingest path, so it is written for speed: rules are compiled once per
schema version, and checks touch only the fields that are set.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from svc_collect._native import AVAILABLE as NATIVE_AVAILABLE
from svc_collect._native import fastcheck as _fastcheck
from svc_collect._schema_rules import (  # re-exported: the names svc_collect.validation always had
    EVENT_TYPE_RE,
    KINDS_FOR_TYPE,
    NUL_MESSAGE,
    PROPERTY_NAME_RE,
    RESERVED_EVENT_TYPES,
    CompiledSchema,
    PropertyRule,
    compile_schema,
    value_of,
)
from svc_collect.config import CollectSettings
from svc_collect.unknown_fields import describe, holds_unknown
from svc_common.db import storable_text
from svc_common.errors import FieldViolation, InvalidArgument
from svc_common.ids import invisible_violation
from svc_common.pb.qiming.common.v1 import errors_pb2, event_pb2, types_pb2
from svc_common.protection import SIGNATURE_PROPERTY, SIGNED_EVENT_TYPES, SystemEventSigner, is_signed, publisher_of
from svc_common.timestamps import MAX_SECONDS, MIN_SECONDS
from svc_common.timestamps import valid_timestamp as _valid_timestamp

R = errors_pb2.ErrorReason

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_uuid_fullmatch = UUID_RE.fullmatch
# Tag bytes (field number << 3 | 2, length-delimited) of Event.identities (7) and of EventContext.ip (9). Every
# value of such a field is written after its tag, so an encoding in which the byte occurs nowhere has no such field:
# a membership test on the bytes (memchr) instead of reading the field (a upb container or two objects). They are
# ints on purpose: ``b"x" in data`` first tries the bytes object as an int and raises and clears a TypeError
# inside (~1,700 instructions); ``int in data`` goes straight to memchr.
IDENTITIES_TAG = 0x3A
CONTEXT_IP_TAG = 0x4A
# upb's message methods called through the class: ``event.HasField(...)`` first looks the name up among the
# message's fields (a miss) and then as an attribute, about twice the cost of the call itself.
has_field = event_pb2.Event.HasField
serialize = event_pb2.Event.SerializeToString
which_oneof = types_pb2.Value.WhichOneof
_TIME_LIMIT_US = 1 << 62  # the C check's int64 arithmetic stays clear of overflow within this
MAX_ID_CHARS = 128
MAX_LIST_ITEMS = 1000
# protobuf Timestamp's valid range: 0001-01-01 .. 9999-12-31 (one definition for every service).
_MIN_SECONDS, _MAX_SECONDS = MIN_SECONDS, MAX_SECONDS

FLAG_OCCURRED_IN_FUTURE = 1
FLAG_OCCURRED_TOO_OLD = 2
FLAG_NAMES = {FLAG_OCCURRED_IN_FUTURE: "occurred_at_in_future", FLAG_OCCURRED_TOO_OLD: "occurred_at_too_old"}
_BAD_TIMESTAMP = "not a valid timestamp: seconds from 0001-01-01 to 9999-12-31 UTC, nanos 0 to 999,999,999"

_CHANNELS = frozenset(types_pb2.Channel.values())
_ID_TYPES = frozenset(types_pb2.IdType.values()) - {types_pb2.ID_TYPE_UNSPECIFIED, types_pb2.ID_TYPE_CANONICAL}

# Caches of valid names stop growing here (a client inventing names cannot grow the process without bound).
_NAME_CACHE_LIMIT = 10_000
# Kinds checked even when the event is too small to hold an over-long string (NaN, timestamps, list length).
_KINDS_TO_CHECK = frozenset({"double_value", "timestamp_value", "string_list_value"})


# What EventValidator.check returns for an acceptable event: flags, data, occurred_us, schema, property names,
# whether it has identities, event_id (lower case), event_type, user_id, anonymous_id.
Accepted = tuple[int, bytes, int, "CompiledSchema | None", "list[str] | tuple[()]", bool, str, str, str, str]


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one event was refused: an ErrorReason value, the field at fault, and words for people."""

    reason: int
    field: str
    message: str

    @property
    def reason_name(self) -> str:
        return reason_name(self.reason)


def reason_name(reason: int) -> str:
    """``ERROR_REASON_INVALID_EVENT_ID`` → ``INVALID_EVENT_ID`` (the form stored and put in ErrorInfo)."""
    return R.Name(reason).removeprefix("ERROR_REASON_")


def reason_value(name: str) -> int:
    """The inverse of :func:`reason_name`; UNSPECIFIED for a name this release does not know."""
    try:
        return R.Value(f"ERROR_REASON_{name}")
    except ValueError:
        return R.ERROR_REASON_UNSPECIFIED


class EventValidator:
    """Checks one event at a time. ``schema_for`` returns the current schema of a type, or None; ``signer`` verifies
    the system events only svc_profile or svc_campaign may publish (:data:`SIGNED_EVENT_TYPES`)."""

    def __init__(
        self,
        settings: CollectSettings,
        schema_for: Callable[[str], CompiledSchema | None],
        signer: SystemEventSigner,
    ) -> None:
        self._schema_for = schema_for
        self._signer = signer
        self._max_chars = settings.max_string_chars
        self._max_bytes = settings.max_event_bytes
        self._max_props = settings.max_properties_per_event
        self._quarantine_unknown = settings.unknown_event_type_policy == "quarantine"
        self._future_us = settings.max_future_skew_seconds * 1_000_000
        self._age_us = settings.max_event_age_seconds * 1_000_000
        self._quarantine_out_of_range = settings.out_of_range_time_policy == "quarantine"
        # Names already found valid (a few dozen in practice): a set lookup instead of a regex per event.
        self._good_types: set[str] = set()
        self._good_names: set[str] = set()
        # The check in C takes the events it can vouch for; it shares the caches above (it accepts only names and
        # types this check found valid) and hands every other event to this one.
        self._native = None
        if settings.native_checks and _fastcheck is not None:
            self._native = _fastcheck.Checker(
                max_chars=self._max_chars,
                max_bytes=self._max_bytes,
                max_props=self._max_props,
                future_us=min(self._future_us, _TIME_LIMIT_US),  # a longer window flags nothing either way
                age_us=min(self._age_us, _TIME_LIMIT_US),
                quarantine_out_of_range=self._quarantine_out_of_range,
                quarantine_unknown=self._quarantine_unknown,
                good_types=self._good_types,
                good_names=self._good_names,
                channels=_CHANNELS,
                id_types=_ID_TYPES,
                signed_types=SIGNED_EVENT_TYPES,
                schema_for=schema_for,
            ).check

    @property
    def native(self) -> bool:
        """Whether events are checked in C first (``native_checks`` and an install that has the extension)."""
        return self._native is not None

    def check(self, event: event_pb2.Event, now_us: int) -> Rejection | Accepted:
        """A :class:`Rejection`, or what the collector needs next of an acceptable event (:data:`Accepted`).

        The check in C answers for the events it can vouch for, from the event's encoding alone (~1 µs instead of
        ~5); the others (a rejection, a name or type not seen before, a signed system event, an id or value outside
        printable ASCII where Unicode decides) get :meth:`check_in_python`, which words every rejection."""
        native = self._native
        if native is None:
            return self.check_in_python(event, now_us)
        data = serialize(event, deterministic=True)
        verdict = native(data, now_us)
        if verdict:
            return verdict  # type: ignore[no-any-return]
        if verdict is False:  # a valid id in upper case: stored in lower case, so encoded again
            event.event_id = event.event_id.lower()
            data = serialize(event, deterministic=True)
            verdict = native(data, now_us)
            if verdict:
                return verdict  # type: ignore[no-any-return]
        return self.check_in_python(event, now_us, data)  # the encoding made above, not a second one

    def check_in_python(
        self, event: event_pb2.Event, now_us: int, encoded: bytes | None = None
    ) -> Rejection | Accepted:
        """A :class:`Rejection`, or what the collector needs next of an acceptable event (:data:`Accepted`): its
        flags, its encoding, ``occurred_us``, its schema, its property names, whether it has identities, and its
        ids — read once here instead of again from the message (each read of a upb field builds an object).

        ``data`` is the event serialized deterministically, after ``event_id`` is normalized to lower case:
        the caller fingerprints and stores it, so each event is encoded once. Its length also answers the
        size limit, and bounds every string in it: an event of at most ``max_string_chars`` bytes cannot
        hold a longer string, so the per-string length checks are skipped for it (the usual case). ``encoded``: that
        encoding, when the caller made it already (it stands while the id needs no lowering).
        """
        event_id = event.event_id
        if len(event_id) != 36 or not _uuid_fullmatch(event_id):
            if not event_id:
                return Rejection(R.ERROR_REASON_MISSING_FIELD, "event_id", "event_id is required (a UUID)")
            return Rejection(R.ERROR_REASON_INVALID_EVENT_ID, "event_id", "event_id must be a UUID (8-4-4-4-12 hex)")
        lowered = event_id.lower()
        if lowered != event_id:
            event.event_id = event_id = lowered
            encoded = None  # made before the id changed
        event_type = event.event_type
        if event_type not in self._good_types:
            rejection = _check_event_type(event_type)
            if rejection:
                return rejection
            if len(self._good_types) < _NAME_CACHE_LIMIT:
                self._good_types.add(event_type)
        user_id = event.user_id
        anonymous_id = event.anonymous_id
        if not user_id and not anonymous_id:
            return Rejection(R.ERROR_REASON_MISSING_FIELD, "user_id", "an event needs a user_id or an anonymous_id")
        if len(user_id) > MAX_ID_CHARS or len(anonymous_id) > MAX_ID_CHARS:
            which = "user_id" if len(user_id) > MAX_ID_CHARS else "anonymous_id"
            return Rejection(R.ERROR_REASON_STRING_TOO_LONG, which, f"{which} is longer than {MAX_ID_CHARS}")
        session_id = event.session_id
        if len(session_id) > MAX_ID_CHARS:
            return Rejection(R.ERROR_REASON_STRING_TOO_LONG, "session_id", f"longer than {MAX_ID_CHARS}")
        if "\x00" in user_id or "\x00" in anonymous_id or "\x00" in session_id:
            # Ids go to text columns here and in every consumer; PostgreSQL's text cannot hold U+0000.
            which = "user_id" if "\x00" in user_id else "anonymous_id" if "\x00" in anonymous_id else "session_id"
            return Rejection(R.ERROR_REASON_VALUE_NOT_ALLOWED, which, NUL_MESSAGE)
        if not (user_id.isprintable() and anonymous_id.isprintable()):  # C speed; the precise check only then
            rejection = _invisible(user_id, "user_id") or _invisible(anonymous_id, "anonymous_id")
            if rejection:
                return rejection
        if event.channel not in _CHANNELS:
            return Rejection(R.ERROR_REASON_VALUE_NOT_ALLOWED, "channel", f"unknown channel {event.channel}")
        occurred = event.occurred_at
        seconds = occurred.seconds
        nanos = occurred.nanos
        # An unset occurred_at reads as 0 s 0 ns: only then is presence asked (a set one at the epoch is valid).
        if not seconds and not nanos and not has_field(event, "occurred_at"):
            return Rejection(R.ERROR_REASON_MISSING_FIELD, "occurred_at", "occurred_at is required")
        if not (_MIN_SECONDS <= seconds <= _MAX_SECONDS and 0 <= nanos < 1_000_000_000):
            return Rejection(R.ERROR_REASON_TIMESTAMP_OUT_OF_RANGE, "occurred_at", _BAD_TIMESTAMP)
        flags = 0
        occurred_us = seconds * 1_000_000 + nanos // 1000
        if occurred_us - now_us > self._future_us:
            flags = FLAG_OCCURRED_IN_FUTURE
        elif now_us - occurred_us > self._age_us:
            flags = FLAG_OCCURRED_TOO_OLD
        if flags and self._quarantine_out_of_range:
            return Rejection(R.ERROR_REASON_TIMESTAMP_OUT_OF_RANGE, "occurred_at", self._out_of_range(flags, now_us))
        data = serialize(event, deterministic=True) if encoded is None else encoded
        if holds_unknown(event, data):  # nothing would check or protect such a field (unknown_fields.py)
            return Rejection(R.ERROR_REASON_UNKNOWN_FIELD, *describe(event))
        # Every identity is written with the tag byte of field 7: without that byte anywhere, there is none (reading
        # the repeated field builds a container object, ~0.2 µs).
        identities = IDENTITIES_TAG in data and bool(event.identities)
        if identities:
            rejection = self._check_identities(event)
            if rejection:
                return rejection
        size = len(data)
        small = size <= self._max_chars
        if not small and has_field(event, "context"):
            rejection = self._check_context(event.context)
            if rejection:
                return rejection
        # A signed system type is checked by its signature, never by a schema (one stored by an older release is
        # ignored: svc_collect/_schema_rules.py).
        schema = self._schema_for(event_type) if event_type not in SIGNED_EVENT_TYPES else None
        if schema is None and self._quarantine_unknown and event_type[0] != "$":
            return Rejection(
                R.ERROR_REASON_UNKNOWN_EVENT_TYPE, "event_type", f"no schema is registered for {event_type!r}"
            )
        if schema is not None and schema.unusable:  # whatever the policy: its protection is not known
            return Rejection(R.ERROR_REASON_UNKNOWN_EVENT_TYPE, "event_type", schema.unusable)
        properties = event.properties
        names: list[str] | tuple[()] = ()
        if properties:
            # Sorted, as the check in C gives them (it sorts: upb's deterministic encoding puts "amount_fen" before
            # "amount"): protection lists the fields it masks, and names the first one it refuses, in this order, and
            # a rejection names the first bad property in it, whichever check answered.
            names = sorted(properties)
            rejection = self._check_properties(event, schema, small, names, properties)
            if rejection:
                return rejection
        elif schema is not None and schema.required:
            rejection = self._check_properties(event, schema, small, names, properties)
            if rejection:
                return rejection
        if event_type[0] == "$" and event_type in SIGNED_EVENT_TYPES and not self._signer.verify(event):
            return _unsigned(event)
        if size > self._max_bytes:
            return Rejection(
                R.ERROR_REASON_EVENT_TOO_LARGE, "", f"event is {size} bytes; the limit is {self._max_bytes}"
            )
        return flags, data, occurred_us, schema, names, identities, event_id, event_type, user_id, anonymous_id

    def _out_of_range(self, flags: int, now_us: int) -> str:
        """Why ``occurred_at`` is out of range under the quarantine policy: the window and the server's time."""
        now = dt.datetime.fromtimestamp(now_us / 1e6, dt.UTC).isoformat(timespec="seconds")
        if flags == FLAG_OCCURRED_IN_FUTURE:
            return (
                f"occurred_at is more than {self._future_us // 1_000_000} s after the server's time ({now}): fix the"
                " device clock, or replay once the time has come"
            )
        return (
            f"occurred_at is more than {self._age_us // 1_000_000} s before the server's time ({now}):"
            " max_event_age_seconds bounds how old an event may be"
        )

    def _check_identities(self, event: event_pb2.Event) -> Rejection | None:
        for i, identity in enumerate(event.identities):
            if identity.type not in _ID_TYPES:
                return Rejection(
                    R.ERROR_REASON_VALUE_NOT_ALLOWED,
                    f"identities[{i}].type",
                    f"id type {identity.type} is not accepted",
                )
            if not identity.value or len(identity.value) > MAX_ID_CHARS:
                return Rejection(
                    R.ERROR_REASON_MISSING_FIELD if not identity.value else R.ERROR_REASON_STRING_TOO_LONG,
                    f"identities[{i}].value",
                    f"an id value must have 1 to {MAX_ID_CHARS} characters",
                )
            if "\x00" in identity.value:
                return Rejection(R.ERROR_REASON_VALUE_NOT_ALLOWED, f"identities[{i}].value", NUL_MESSAGE)
            rejection = _invisible(identity.value, f"identities[{i}].value")
            if rejection:
                return rejection
        return None

    def _check_context(self, context: event_pb2.EventContext) -> Rejection | None:
        for descriptor, value in context.ListFields():
            if isinstance(value, str) and len(value) > self._max_chars:
                return Rejection(
                    R.ERROR_REASON_STRING_TOO_LONG, f"context.{descriptor.name}", f"longer than {self._max_chars}"
                )
        return None

    def _check_properties(
        self,
        event: event_pb2.Event,
        schema: CompiledSchema | None,
        small: bool = False,
        names: Sequence[str] | None = None,
        properties: object = None,
    ) -> Rejection | None:
        """``small``: the whole event is at most ``max_string_chars`` bytes, so no string can be too long.
        ``names`` and ``properties``: the property names and map, when the caller already has them."""
        if properties is None:
            properties = event.properties
        count = len(properties if names is None else names)  # type: ignore[arg-type]
        if count > self._max_props:
            return Rejection(
                R.ERROR_REASON_TOO_MANY_PROPERTIES, "properties", f"{count} properties; at most {self._max_props}"
            )
        rules = schema.rules if schema is not None else None
        good_names = self._good_names
        for name in properties if names is None else names:  # keys, then item access: cheaper than .items()
            value = properties[name]
            kind = which_oneof(value, "kind")
            if kind is None:
                return Rejection(
                    R.ERROR_REASON_PROPERTY_TYPE_MISMATCH,
                    f"properties.{storable_text(name[:128])}",
                    "the value is empty, or of a kind this server does not know",
                )
            if name not in good_names:
                if len(name) > 128 or not PROPERTY_NAME_RE.fullmatch(name):
                    return Rejection(
                        R.ERROR_REASON_INVALID_NAME,
                        f"properties.{storable_text(name[:128])}",
                        "not a valid property name: a letter, _ or $ first, then letters, digits and _ . : - $, at"
                        " most 128 characters",
                    )
                if len(good_names) < _NAME_CACHE_LIMIT:
                    good_names.add(name)
            if not small or kind in _KINDS_TO_CHECK:
                rejection = self._check_value(name, kind, value)
                if rejection:
                    return rejection
            if rules is not None:
                rule = rules.get(name)
                if rule is None:
                    if schema.reject_unknown:  # type: ignore[union-attr]
                        return Rejection(
                            R.ERROR_REASON_UNKNOWN_PROPERTY, f"properties.{name}", f"{name!r} is not in the schema"
                        )
                    continue
                if kind not in rule.kinds:
                    return Rejection(
                        R.ERROR_REASON_PROPERTY_TYPE_MISMATCH,
                        f"properties.{name}",
                        f"expected {types_pb2.ValueType.Name(rule.value_type).removeprefix('VALUE_TYPE_').lower()}, "
                        f"got {kind.removesuffix('_value')}",
                    )
                if rule.allowed is not None and getattr(value, kind) not in rule.allowed:
                    return Rejection(
                        R.ERROR_REASON_VALUE_NOT_ALLOWED, f"properties.{name}", "not one of the allowed values"
                    )
                if rule.max_length and kind == "string_value" and len(value.string_value) > rule.max_length:
                    return Rejection(
                        R.ERROR_REASON_STRING_TOO_LONG, f"properties.{name}", f"longer than {rule.max_length}"
                    )
        if schema is not None and schema.required:
            for name in schema.required:
                if name not in properties:
                    return Rejection(
                        R.ERROR_REASON_MISSING_REQUIRED_PROPERTY, f"properties.{name}", f"{name!r} is required"
                    )
        return None

    def _check_value(self, name: str, kind: str, value: types_pb2.Value) -> Rejection | None:
        if kind == "string_value":
            if len(value.string_value) > self._max_chars:
                return Rejection(R.ERROR_REASON_STRING_TOO_LONG, f"properties.{name}", f"longer than {self._max_chars}")
        elif kind == "double_value":
            if not math.isfinite(value.double_value):
                return Rejection(R.ERROR_REASON_VALUE_NOT_ALLOWED, f"properties.{name}", "NaN and infinity are refused")
        elif kind == "timestamp_value":
            if not _valid_timestamp(value.timestamp_value):
                return Rejection(R.ERROR_REASON_TIMESTAMP_OUT_OF_RANGE, f"properties.{name}", _BAD_TIMESTAMP)
        elif kind == "string_list_value":
            items = value.string_list_value.values
            if len(items) > MAX_LIST_ITEMS or any(len(s) > self._max_chars for s in items):
                return Rejection(
                    R.ERROR_REASON_STRING_TOO_LONG,
                    f"properties.{name}",
                    f"at most {MAX_LIST_ITEMS} items of at most {self._max_chars} characters",
                )
        return None


def _invisible(value: str, field: str) -> Rejection | None:
    """A person's id holding a control or format character (``c3001\\u202e``, ``c3\\u200b001``) is a different
    person that prints like another one (review walk-sec 2026-12-06 F13): the same refusal as every other service's
    (``svc_common.ids``), as a rejection of the event."""
    violation = invisible_violation(value, field)
    return None if violation is None else Rejection(R.ERROR_REASON_VALUE_NOT_ALLOWED, field, violation.description)


def _check_event_type(event_type: str) -> Rejection | None:
    if not event_type:
        return Rejection(R.ERROR_REASON_MISSING_FIELD, "event_type", "event_type is required")
    if not EVENT_TYPE_RE.fullmatch(event_type):
        return Rejection(
            R.ERROR_REASON_INVALID_NAME,
            "event_type",
            "event_type: a letter first (or $ for Qiming's own types), then letters, digits and _ . : -, at most 127"
            " characters",
        )
    if event_type[0] == "$" and event_type not in RESERVED_EVENT_TYPES:
        return Rejection(
            R.ERROR_REASON_UNKNOWN_EVENT_TYPE, "event_type", f"{event_type!r}: types starting with $ are reserved"
        )
    return None


def _unsigned(event: event_pb2.Event) -> Rejection:
    """Why a system event without a valid signature is refused (any producer may call Ingest; svc_campaign would
    erase a customer, or move them through journeys, on such an event, and svc_modeling would count a customer
    as treated by a journey that never messaged them)."""
    where = f"properties.{SIGNATURE_PROPERTY}"
    publisher = publisher_of(event.event_type)
    if is_signed(event):
        message = (
            f"the {SIGNATURE_PROPERTY} of this {event.event_type} event does not verify: a signed field was changed, "
            "or it was signed with another keyring (every service needs the same keyring; docs/configuration.md)"
        )
    elif not publisher:
        message = (
            f"{event.event_type} is reserved for Qiming's services and none writes it in this release: producers "
            "may not send it (docs/collect.md, Reserved event types)"
        )
    else:
        message = (
            f"{event.event_type} is published only by {publisher}, signed ({SIGNATURE_PROPERTY}); this one is "
            f"unsigned: another producer made it, or an {publisher} older than this release "
            f"(upgrade {publisher} first; docs/collect.md, Reserved event types)"
        )
    return Rejection(R.ERROR_REASON_UNSIGNED_SYSTEM_EVENT, where, message)


def flag_names(flags: int) -> Iterable[str]:
    return (name for bit, name in FLAG_NAMES.items() if flags & bit)


def refuse_nul(field: str, text: str) -> None:
    """INVALID_ARGUMENT naming ``field`` when ``text`` holds NUL (read and list filters, schemas): such a value can
    match nothing stored, and PostgreSQL refuses it as a parameter."""
    if "\x00" in text:
        raise InvalidArgument(
            f"{field} {NUL_MESSAGE}", reason="INVALID_ARGUMENT", violations=[FieldViolation(field, NUL_MESSAGE)]
        )


NO_EVENT_TYPE = "(none)"
"""The event type a rejected event without one is quarantined and counted under (GetIngestStats can filter by it)."""
INVALID_EVENT_TYPE = "(invalid)"
"""What the ingest counts (GetIngestStats) name the type of a rejected event whose type is not a valid name: such a
name is no filter a caller could ask for, and one count per client-made string would grow the counts without bound.
The quarantine record keeps the name as sent."""


def counted_event_type(event_type: str) -> str:
    """The name an event is counted under in the ingest counts: its type, ``(none)`` or ``(invalid)``."""
    if not event_type:
        return NO_EVENT_TYPE
    if event_type == NO_EVENT_TYPE or EVENT_TYPE_RE.fullmatch(event_type):
        return event_type
    return INVALID_EVENT_TYPE


MAX_FILTER_TYPES = 1_000
"""Values one filter may name (event types of ReadEvents, the quarantine's listing and replay and GetIngestStats;
quarantine ids): more would pass the databases' limit of bound values, a failure no retry mends."""


def refuse_bad_filter(field: str, texts: Sequence[str]) -> None:
    """INVALID_ARGUMENT for a repeated filter field of more than ``MAX_FILTER_TYPES`` values, or holding NUL
    (:func:`refuse_nul`, naming ``field[i]``)."""
    if len(texts) > MAX_FILTER_TYPES:
        raise InvalidArgument(
            f"{field} names {len(texts)} values; at most {MAX_FILTER_TYPES}",
            violations=[FieldViolation(field, f"at most {MAX_FILTER_TYPES}: split the request")],
        )
    for i, text in enumerate(texts):
        refuse_nul(f"{field}[{i}]", text)


def refuse_type_names(names: Sequence[str], counted: bool = False) -> None:
    """INVALID_ARGUMENT naming ``event_types[i]`` for a name no event type can have: a filter by it would read
    nothing (or follow for ever), answered OK. ``counted``: the ingest counts' filter, which also takes ``(none)``
    and ``(invalid)``."""
    for i, name in enumerate(names):
        if counted_event_type(name) == name if counted else EVENT_TYPE_RE.fullmatch(name):
            continue
        what = f"an event type name ({EVENT_TYPE_RE.pattern})"
        if counted:
            what += (
                f", {NO_EVENT_TYPE} (rejected events without a type) or {INVALID_EVENT_TYPE} (rejected events whose"
                " type is not a valid name)"
            )
        raise InvalidArgument(
            f"event_types[{i}] is not an event type name", violations=[FieldViolation(f"event_types[{i}]", what)]
        )


__all__ = [
    "EVENT_TYPE_RE",
    "INVALID_EVENT_TYPE",
    "KINDS_FOR_TYPE",
    "NATIVE_AVAILABLE",
    "NO_EVENT_TYPE",
    "NUL_MESSAGE",
    "PROPERTY_NAME_RE",
    "RESERVED_EVENT_TYPES",
    "CompiledSchema",
    "PropertyRule",
    "compile_schema",
    "counted_event_type",
    "refuse_bad_filter",
    "refuse_type_names",
    "value_of",
]
