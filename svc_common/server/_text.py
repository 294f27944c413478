"""Refuse request text that no database keeps: the NUL character (U+0000).

PostgreSQL and openGauss refuse NUL in text columns (the statement fails, so the caller got INTERNAL) while SQLite
stores it, and a stored NUL then breaks every consumer that writes the value on. One check here, before any
handler, answers every service's requests the same way on every database: INVALID_ARGUMENT naming each field.
svc_collect's ingest checks its own fields on its hot path (and keeps NUL inside property values verbatim, as
issue 4 asks); its methods are exempted by name. Bulk data rows that a service checks where it converts them
(svc_modeling's ``Row``: 200,000 values took 0.2 s of the event loop to walk) are skipped by message type.

The walk visits every nested message in Python: a 16 MiB request of 650,000 small messages took 3.7 s, and it ran
on the event loop, so health checks and every other caller waited (review 2026-12-06 walk-sec F6). Two things keep
one request from stalling the loop: a string holding U+0000 serializes a 0x00 byte, so a request whose bytes hold
none is not walked at all (the server's deserializer looks, at C speed); and a request that must be walked and is
larger than ``OFF_LOOP_BYTES`` is walked on one worker thread (one, so that such requests cannot take more than a
core between them), while the loop goes on serving. The id check (``_ids``) runs in the same place.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from svc_common.errors import FieldViolation, InvalidArgument
from svc_common.server._ids import _MAX_LISTED, _repeated, refuse_invisible_ids

NUL_MESSAGE = "must not contain the NUL character (U+0000)"
_STRING = FieldDescriptor.TYPE_STRING
_MESSAGE = FieldDescriptor.TYPE_MESSAGE
OFF_LOOP_BYTES = 256 * 1024
"""Requests larger than this (serialized) that need the walk are walked off the event loop; smaller ones take well
under a millisecond or two, less than handing them to a thread would."""

_walker: ThreadPoolExecutor | None = None
_walker_lock = threading.Lock()


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


class Unscanned:
    """A parsed request to check before its handler sees it: its bytes hold a 0x00 byte (``nul``: it may hold U+0000;
    a request with no 0x00 byte cannot), or its type can hold ids (``svc_common.server._ids``). ``size`` is its
    serialized size."""

    __slots__ = ("message", "nul", "size")

    def __init__(self, message: Message, size: int, nul: bool) -> None:
        self.message = message
        self.size = size
        self.nul = nul


def _executor() -> ThreadPoolExecutor:
    global _walker
    with _walker_lock:
        if _walker is None:
            _walker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qiming-request-check")
        return _walker


def _check(request: Unscanned, skip: frozenset[str]) -> None:
    if request.nul:
        refuse_nul(request.message, skip)
    refuse_invisible_ids(request.message, skip)


async def check_unscanned(request: Unscanned, skip: frozenset[str] = frozenset()) -> Message:
    """:func:`refuse_nul` (when its bytes need it) and the id check for a request the deserializer could not clear; a
    large one is checked on the worker thread, so that the event loop keeps serving meanwhile. Returns the message."""
    if request.size <= OFF_LOOP_BYTES:
        _check(request, skip)
    else:
        await asyncio.get_running_loop().run_in_executor(_executor(), _check, request, skip)
    return request.message
