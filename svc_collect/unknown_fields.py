"""Fields an event's messages do not declare, found and named (reason ``UNKNOWN_FIELD``, docs/collect.md).

upb keeps what a message does not declare aside as unknown fields and encodes it again with the message: a field of
a client built from a newer proto, a ``properties`` entry with a field besides its key and value (the whole entry
goes aside, so the property is not among the event's properties), a declared field sent with another wire type, at
any depth (the context, a timestamp, an identity, a value). Nothing reads such a field: not the checks, not
protection. Stored as it came, it would be served on by ``ReadEvents`` to every reader, masked or not, and a runtime
that declares the field (the pure-Python protobuf reads a ``properties`` entry's third field as a plain property)
would show it in clear. So an event holding one is refused, and the quarantine keeps it sealed like every rejected
event.
"""

from __future__ import annotations

from google.protobuf import unknown_fields as _unknown

from svc_common.pb.qiming.common.v1 import event_pb2

_discard = event_pb2.Event.DiscardUnknownFields
_byte_size = event_pb2.Event.ByteSize
_event_fields = event_pb2.Event.DESCRIPTOR.fields_by_number
_WIRE_TYPES = {0: "varint", 1: "64-bit", 2: "length-delimited", 3: "group start", 4: "group end", 5: "32-bit"}
FIX = "send only the fields of qiming.common.v1.Event (a client built from a newer proto needs a newer collector)"


def holds_unknown(event: event_pb2.Event, data: bytes) -> bool:
    """Whether ``event``, whose encoding is ``data``, holds an unknown field anywhere. The encoding without them is
    shorter exactly when it held one (~1.5 µs for the benchmark's events: only events the check in C does not vouch
    for get here; that check hands every event holding one to the Python check). ``event`` is left as it was."""
    _discard(event)
    if _byte_size(event) == len(data):
        return False
    event.ParseFromString(data)  # as it came: the quarantine keeps it whole (sealed)
    return True


def describe(event: event_pb2.Event) -> tuple[str, str]:
    """(field path, message) of the first unknown field of ``event``, for its rejection."""
    for field in _unknown.UnknownFieldSet(event):
        number, wire = field.field_number, field.wire_type
        if number == 10 and wire == 2:  # upb keeps a properties entry it cannot take (a third field) whole
            return "properties", f"a properties entry holds a field besides its key (1) and value (2); {FIX}"
        declared = _event_fields.get(number)
        if declared is not None:
            return declared.name, f"{declared.name} (field {number}) was sent as {_WIRE_TYPES.get(wire, wire)}; {FIX}"
        return f"#{number}", f"Event has no field {number}; {FIX}"
    nested: list[tuple[str, object]] = []
    if event.HasField("occurred_at"):
        nested.append(("occurred_at", event.occurred_at))
    if event.HasField("context"):
        nested.append(("context", event.context))
    nested.extend((f"identities[{i}]", identity) for i, identity in enumerate(event.identities))
    for name in sorted(event.properties):
        value = event.properties[name]
        where = f"properties.{name[:128].replace(chr(0), chr(92) + 'x00')}"
        nested.append((where, value))
        kind = value.WhichOneof("kind")
        if kind == "timestamp_value":
            nested.append((where, value.timestamp_value))
        elif kind == "string_list_value":
            nested.append((where, value.string_list_value))
    for where, message in nested:
        for field in _unknown.UnknownFieldSet(message):  # type: ignore[arg-type]
            kind = type(message).DESCRIPTOR.full_name  # type: ignore[attr-defined]
            return where, f"{where} ({kind}) holds field {field.field_number}, which {kind} does not declare; {FIX}"
    return "", f"the event holds a field its messages do not declare; {FIX}"


__all__ = ["FIX", "describe", "holds_unknown"]
