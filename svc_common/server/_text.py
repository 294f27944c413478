"""Refuse request text that no database keeps: the NUL character (U+0000).

PostgreSQL and openGauss refuse NUL in text columns (the statement fails, so the caller got INTERNAL) while SQLite
stores it, and a stored NUL then breaks every consumer that writes the value on. One check here, before any
handler, answers every service's requests the same way on every database: INVALID_ARGUMENT naming each field.
svc_collect's ingest checks its own fields on its hot path (and keeps NUL inside property values verbatim, as
issue 4 asks); its methods are exempted by name. Bulk data rows that a service checks where it converts them
(svc_modeling's ``Row``: 200,000 values took 0.2 s of the event loop to walk) are skipped by message type.
"""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from svc_common.errors import FieldViolation, InvalidArgument

NUL_MESSAGE = "must not contain the NUL character (U+0000)"
_MAX_LISTED = 20
_STRING = FieldDescriptor.TYPE_STRING
_MESSAGE = FieldDescriptor.TYPE_MESSAGE


def _repeated(field: FieldDescriptor) -> bool:
    # protobuf 7 dropped ``label``; ``is_repeated`` is newer than the oldest release pyproject allows.
    return field.is_repeated if hasattr(FieldDescriptor, "is_repeated") else field.label == field.LABEL_REPEATED


def nul_fields(message: Message, prefix: str = "", skip: frozenset[str] = frozenset()) -> list[str]:
    """Paths (``rows[3].user.value``, ``attributes[name]``) of every string field or map key holding U+0000; message
    types named in ``skip`` (full names) are not entered."""
    found: list[str] = []
    _walk(message, prefix, found, skip)
    return found


def _walk(message: Message, prefix: str, found: list[str], skip: frozenset[str] = frozenset()) -> None:
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.type == _MESSAGE and skip and field.message_type.full_name in skip:
            continue
        if field.type == _STRING:
            if _repeated(field):
                found.extend(f"{path}[{i}]" for i, item in enumerate(value) if "\x00" in item)
            elif "\x00" in value:
                found.append(path)
        elif field.type == _MESSAGE:
            entry = field.message_type
            if entry.GetOptions().map_entry:
                _walk_map(entry, value, path, found, skip)
            elif _repeated(field):
                for i, item in enumerate(value):
                    _walk(item, f"{path}[{i}].", found, skip)
            else:
                _walk(value, f"{path}.", found, skip)


def _walk_map(entry: object, mapping: object, path: str, found: list[str], skip: frozenset[str]) -> None:
    value_field = entry.fields_by_name["value"]  # type: ignore[attr-defined]
    for key, item in mapping.items():  # type: ignore[attr-defined]
        if isinstance(key, str) and "\x00" in key:
            found.append(f"{path}[{key!r}]")
            continue
        where = f"{path}[{key}]"
        if value_field.type == _STRING:
            if "\x00" in item:
                found.append(where)
        elif value_field.type == _MESSAGE and value_field.message_type.full_name not in skip:
            _walk(item, f"{where}.", found, skip)


def refuse_nul(message: object, skip: frozenset[str] = frozenset()) -> None:
    """Raise INVALID_ARGUMENT (reason VALUE_NOT_ALLOWED) naming the fields of ``message`` that hold U+0000."""
    if not isinstance(message, Message):
        return
    found = nul_fields(message, skip=skip)
    if not found:
        return
    violations = [FieldViolation(path, NUL_MESSAGE, "VALUE_NOT_ALLOWED") for path in found]
    more = f" (and {len(found) - _MAX_LISTED} more)" if len(found) > _MAX_LISTED else ""
    raise InvalidArgument(
        f"{', '.join(found[:_MAX_LISTED])}{more}: {NUL_MESSAGE}",
        reason="VALUE_NOT_ALLOWED",
        violations=violations,
    )
