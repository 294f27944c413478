"""Event schemas compiled for checking: names, the Value kinds each declared type accepts, and a schema's own
checks at registration (re-exported by svc_collect.validation)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from svc_common.conditions import KINDS_FOR_TYPE
from svc_common.errors import FieldViolation, InvalidArgument
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.protection import SIGNED_EVENT_TYPES, publisher_of

# Letters first; then letters, digits, _ . : -. A leading "$" marks Qiming's own types.
EVENT_TYPE_RE = re.compile(r"\$?[A-Za-z][A-Za-z0-9_.:\-]{0,126}")
PROPERTY_NAME_RE = re.compile(r"[A-Za-z_$][A-Za-z0-9_.:\-$]{0,127}")
RESERVED_EVENT_TYPES = frozenset(
    {
        "$identify",
        "$alias",
        "$segment_entered",
        "$segment_exited",
        "$message_sent",
        "$message_delivered",
        "$message_failed",
        "$message_clicked",
        "$score_written",
        "$lifecycle_changed",
        "$profile_erased",
    }
)
NUL_MESSAGE = "must not contain the NUL character (U+0000)"
_NOT_ENUMERABLE = frozenset({types_pb2.VALUE_TYPE_TIMESTAMP, types_pb2.VALUE_TYPE_STRING_LIST})
SIGNED_TYPE_MESSAGE = (
    "{!r} takes no schema: only {} writes it, signed, and svc_collect checks its signature; a schema could "
    'only make svc_collect reject it (docs/collect.md, "Reserved event types")'
)


@dataclass(frozen=True)
class PropertyRule:
    name: str
    value_type: int
    kinds: frozenset[str]
    required: bool
    allowed: frozenset[object] | None
    max_length: int
    sensitivity: int
    protection: int


@dataclass(frozen=True)
class CompiledSchema:
    """One version of an event type's schema, ready to check events against."""

    event_type: str
    version: int
    rules: dict[str, PropertyRule]
    required: tuple[str, ...]
    reject_unknown: bool
    proto: collect_pb2.EventSchema = field(compare=False)
    unusable: str = ""
    """Why a stored version cannot be applied (``unusable_schema``): its events are quarantined; "" for a usable one."""


# A required name no property can have: the check in C, finding it missing, hands every event of an unusable schema's
# type to the Python check, which quarantines it.
_NO_SUCH_PROPERTY = "\x00unusable"


def unusable_schema(schema: collect_pb2.EventSchema, problem: str) -> CompiledSchema:
    """A stored version this release cannot compile (a rule of a newer release): not to be ignored, since ignoring it
    would take its type's events as of no schema, level 3+ properties stored in clear (review 2026-12-07)."""
    return CompiledSchema(
        event_type=schema.event_type,
        version=schema.version,
        rules={},
        required=(_NO_SUCH_PROPERTY,),
        reject_unknown=True,
        proto=schema,
        unusable=(
            f"the stored schema of {schema.event_type!r} (version {schema.version}) cannot be applied: {problem}; "
            f"its events are quarantined until a version that can is registered"
        ),
    )


def value_of(value: types_pb2.Value) -> object:
    """The plain Python value of a Value (for allowed-value checks)."""
    kind = value.WhichOneof("kind")
    return None if kind is None else getattr(value, kind)


def compile_schema(schema: collect_pb2.EventSchema, max_properties: int) -> CompiledSchema:
    """Check a schema for registration and compile it; INVALID_ARGUMENT names every bad field."""
    problems: list[FieldViolation] = [
        FieldViolation(where, NUL_MESSAGE) for where, text in _schema_strings(schema, "schema") if "\x00" in text
    ]
    if not EVENT_TYPE_RE.fullmatch(schema.event_type):
        problems.append(FieldViolation("schema.event_type", "letters first, then letters, digits, _ . : - (max 127)"))
    elif schema.event_type.startswith("$") and schema.event_type not in RESERVED_EVENT_TYPES:
        problems.append(FieldViolation("schema.event_type", f"{schema.event_type!r} is not a reserved $ type"))
    elif schema.event_type in SIGNED_EVENT_TYPES:
        # Refused here, at registration and when a stored schema is loaded (one an older release took is then
        # logged and ignored): svc_profile or svc_campaign alone writes these, signed, so a schema could only break
        # them.
        writer = publisher_of(schema.event_type) or "Qiming's services (none in this release)"
        problems.append(FieldViolation("schema.event_type", SIGNED_TYPE_MESSAGE.format(schema.event_type, writer)))
    if len(schema.properties) > max_properties:
        problems.append(FieldViolation("schema.properties", f"at most {max_properties} properties"))
    rules: dict[str, PropertyRule] = {}
    names: set[str] = set()
    for i, spec in enumerate(schema.properties):
        where = f"schema.properties[{i}]"
        if not PROPERTY_NAME_RE.fullmatch(spec.name):
            problems.append(FieldViolation(f"{where}.name", f"{spec.name!r} is not a valid property name"))
            continue
        if spec.name in names:
            problems.append(FieldViolation(f"{where}.name", f"property {spec.name!r} is listed twice"))
            continue
        names.add(spec.name)
        kinds = KINDS_FOR_TYPE.get(spec.type)
        if kinds is None:
            problems.append(FieldViolation(f"{where}.type", f"property {spec.name!r} needs a value type"))
            continue
        level = spec.sensitivity or types_pb2.SENSITIVITY_LEVEL_1
        if level not in types_pb2.SensitivityLevel.values():
            problems.append(FieldViolation(f"{where}.sensitivity", f"unknown sensitivity level {level}"))
            continue
        protection = spec.protection
        if protection == types_pb2.PROTECTION_MODE_UNSPECIFIED:
            protection = (
                types_pb2.PROTECTION_MODE_ENCRYPT
                if level >= types_pb2.SENSITIVITY_LEVEL_3
                else types_pb2.PROTECTION_MODE_NONE
            )
        if protection not in types_pb2.ProtectionMode.values():
            problems.append(FieldViolation(f"{where}.protection", f"unknown protection mode {protection}"))
            continue
        if level >= types_pb2.SENSITIVITY_LEVEL_3 and protection == types_pb2.PROTECTION_MODE_NONE:
            problems.append(
                FieldViolation(f"{where}.protection", f"{spec.name!r} is level {level}: it must be protected at rest")
            )
            continue
        if protection == types_pb2.PROTECTION_MODE_PSEUDONYMIZE and spec.type != types_pb2.VALUE_TYPE_STRING:
            problems.append(FieldViolation(f"{where}.protection", "only string properties can be pseudonymized"))
            continue
        allowed: frozenset[object] | None = None
        if spec.allowed_values and spec.type in _NOT_ENUMERABLE:
            # A list or a timestamp is not one of a few values (and its message cannot be a set member: it was
            # INTERNAL). A list's items can be limited by the consumer's conditions instead.
            problems.append(
                FieldViolation(
                    f"{where}.allowed_values",
                    f"allowed values apply to string, int, double, bool and money properties, not to "
                    f"{types_pb2.ValueType.Name(spec.type).removeprefix('VALUE_TYPE_').lower()}",
                )
            )
            continue
        if spec.allowed_values:
            bad = [j for j, v in enumerate(spec.allowed_values) if v.WhichOneof("kind") not in kinds]
            if bad:
                problems.append(
                    FieldViolation(f"{where}.allowed_values[{bad[0]}]", "an allowed value does not match the type")
                )
                continue
            allowed = frozenset(value_of(v) for v in spec.allowed_values)
        rules[spec.name] = PropertyRule(
            spec.name, spec.type, kinds, spec.required, allowed, spec.max_length, level, protection
        )
    if problems:
        raise InvalidArgument(
            f"event schema for {schema.event_type!r} is invalid: {problems[0].field}: {problems[0].description}",
            reason="INVALID_ARGUMENT",
            violations=problems,
        )
    required = tuple(name for name, rule in rules.items() if rule.required)
    return CompiledSchema(schema.event_type, schema.version, rules, required, schema.reject_unknown_properties, schema)


def _schema_strings(message: object, path: str) -> Iterable[tuple[str, str]]:
    """Every string of a schema message with its path (descriptions, names, allowed values)."""
    for descriptor, value in message.ListFields():  # type: ignore[attr-defined]
        where = f"{path}.{descriptor.name}"
        repeated = descriptor.is_repeated
        for i, item in enumerate(value if repeated else [value]):
            at = f"{where}[{i}]" if repeated else where
            if isinstance(item, str):
                yield at, item
            elif hasattr(item, "ListFields"):
                yield from _schema_strings(item, at)
