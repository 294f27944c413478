"""Request checks shared by every svc_modeling RPC: enum numbers the contract does not define and malformed or
out-of-range Timestamps / Durations are INVALID_ARGUMENT naming the field and what is allowed, before any domain
code runs (which would otherwise fail on them with INTERNAL).

Every servicer class is wrapped with :func:`validated`: a unary request is walked as a whole; the streamed
imports check their first message's definition themselves (a bad row value is a RowProblem, not a refusal).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from svc_common.errors import FieldViolation, InvalidArgument

# google.protobuf.Timestamp's documented range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
TIMESTAMP_MIN_SECONDS = -62_135_596_800
TIMESTAMP_MAX_SECONDS = 253_402_300_799
DURATION_MAX_SECONDS = 315_576_000_000  # about 10,000 years, as google.protobuf.Duration documents
# The moments svc_modeling computes with (snapshots, time ranges, cut-offs): 1970-01-01 up to, not including, 3000.
MOMENT_MIN_US = 0
MOMENT_MAX_US = 32_503_680_000 * 1_000_000
MAX_LISTED_NAMES = 30
_SPECIAL = ("google.protobuf.Timestamp", "google.protobuf.Duration")
# Data rows (Predict, PredictUplift, ImportRows): walking 100,000s of Values here would hold the event loop for
# seconds; their values are checked where they are converted (``rows_to_frame``, ImportRows' row problems).
DATA_MESSAGES = ("qiming.modeling.v1.Row",)

T = TypeVar("T")


def enum_label(enum_type: Any, number: int) -> str:
    """The name of an enum number, or the number itself when the contract does not define it (never raises)."""
    descriptor = getattr(enum_type, "DESCRIPTOR", enum_type)
    value = descriptor.values_by_number.get(number)
    return value.name if value is not None else str(number)


def allowed_names(enum_type: Any) -> str:
    descriptor = getattr(enum_type, "DESCRIPTOR", enum_type)
    names = [v.name for v in descriptor.values if v.number != 0]
    shown = ", ".join(names[:MAX_LISTED_NAMES])
    return shown + (f" and {len(names) - MAX_LISTED_NAMES} more" if len(names) > MAX_LISTED_NAMES else "")


def enum_violation(field: str, enum_type: Any, number: int) -> FieldViolation | None:
    descriptor = getattr(enum_type, "DESCRIPTOR", enum_type)
    if number in descriptor.values_by_number:
        return None
    return FieldViolation(field, f"{number} is not a {descriptor.name}: one of {allowed_names(descriptor)}")


def timestamp_problem(seconds: int, nanos: int) -> str:
    if not 0 <= nanos <= 999_999_999:
        return f"nanos {nanos} must be 0..999999999 (a moment before a whole second has negative seconds)"
    if not TIMESTAMP_MIN_SECONDS <= seconds <= TIMESTAMP_MAX_SECONDS:
        return f"seconds {seconds} is outside 0001-01-01..9999-12-31 ({TIMESTAMP_MIN_SECONDS}..{TIMESTAMP_MAX_SECONDS})"
    return ""


def _duration_problem(seconds: int, nanos: int) -> str:
    if not -DURATION_MAX_SECONDS <= seconds <= DURATION_MAX_SECONDS:
        return f"seconds {seconds} is outside ±{DURATION_MAX_SECONDS}"
    if not -999_999_999 <= nanos <= 999_999_999 or (seconds and nanos and (seconds < 0) != (nanos < 0)):
        return f"nanos {nanos} must be within ±999999999 and have the sign of seconds"
    return ""


@functools.cache
def _worth_walking(descriptor: Descriptor) -> bool:
    """Whether a message type can hold an enum, a Timestamp or a Duration anywhere (others are skipped)."""
    seen: set[str] = set()

    def holds(d: Descriptor) -> bool:
        if d.full_name in _SPECIAL:
            return True
        if d.full_name in seen:
            return False
        seen.add(d.full_name)
        for f in d.fields:
            if f.type == FieldDescriptor.TYPE_ENUM:
                return True
            if f.type == FieldDescriptor.TYPE_MESSAGE and holds(f.message_type):
                return True
        return False

    return holds(descriptor)


def collect(message: Message, prefix: str = "", out: list[FieldViolation] | None = None) -> list[FieldViolation]:
    """Every unknown enum number and every malformed Timestamp / Duration in ``message``, by field path."""
    out = [] if out is None else out
    descriptor = message.DESCRIPTOR
    if descriptor.full_name in _SPECIAL:
        check = timestamp_problem if descriptor.full_name.endswith("Timestamp") else _duration_problem
        problem = check(message.seconds, message.nanos)  # type: ignore[attr-defined]
        if problem:
            out.append(FieldViolation(prefix.rstrip(".") or "request", problem))
        return out
    if not _worth_walking(descriptor):
        return out
    for field, value in message.ListFields():
        name = f"{prefix}{field.name}"
        if field.type == FieldDescriptor.TYPE_ENUM:
            numbers = list(value) if field.is_repeated else [value]
            for i, number in enumerate(numbers):
                where = f"{name}[{i}]" if field.is_repeated else name
                violation = enum_violation(where, field.enum_type, number)
                if violation is not None:
                    out.append(violation)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.message_type.full_name in DATA_MESSAGES:
                continue
            if field.message_type.GetOptions().map_entry:
                value_field = field.message_type.fields_by_name["value"]
                for key, item in value.items():
                    if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                        collect(item, f"{name}[{key}].", out)
                    elif value_field.type == FieldDescriptor.TYPE_ENUM:
                        violation = enum_violation(f"{name}[{key}]", value_field.enum_type, item)
                        if violation is not None:
                            out.append(violation)
            elif field.is_repeated:
                for i, item in enumerate(value):
                    collect(item, f"{name}[{i}].", out)
            else:
                collect(value, f"{name}.", out)
    return out


def check_message(message: Message, prefix: str = "") -> None:
    """INVALID_ARGUMENT naming every unknown enum number and malformed Timestamp / Duration of ``message``."""
    violations = collect(message, prefix)
    if violations:
        first = violations[0]
        raise InvalidArgument(f"{first.field}: {first.description}", violations=violations)


def moment_us(stamp: Any, field: str) -> int:
    """A caller's moment (snapshot, range bound, cut-off) as epoch microseconds, within 1970..2999."""
    problem = timestamp_problem(stamp.seconds, stamp.nanos)
    us = stamp.seconds * 1_000_000 + stamp.nanos // 1000
    if not problem and not MOMENT_MIN_US <= us < MOMENT_MAX_US:
        problem = f"{stamp.seconds} s is outside the moments svc_modeling works with (1970-01-01 to 2999-12-31 UTC)"
    if problem:
        raise InvalidArgument(f"{field}: {problem}", violations=[FieldViolation(field, problem)])
    return us


def validated(cls: type[T]) -> type[T]:
    """Wrap each RPC method of a servicer so that a unary request is checked by :func:`check_message` first."""
    for name, method in list(vars(cls).items()):
        if name.startswith("_") or not callable(method) or not name[:1].isupper():
            continue
        setattr(cls, name, _wrap(method))
    return cls


def _wrap(method: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream(self: Any, request: Any, context: Any) -> Any:
            if isinstance(request, Message):
                check_message(request)
            async for item in method(self, request, context):
                yield item

        return stream

    @functools.wraps(method)
    async def unary(self: Any, request: Any, context: Any) -> Any:
        if isinstance(request, Message):
            check_message(request)
        return await method(self, request, context)

    return unary
