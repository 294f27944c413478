"""Tag values written by other services (model scores, imports) with provenance, and a person's tags."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from svc_common.conditions import KINDS_FOR_TYPE, from_proto
from svc_common.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound, QimingError
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.server import current_call, note_customers
from svc_common.timestamps import timestamp_micros
from svc_profile.core import Core
from svc_profile.definitions import Definitions
from svc_profile.identity import note_customers_of
from svc_profile.model import encode, now_us
from svc_profile.service import check_value
from svc_profile.store import _tagwrite
from svc_profile.store._sql import CUSTOMER
from svc_profile.store._tagwrite import encode_value

MAX_WRITES = 10_000
STREAM_GROUP_WRITES = 100_000
"""WriteTagsStream commits this many writes (of several messages) at a time: a million model scores go in ten
transactions. Each commit of random persons rewrites most pages of the tag key in SQLite's WAL (fewer, larger
groups write less), while a group holds the writer (the log consumer waits 1–1.5 s for 100,000 here)."""
_SOURCES = {
    types_pb2.Provenance.SOURCE_MODEL: "MODEL",
    types_pb2.Provenance.SOURCE_IMPORT: "IMPORT",
    types_pb2.Provenance.SOURCE_MANUAL: "MANUAL",
}


class TagWriter:
    def __init__(self, core: Core, definitions: Definitions) -> None:
        self.core = core
        self.definitions = definitions

    def write(self, writes: Sequence[Any], provenance: Any, trace_id: str, offset: int = 0) -> tuple[int, list]:
        """Write values; a bad row is reported (index, reason, field, message), never fails the others."""
        check_message_size(writes)
        return self.write_group(writes, provenance, trace_id, offset)

    def write_group(self, writes: Sequence[Any], provenance: Any, trace_id: str, offset: int = 0) -> tuple[int, list]:
        """``write`` for the writes of several messages of one stream, in one transaction."""
        source = _SOURCES.get(provenance.source)
        if source is None:
            raise InvalidArgument(
                "provenance.source must be MODEL, IMPORT or MANUAL (RULE values are computed here)",
                violations=[FieldViolation("provenance.source", "MODEL, IMPORT or MANUAL")],
            )
        if not provenance.writer:
            raise InvalidArgument(
                "provenance.writer is required (e.g. model:churn_60d)",
                violations=[FieldViolation("provenance.writer", "name the writer")],
            )
        rules = self.core.engine.tags
        refused: dict[str, tuple[type[QimingError], str, str] | None] = {}  # tag name -> why writes to it are refused
        value_types = self.definitions.value_types  # tag name -> its definition's value_type
        ref = self.core.policy.ref
        errors: list[tuple[int, str, str, str]] = []
        at: list[int] = []  # the index of each accepted write
        accepted: list[tuple[int, str, str, str, int | None]] = []  # id type, id value, tag, value JSON, expiry
        for i, w in enumerate(writes):
            try:
                name = w.tag_name
                if name not in refused:
                    refused[name] = _refusal(rules.get(name), name, name in self.definitions.archived_tags)
                why = refused[name]
                if why is not None:
                    field = f"writes[{i}].tag_name"
                    raise why[0](f"{field}: {why[2]}", reason=why[1], violations=[FieldViolation(field, why[2])])
                value = _value_text(w.value, i, name, value_types.get(name, 0))
                id_type, id_value = ref(w.user.type, w.user.value, f"writes[{i}].user")
                accepted.append(
                    (
                        id_type,
                        id_value,
                        name,
                        value,
                        timestamp_micros(w.expires_at, f"writes[{i}].expires_at") if w.HasField("expires_at") else None,
                    )
                )
                at.append(i)
            except QimingError as exc:
                errors.append((offset + i, exc.reason, exc.violations[0].field if exc.violations else "", exc.message))
        with self.core.writing() as conn:
            now = now_us()  # under the writer (Core.writing)
            shared = _tagwrite.Provenance(
                source, provenance.writer[:128], provenance.writer_version[:64], now, trace_id[:32]
            )
            # The definitions may have changed while this waited for the writer's lock (an archive, which removes the
            # tag's values): each tag is checked again here, where no definition can change until the commit.
            accepted, at = self._still_writable(accepted, at, errors, offset)
            rule_tags, segments = readers_of(self.core.engine, {w[2] for w in accepted})
            refresh = bool(rule_tags or segments)
            missing, touched = _tagwrite.write_values(
                self.core.store, conn, accepted, shared, persons=refresh, sensitive=self.core.sensitive_tags
            )
            for k in missing:
                i = at[k]
                errors.append((offset + i, "PROFILE_NOT_FOUND", f"writes[{i}].user", "no profile has this id"))
            if current_call() is not None:  # the audit record names the customers written
                _note_written(self.core, conn, accepted, set(missing))
            if touched and refresh:  # persons are loaded with their tags only when tags=True
                self.core.engine.refresh(conn, touched, now, cause="event", tags=True, only_segments=segments)
        written = len(accepted) - len(missing)
        return written, sorted(errors)

    def _still_writable(
        self, accepted: list[tuple], at: list[int], errors: list[tuple[int, str, str, str]], offset: int
    ) -> tuple[list[tuple], list[int]]:
        """The writes whose tags are still writable, with their indexes; the others reported as refused."""
        rules, archived = self.core.engine.tags, self.definitions.archived_tags
        late = {
            name: why for name in {w[2] for w in accepted} if (why := _refusal(rules.get(name), name, name in archived))
        }
        if not late:
            return accepted, at
        for w, i in zip(accepted, at, strict=True):
            why = late.get(w[2])
            if why is not None:
                field = f"writes[{i}].tag_name"
                errors.append((offset + i, why[1], field, f"{field}: {why[2]}"))
        kept = [k for k, w in enumerate(accepted) if w[2] not in late]
        return [accepted[k] for k in kept], [at[k] for k in kept]

    def list_user_tags(self, ref: Any, roles: frozenset[str] = frozenset()) -> list[Any]:
        """The person's tags in force; those of level 3+ only for a caller holding an unmask role."""
        key = self.core.policy.ref(ref.type, ref.value, "user")
        now = now_us()
        hidden = frozenset() if roles & frozenset(self.core.settings.unmask_roles) else self.core.sensitive_tags
        with self.core.database.connection() as conn:
            pid = self.core.find(conn, key)
            note_customers_of(self.core.store, conn, [pid])
            tags = self.core.store.load_tags(conn, [pid]).get(pid, {})
        return [
            t for name, t in sorted(tags.items()) if (t.expires_us is None or t.expires_us > now) and name not in hidden
        ]


def _refusal(rule: Any, name: str, archived: bool = False) -> tuple[type[QimingError], str, str] | None:
    """Why writes to tag ``name`` are refused (error type, reason, message); None: they are taken."""
    if rule is None and archived:  # defined (its name stays taken), but no longer active
        return FailedPrecondition, "TAG_ARCHIVED", f"tag {name!r} is archived: its writes are refused"
    if rule is None:
        return NotFound, "TAG_NOT_FOUND", f"no tag definition {name!r}"
    if rule.kind != "external":
        return InvalidArgument, "TAG_NOT_WRITABLE", f"{name!r} is computed by its rule, not written"
    return None


def _note_written(core: Core, conn: Any, accepted: Sequence[tuple], missing: set[int]) -> None:
    """Note the customer numbers of the persons written: those addressed by customer number as given, the others
    (device ids, phone pseudonyms ...) through their persons."""
    written = [w for k, w in enumerate(accepted) if k not in missing]
    note_customers(*{w[1] for w in written if w[0] == CUSTOMER})
    others = {(w[0], w[1]) for w in written if w[0] != CUSTOMER}
    if others:
        note_customers_of(core.store, conn, core.store.lookup_ids(conn, others).values())


def _value_text(value: Any, i: int, name: str = "", value_type: int = 0) -> str:
    """The stored JSON text of a written value (what the ``tag_value`` column's type makes of ``encode``), of the
    kind the tag's ``value_type`` takes (any when unspecified)."""
    field = f"writes[{i}].value"
    kind = value.WhichOneof("kind")
    kinds = KINDS_FOR_TYPE.get(value_type)  # a score may be sent as a whole number
    if kinds is not None and kind is not None and kind not in kinds:
        wanted = types_pb2.ValueType.Name(value_type)
        raise InvalidArgument(
            f"{field}: tag {name!r} holds {wanted} values, not {kind}",
            reason="PROPERTY_TYPE_MISMATCH",
            violations=[FieldViolation(field, f"a {wanted} value")],
        )
    if kind == "double_value":  # model scores: skip the generic path
        number = value.double_value
        if math.isfinite(number):
            return f'["d",{number!r}]'  # json.dumps writes a finite float as its repr
    decoded = from_proto(value, field)
    if decoded is None:
        raise InvalidArgument(f"{field} is not set", violations=[FieldViolation(field, "set a value")])
    if kind in ("string_value", "string_list_value", "double_value"):
        check_value(decoded, field)
    return encode_value(encode(decoded))


def check_message_size(writes: Sequence[Any]) -> None:
    if len(writes) > MAX_WRITES:
        raise InvalidArgument(
            f"at most {MAX_WRITES} writes per message", violations=[FieldViolation("writes", "split the batch")]
        )


def readers_of(engine: Any, written: set[str]) -> tuple[bool, list[Any]]:
    """What a write of the ``written`` tags can change: whether any rule tag reads them (directly, or through a
    segment or another rule tag), and the segments that do. Nothing reads most model scores: their write then
    skips re-evaluating the persons (lifecycle, built-in tags and event windows do not read written tags)."""
    names, segment_ids = set(written), set()
    segments = [s for s in engine.segments.values() if s.node is not None]
    rules = [r for r in engine.tags.values() if r.kind in ("condition", "bands")]
    changed = True
    while changed:
        changed = False
        for segment in segments:
            refs = segment.refs
            if segment.segment_id not in segment_ids and (
                refs is None or refs.tags & names or refs.segments & segment_ids
            ):
                segment_ids.add(segment.segment_id)
                changed = True
        for rule in rules:
            if rule.name not in names and any(r.tags & names or r.segments & segment_ids for r in rule.refs):
                names.add(rule.name)
                changed = True
    return bool(names - written), [s for s in segments if s.segment_id in segment_ids]
