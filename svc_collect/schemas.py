"""Event schemas: registration with optimistic concurrency, and a per-process cache the ingest path reads.

Every process polls a cheap fingerprint of the schema table, so a schema registered on one collector
applies on all of them within ``refresh_interval_seconds``; the collector that registered it applies it
at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from google.protobuf import json_format

from svc_collect._schema_rules import unusable_schema
from svc_collect.store import SchemaRecord, SqlCatalog
from svc_collect.validation import CompiledSchema, compile_schema, refuse_nul
from svc_common.errors import FieldViolation, InvalidArgument, NotFound
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.protection import SIGNED_EVENT_TYPES

log = logging.getLogger("qiming.collect.schemas")


# Collectors apply a new version within their refresh interval, and stamp receive times by their own clocks: events
# received this long after a version protected a property are taken as protected at ingest (read_masking.py).
_PROTECTION_SLACK_US = 120_000_000
_MAX_VERSION = 2**62
"""No schema reaches it; one more than a stored version must still fit the column (a 64-bit integer)."""


@dataclass(frozen=True)
class ProtectedNames:
    """What masked reads check (read_masking.py): the property names some current schema or the
    ``sensitive_properties`` setting protects, and the receive time after which no event stored by a collector that
    knew them holds one of them in clear (events received before may: a version that protects a name is taken to
    have protected it from the earliest of its unbroken run of versions doing so, events before a type's first
    version had no schema at all, and a name of the setting counts from the first start that had it). A collector
    still running with an older setting is not covered (docs/collect.md). A new object after every change."""

    names: frozenset[str] = frozenset()
    until_us: int = 0


class SchemaRegistry:
    def __init__(self, catalog: SqlCatalog, max_properties: int, refresh_interval_seconds: float = 2.0) -> None:
        self._catalog = catalog
        self._max_properties = max_properties
        self._refresh_interval = refresh_interval_seconds
        self._compiled: dict[str, CompiledSchema] = {}
        self.protected = ProtectedNames()
        self._sensitive_since: dict[str, int] = {}
        self._stamp: tuple[int, int] | None = None
        self._registrations = 0
        """Versions this process registered: a ``load`` that saw it change meanwhile installs nothing."""
        self._installs = 0
        """Reads a ``load`` installed: a registration does not put back the protected names of a history read before
        one of them."""
        self._swap = threading.Lock()
        self._task: asyncio.Task[None] | None = None

    def schema_for(self, event_type: str) -> CompiledSchema | None:
        """The current schema of ``event_type`` (hot path: a dict lookup)."""
        return self._compiled.get(event_type)

    def load(self) -> None:
        """Read every latest schema from the database (blocking). Where this collector registered a version while the
        read ran, what was read is dropped and read again at the next poll (installed, a read begun before the insert
        put the older version back, and its protection, until the next poll: walk, session 27)."""
        stamp = self._catalog.schema_fingerprint()
        registrations = self._registrations
        compiled: dict[str, CompiledSchema] = {}
        for record in self._catalog.latest_schemas():
            try:
                stored = to_proto(record)
                # The property limit is for new versions: a lowered max_properties_per_event leaves stored ones be.
                compiled[record.event_type] = compile_schema(stored, max(self._max_properties, len(stored.properties)))
            except (InvalidArgument, json_format.ParseError) as exc:
                # A rule, field or enum value of a newer release than this one: fail closed. (A signed type is never
                # checked by a schema: validation ignores it. "$identify" and "$alias" are: ignoring theirs stored
                # their level 3+ properties in clear until 0.2.10.)
                ignored = record.event_type in SIGNED_EVENT_TYPES
                log.error(
                    "stored event schema cannot be applied: "
                    + ("ignored" if ignored else "its events are quarantined"),
                    extra={"event_type": record.event_type, "error": str(exc)},
                )
                if not ignored:
                    problem = _problem(exc) if isinstance(exc, InvalidArgument) else str(exc)
                    compiled[record.event_type] = unusable_schema(to_proto(record, lenient=True), problem)
        history = self._catalog.schema_history()
        with self._swap:
            if self._registrations != registrations:
                self._stamp = None  # what was read may predate that version: read again at the next poll
                return
            self._compiled = compiled
            self.protected = self._protected_names(history)
            self._stamp = stamp
            self._installs += 1

    async def start(self) -> None:
        await asyncio.to_thread(self.load)
        self._task = asyncio.get_running_loop().create_task(self._poll(), name="schema-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_interval)
            try:
                if await asyncio.to_thread(self._catalog.schema_fingerprint) != self._stamp:
                    await asyncio.to_thread(self.load)
            except Exception:
                log.warning("event schema refresh failed; keeping the cached schemas", exc_info=True)

    async def register(
        self, schema: collect_pb2.EventSchema, expected_version: int, created_by: str
    ) -> collect_pb2.EventSchema:
        if not 0 <= expected_version < _MAX_VERSION:
            raise InvalidArgument(
                f"expected_version {expected_version} is no version a schema can have",
                violations=[FieldViolation("expected_version", "0 for a new event type, else the version you read")],
            )
        properties = []
        for i, spec in enumerate(schema.properties):
            for j, value in enumerate(spec.allowed_values):
                if value.WhichOneof("kind") == "double_value" and not math.isfinite(value.double_value):
                    raise InvalidArgument(  # ingest refuses such values: the allowed value could never be met
                        f"schema.properties[{i}].allowed_values[{j}] is NaN or infinite, which no event may carry",
                        violations=[FieldViolation(f"schema.properties[{i}].allowed_values[{j}]", "a finite number")],
                    )
            try:
                properties.append(json_format.MessageToDict(spec, preserving_proto_field_name=True))
            except json_format.SerializeToJsonError as exc:  # a timestamp value out of its range, say
                raise InvalidArgument(
                    f"schema.properties[{i}] holds a value that cannot be stored: {exc}",
                    violations=[FieldViolation(f"schema.properties[{i}]", f"a value out of its type's range: {exc}")],
                ) from None
        record = SchemaRecord(
            event_type=schema.event_type,
            version=expected_version + 1,
            description=schema.description,
            properties=properties,
            reject_unknown=schema.reject_unknown_properties,
            created_at=dt.datetime.now(dt.UTC),
        )
        stored = to_proto(record)
        compiled = compile_schema(stored, self._max_properties)  # refuses a bad schema before it is stored
        await asyncio.to_thread(self._catalog.add_schema, record, expected_version, created_by)
        with self._swap:
            self._registrations += 1
            self._compiled = {**self._compiled, record.event_type: compiled}
            installs = self._installs
        history = await asyncio.to_thread(self._catalog.schema_history)
        with self._swap:
            if self._installs == installs:  # else a poll installed what it read after this insert: as new, or newer
                self.protected = self._protected_names(history)
        return stored

    def settle_sensitive_names(self, names: Sequence[str], now_us: int) -> None:
        """At the start, before ``start``: the ``sensitive_properties`` setting joins what masked reads check, each
        name from when every start has found it in the setting (``SqlCatalog.settle_sensitive_names``)."""
        self._sensitive_since = self._catalog.settle_sensitive_names(names, now_us)

    def _protected_names(self, history: Sequence[SchemaRecord]) -> ProtectedNames:
        unusable = frozenset(t for t, schema in self._compiled.items() if schema.unusable)
        return _protected_names(history, unusable, self._sensitive_since)

    async def get(self, event_type: str, version: int = 0) -> collect_pb2.EventSchema:
        if not event_type:
            raise InvalidArgument("event_type is required", violations=[FieldViolation("event_type", "required")])
        refuse_nul("event_type", event_type)
        record = await asyncio.to_thread(self._catalog.get_schema, event_type, version)
        if record is None:
            what = f"version {version} of " if version else ""
            raise NotFound(f"no {what}event schema for {event_type!r}", reason="NOT_FOUND")
        return to_proto(record, lenient=True)

    async def list(self, after_type: str, limit: int) -> Sequence[collect_pb2.EventSchema]:
        # Leniently: a version a newer release stored, with a field or enum value this one does not know, is shown
        # without it (until 0.2.10 INTERNAL, for its page of every type); ingest quarantines its events (``load``).
        records = await asyncio.to_thread(self._catalog.latest_schemas, after_type, limit)
        return [to_proto(r, lenient=True) for r in records]


def _protected_names(
    history: Sequence[SchemaRecord],
    unusable: frozenset[str] = frozenset(),
    sensitive_since: Mapping[str, int] | None = None,
) -> ProtectedNames:
    """``ProtectedNames`` of the versions in ``history`` (by type, then version). Of a type whose current version
    cannot be applied (``unusable``), every property that version declares counts as protected. ``sensitive_since``:
    the names of the ``sensitive_properties`` setting, each with since when (µs) it has been there."""
    since: dict[tuple[str, str], dt.datetime] = {}  # (type, name) → start of the latest run of versions protecting it
    latest: dict[str, set[str]] = {}
    last = {record.event_type: record.version for record in history}
    for record in history:
        declared = to_proto(record, lenient=True).properties
        if record.event_type in unusable and record.version == last[record.event_type]:
            protected = {spec.name for spec in declared}
        else:
            protected = {spec.name for spec in declared if _protects(spec)}
        for name in protected:
            since.setdefault((record.event_type, name), record.created_at)
        for key in [k for k in since if k[0] == record.event_type and k[1] not in protected]:
            del since[key]  # a version that left it unprotected: the run starts again at the next one protecting it
        latest[record.event_type] = protected
    # A version takes effect on other collectors up to a refresh later, by their clocks: the slack. A setting's name
    # is in force on this collector from its start on, before it took any event.
    starts = [
        int(t.replace(tzinfo=t.tzinfo or dt.UTC).timestamp() * 1_000_000) + _PROTECTION_SLACK_US for t in since.values()
    ]
    starts += (sensitive_since or {}).values()
    if not starts:
        return ProtectedNames()
    names = frozenset(name for names in latest.values() for name in names) | frozenset(sensitive_since or ())
    return ProtectedNames(names, max(starts))


def _protects(spec: collect_pb2.PropertySpec) -> bool:
    if spec.protection != types_pb2.PROTECTION_MODE_UNSPECIFIED:
        return spec.protection != types_pb2.PROTECTION_MODE_NONE
    return spec.sensitivity >= types_pb2.SENSITIVITY_LEVEL_3


def _problem(error: InvalidArgument) -> str:
    return "; ".join(f"{v.field}: {v.description}" for v in error.violations) or error.message


def to_proto(record: SchemaRecord, lenient: bool = False) -> collect_pb2.EventSchema:
    """The stored version as a message. ``lenient``: fields and enum values this release does not know (stored by a
    newer one) are left out instead of raising ``json_format.ParseError``."""
    schema = collect_pb2.EventSchema(
        event_type=record.event_type,
        version=record.version,
        description=record.description,
        reject_unknown_properties=record.reject_unknown,
    )
    for spec in record.properties:
        json_format.ParseDict(spec, schema.properties.add(), ignore_unknown_fields=lenient)
    schema.created_at.FromDatetime(record.created_at)
    return schema
