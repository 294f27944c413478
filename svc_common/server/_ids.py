"""Refuse ids holding control or format characters in every request, before any handler (review walk-sec 2026-12-06
F13: ``c3001\\u202e`` or ``c3\\u200b001`` became new customers that print like ``c3001``).

Every service names a person by a ``UserRef`` or an ``Identity``, so the server kit checks the ``value`` of each one
in a request: one check, the same answer from every service. Only the fields that can lead to one are visited (the
plan per request type is worked out once from its descriptor), so a request without ids (a condition of 650,000
leaves) costs nothing here. svc_collect's ingest methods check their own ids (they are exempted with the NUL check).
"""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from svc_common.errors import InvalidArgument
from svc_common.ids import INVISIBLE_MESSAGE, INVISIBLE_REASON, invisible_violation

ID_MESSAGES = frozenset({"qiming.common.v1.UserRef", "qiming.common.v1.Identity"})
"""Message types whose ``value`` is an id."""
_MAX_LISTED = 20
_MESSAGE = FieldDescriptor.TYPE_MESSAGE

_plans: dict[tuple[str, frozenset[str]], tuple[FieldDescriptor, ...]] = {}
_reaches: dict[str, bool] = {}


def _repeated(field: FieldDescriptor) -> bool:
    # protobuf 7 dropped ``label``; ``is_repeated`` is newer than the oldest release pyproject allows.
    return field.is_repeated if hasattr(FieldDescriptor, "is_repeated") else field.label == field.LABEL_REPEATED


def _map_value(field: FieldDescriptor) -> FieldDescriptor | None:
    entry = field.message_type
    return entry.fields_by_name["value"] if entry.GetOptions().map_entry else None


def _field_type(field: FieldDescriptor) -> Descriptor | None:
    """The message type a field holds (for a map, its values'), None for scalars."""
    if field.type != _MESSAGE:
        return None
    value = _map_value(field)
    if value is None:
        return field.message_type
    return value.message_type if value.type == _MESSAGE else None


def reaches_an_id(descriptor: Descriptor) -> bool:
    """Whether a message of this type can hold an id message, at any depth (recursive types included)."""
    name = descriptor.full_name
    if name not in _reaches:
        seen: set[str] = set()
        pending = [descriptor]
        found = False
        while pending and not found:
            current = pending.pop()
            if current.full_name in seen:
                continue
            seen.add(current.full_name)
            found = current.full_name in ID_MESSAGES
            pending.extend(t for t in (_field_type(f) for f in current.fields) if t is not None)
        _reaches[name] = found
    return _reaches[name]


def id_fields(descriptor: Descriptor, skip: frozenset[str] = frozenset()) -> tuple[FieldDescriptor, ...]:
    """The fields of ``descriptor`` worth entering: those whose messages can hold an id (types in ``skip`` left
    out)."""
    key = (descriptor.full_name, skip)
    if key not in _plans:
        _plans[key] = tuple(
            field
            for field in descriptor.fields
            if (held := _field_type(field)) is not None and held.full_name not in skip and reaches_an_id(held)
        )
    return _plans[key]


def _walk(message: Message, prefix: str, found: list, skip: frozenset[str]) -> None:
    descriptor = message.DESCRIPTOR
    if descriptor.full_name in ID_MESSAGES:
        violation = invisible_violation(message.value, f"{prefix}value")  # type: ignore[attr-defined]
        if violation is not None:
            found.append(violation)
        return
    for field in id_fields(descriptor, skip):
        value = getattr(message, field.name)
        path = f"{prefix}{field.name}"
        if _map_value(field) is not None:
            for key, item in value.items():
                _walk(item, f"{path}[{key}].", found, skip)
        elif _repeated(field):
            for i, item in enumerate(value):
                _walk(item, f"{path}[{i}].", found, skip)
        elif message.HasField(field.name):
            _walk(value, f"{path}.", found, skip)


def needs_id_check(message: object) -> bool:
    return isinstance(message, Message) and reaches_an_id(message.DESCRIPTOR)


def refuse_invisible_ids(message: object, skip: frozenset[str] = frozenset()) -> None:
    """INVALID_ARGUMENT (reason VALUE_NOT_ALLOWED) naming each ``UserRef``/``Identity`` value of ``message`` that
    holds a control or format character, with the character and its position (never the value)."""
    if not needs_id_check(message):
        return
    found: list = []
    _walk(message, "", found, skip)  # type: ignore[arg-type]
    if not found:
        return
    if len(found) == 1:
        message = f"{found[0].field}: {found[0].description}"
    else:
        more = f" (and {len(found) - _MAX_LISTED} more)" if len(found) > _MAX_LISTED else ""
        message = f"{', '.join(v.field for v in found[:_MAX_LISTED])}{more}: {INVISIBLE_MESSAGE}"
    raise InvalidArgument(
        message,
        reason=INVISIBLE_REASON,
        violations=found,
    )
