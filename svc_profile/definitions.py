"""Tag and segment definitions: validation (INVALID_ARGUMENT naming the node), versions, cycles, storage.

Definitions are few and read on every batch, so the engine keeps them compiled in memory; every change is
written first, then the in-memory set is rebuilt from the database (one process owns the writes).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from sqlalchemy import delete, func, select, update

from svc_common.conditions import KIND_OF_TYPE, KINDS_FOR_TYPE, PROFILE_SCOPE, Source, compile_condition, walk
from svc_common.conditions import from_proto as value_from_proto
from svc_common.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from svc_common.pb.qiming.common.v1 import condition_pb2, types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_profile import finance
from svc_profile.condpaths import label, tag_reads
from svc_profile.condpaths import nodes as condition_nodes
from svc_profile.core import Core
from svc_profile.defgraph import frozen_readers, kind_clashes, reaches, tag_readers, tags_read
from svc_profile.engine import SegmentRule, TagRule, references, tag_rule_from_proto
from svc_profile.known import ATTRIBUTES, FEATURES, Names, tag_kind
from svc_profile.model import now_us
from svc_profile.retained import check_retained
from svc_profile.service import check_value

NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
TAG_SCOPE = replace(PROFILE_SCOPE, segments=False)
"""Tags read the person (no segments: segments read tags, and the graph stays acyclic)."""
MAX_BANDS = 64
"""Bands of one tag (each runs in order for every evaluated person); their nodes count together."""
_VALUE_TYPES = frozenset(types_pb2.ValueType.values())
_SENSITIVITY = frozenset(types_pb2.SensitivityLevel.values())
SEAL_CHUNK = 10_000
"""Clear rows of level-3 tags sealed per transaction by ``seal_sensitive_tags`` (the writer waits that long)."""
log = logging.getLogger("qiming.profile")


def _bad(field: str, message: str, reason: str = "INVALID_ARGUMENT") -> InvalidArgument:
    return InvalidArgument(message, reason=reason, violations=[FieldViolation(field, message, reason)])


FORMULA_VALUE_TYPES = {
    formula: {"bool": types_pb2.VALUE_TYPE_BOOL, "int": types_pb2.VALUE_TYPE_INT}.get(kind, types_pb2.VALUE_TYPE_STRING)
    for formula, _, kind in finance.PACK.values()
}
"""Built-in formula → the ``value_type`` of the values it produces (the pack's own tags are defined with it)."""


def _pack_formula_problem(definition: pb.TagDefinition, formula: str) -> bool:
    return definition.WhichOneof("rule") != "builtin" or definition.builtin.formula != formula


def _type_name(value_type: int) -> str:
    return types_pb2.ValueType.Name(value_type)


def _builtin_value_type(definition: pb.TagDefinition, field: str) -> None:
    """A builtin tag's ``value_type`` is its formula's: taken from it when unspecified, refused when another (a
    definition says what its values are: clients read a tag's type there). Create and update only: definitions
    stored by an earlier release load as stored."""
    produced = FORMULA_VALUE_TYPES[definition.builtin.formula]
    if definition.value_type == types_pb2.VALUE_TYPE_UNSPECIFIED:
        definition.value_type = produced
    elif definition.value_type != produced:
        path = f"{field}.value_type"
        raise _bad(
            path,
            f"{path}: formula {definition.builtin.formula!r} produces {_type_name(produced)} values, not "
            f"{_type_name(definition.value_type)} (leave it unspecified to take the formula's)",
            "PROPERTY_TYPE_MISMATCH",
        )


def _check_band_kinds(definition: pb.TagDefinition, field: str) -> None:
    """Each band value and the default of a bands tag with a ``value_type`` must be of that type (as a written
    value of an external tag must; ``VALUE_TYPE_UNSPECIFIED`` takes any)."""
    kinds = KINDS_FOR_TYPE.get(definition.value_type)
    if kinds is None:
        return
    values = [(f"{field}.bands.bands[{i}].value", b.value) for i, b in enumerate(definition.bands.bands)]
    if definition.bands.HasField("default_value"):
        values.append((f"{field}.bands.default_value", definition.bands.default_value))
    for path, value in values:
        kind = value.WhichOneof("kind")
        if kind is not None and kind not in kinds:
            raise _bad(
                path,
                f"{path}: tag {definition.name!r} holds {_type_name(definition.value_type)} values "
                f"(definition.value_type), not {kind}",
                "PROPERTY_TYPE_MISMATCH",
            )


def compile_for(scope: Any, condition: condition_pb2.Condition, field: str) -> Any:
    return compile_condition(condition, scope, field=field)


class Definitions:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.t = core.store.t
        self.value_types: dict[str, int] = {}
        """Active tag name → its ``value_type`` (``WriteTags`` refuses a value of another type)."""
        self.tag_kinds: dict[str, str | None] = {}
        """Active tag name → the kind of value its holders have (``known.tag_kind``; None: any), for new conditions."""
        self.archived_tags: frozenset[str] = frozenset()
        """Names of archived tags (``WriteTags`` says a write to one is refused because it is archived)."""

    @contextlib.contextmanager
    def changing(self) -> Iterator[None]:
        """Hold the writer lock over a definition's validation, its write and the reload: whatever depends on the
        other definitions (cycles, unknown tags and segments, readers) is checked against them as they are when
        it is written. Checked before the lock, two concurrent updates each passed the cycle check against a graph
        without the other's change and stored a cycle (walk 2026-12-06, finding 2)."""
        with self.core.write_lock:
            yield
            self.load()

    # -- loading -------------------------------------------------------------------------------------
    def load(self) -> None:
        with self.core.database.connection() as conn:
            tags = [self._latest_tag(conn, n) for n in self._tag_names(conn)]
            segments = [self._segment_row(conn, s) for s in self._segment_ids(conn)]
        self.core.engine.set_tags(
            tag_rule_from_proto(d, lambda c, p: compile_for(TAG_SCOPE, c, p)) for d in tags if not d.archived
        )
        self.core.engine.set_segments(self.segment_rule(s) for s in segments if not s.archived)
        self.core.sensitive_tags = frozenset(d.name for d in tags if d.sensitivity >= types_pb2.SENSITIVITY_LEVEL_3)
        self.value_types = {d.name: d.value_type for d in tags if not d.archived}
        self.tag_kinds = {d.name: tag_kind(d) for d in tags if not d.archived}
        external = [d.name for d in tags if not d.archived and d.WhichOneof("rule") == "external"]
        if external:  # values written under an earlier version's value_type stay: both kinds may be held
            with self.core.database.connection() as conn:
                for name, kind in self._version_kinds(conn, external):
                    if kind != self.tag_kinds.get(name):
                        self.tag_kinds[name] = None
        self.archived_tags = frozenset(d.name for d in tags if d.archived)
        for name, readers in frozen_readers(self.core.engine, [d.name for d in tags if d.archived]):
            log.warning(  # archived by a release that did not refuse it (TAG_IN_USE): their answers are frozen
                "archived tag %r is read by active %s: update or archive them", name, ", ".join(readers)
            )

    def seal_sensitive_tags(self, names: Any = None) -> int:
        """Seal the values of level-3 tags (all of them, or ``names``) still stored in clear: rows written before
        profile_0005, or while the tag's definition was below level 3. Reads take both forms meanwhile. Runs at
        start and when a definition is raised to level 3; returns the rows sealed."""
        wanted = sorted(self.core.sensitive_tags if names is None else names)
        total = 0
        while wanted:
            with self.core.writing() as conn:
                sealed = self.core.store.seal_plaintext(conn, wanted, SEAL_CHUNK)
            total += sealed
            if sealed < SEAL_CHUNK:
                break
        if total:
            log.info("level-3 tag values sealed at rest", extra={"rows": total, "tags": wanted})
        return total

    def strict(self, scope: Any, tag: str = "") -> Any:
        """``scope`` knowing the features svc_profile computes and the tags defined (plus ``tag``, the one being
        defined: reading itself is reported as a cycle): for new definitions, not for loading stored ones."""
        kinds = {name: kind for name, kind in self.tag_kinds.items() if kind is not None}
        tags = Names({*self.value_types, *([tag] if tag else [])}, kinds)
        names = {Source.FEATURE: FEATURES, Source.TAG: tags, Source.SCORE: tags, Source.ATTRIBUTE: ATTRIBUTES}
        return replace(scope, names=names)

    def segment_rule(self, segment: pb.Segment, scope: Any = PROFILE_SCOPE) -> SegmentRule:
        if segment.WhichOneof("definition") == "condition":
            node = compile_for(scope, segment.condition, "segment.condition")
            return SegmentRule(segment.segment_id, segment.version, node, references(node))
        return SegmentRule(segment.segment_id, segment.version, None, None)

    def _tag_names(self, conn: Any) -> list[str]:
        t = self.t["tag_definition"]
        return [r[0] for r in conn.execute(select(t.c.name).distinct().order_by(t.c.name))]

    def _latest_tag(self, conn: Any, name: str, version: int = 0) -> pb.TagDefinition:
        t = self.t["tag_definition"]
        stmt = select(t).where(t.c.name == name)
        stmt = stmt.where(t.c.version == version) if version else stmt.order_by(t.c.version.desc()).limit(1)
        row = conn.execute(stmt).first()
        if row is None:
            raise NotFound(
                f"no tag definition {name!r}" + (f" version {version}" if version else ""), reason="TAG_NOT_FOUND"
            )
        definition = pb.TagDefinition.FromString(row.body)
        definition.version, definition.archived = row.version, row.archived
        definition.created_at.FromDatetime(row.created_at)
        definition.updated_at.FromDatetime(row.updated_at)
        return definition

    def _version_kinds(self, conn: Any, names: list[str]) -> Iterator[tuple[str, str | None]]:
        """(name, the kind its value_type declared) for every stored version of the tags ``names``."""
        t = self.t["tag_definition"]
        for name, body in conn.execute(select(t.c.name, t.c.body).where(t.c.name.in_(names))):
            yield name, KIND_OF_TYPE.get(pb.TagDefinition.FromString(body).value_type)

    def _segment_ids(self, conn: Any) -> list[str]:
        t = self.t["segment"]
        return [r[0] for r in conn.execute(select(t.c.segment_id).order_by(t.c.segment_id))]

    def _segment_row(self, conn: Any, segment_id: str) -> pb.Segment:
        if not segment_id:  # a malformed request, not a segment that is missing
            raise _bad("segment_id", "segment_id is required")
        t = self.t["segment"]
        row = conn.execute(select(t).where(t.c.segment_id == segment_id)).first()
        if row is None:
            raise NotFound(f"no segment {segment_id!r}", reason="SEGMENT_NOT_FOUND")
        segment = pb.Segment.FromString(row.body)
        segment.version, segment.archived = row.version, row.archived
        segment.created_at.FromDatetime(row.created_at)
        segment.updated_at.FromDatetime(row.updated_at)
        return segment

    # -- tags ----------------------------------------------------------------------------------------
    def validate_tag(self, definition: pb.TagDefinition, field: str = "definition") -> TagRule:
        if not NAME.match(definition.name):
            raise _bad(f"{field}.name", f"tag name {definition.name!r} must be lower_snake_case, 1-64 chars")
        for name, known in (("value_type", _VALUE_TYPES), ("sensitivity", _SENSITIVITY)):
            number = getattr(definition, name)
            if number not in known:  # a later release may give the number a meaning: never store it unknown
                problem = f"{field}.{name} {number} is not one this server knows"
                raise _bad(f"{field}.{name}", problem, "VALUE_NOT_ALLOWED")
        kind = definition.WhichOneof("rule")
        if kind is None:
            raise _bad(f"{field}.rule", "set one of condition, bands, external, builtin")
        if kind == "condition":
            definition.value_type = types_pb2.VALUE_TYPE_BOOL
        if kind == "bands":
            if not definition.bands.bands:
                raise _bad(f"{field}.bands", "bands needs at least one band")
            if len(definition.bands.bands) > MAX_BANDS:
                path = f"{field}.bands.bands[{MAX_BANDS}]"
                raise _bad(path, f"{path}: a tag has at most {MAX_BANDS} bands")
            for i, band in enumerate(definition.bands.bands):
                if band.value.WhichOneof("kind") is None:
                    raise _bad(f"{field}.bands.bands[{i}].value", "each band needs a value")
                path = f"{field}.bands.bands[{i}].value"
                check_value(value_from_proto(band.value, path), path)  # a timestamp out of range; NaN, a long text
            path = f"{field}.bands.default_value"
            check_value(value_from_proto(definition.bands.default_value, path), path)
            _check_band_kinds(definition, field)
        if kind == "external" and not definition.external.writer:
            raise _bad(
                f"{field}.external.writer",
                "name the writer that owns it, e.g. svc_modeling (informational: WriteTags does not check it)",
            )
        if kind == "builtin":
            formula = definition.builtin.formula
            if formula not in finance.DEFAULTS:
                raise _bad(
                    f"{field}.builtin.formula", f"unknown formula {formula!r}; one of {sorted(finance.DEFAULTS)}"
                )
            if formula == "lifecycle_stage" and definition.name != "lifecycle_stage":
                # A second stage machine would read the pack's stage as its own previous one (REACTIVATED) and not be
                # aged by the sweep, which follows the pack's (walk, session 27).
                raise _bad(
                    f"{field}.builtin.formula",
                    "the lifecycle_stage formula is the pack's tag 'lifecycle_stage' alone: change its parameters",
                )
            _builtin_value_type(definition, field)
            for name, value in sorted(definition.builtin.parameters.items()):
                path = f"{field}.builtin.parameters[{name}]"
                problem = finance.parameter_problem(formula, name, value_from_proto(value, path))
                if problem:
                    raise _bad(path, f"{path}: {problem}")
            merged = finance.DEFAULTS[formula] | {
                n: value_from_proto(v) for n, v in definition.builtin.parameters.items()
            }
            ordered = finance.order_problem(formula, merged)
            if ordered:
                path = f"{field}.builtin.parameters"
                raise _bad(path, f"{path}[{'/'.join(ordered[0])}]: {ordered[1]}")
        scope = self.strict(TAG_SCOPE, definition.name)
        rule = tag_rule_from_proto(definition, lambda c, p: compile_for(scope, c, p.replace("definition", field)))
        retention = self.core.settings.event_retention_days
        if kind == "condition":
            check_retained(definition.condition, f"{field}.condition", retention_days=retention)
        for i, band in enumerate(definition.bands.bands if kind == "bands" else ()):
            check_retained(band.condition, f"{field}.bands.bands[{i}].condition", retention_days=retention)
        nodes = 0
        for i, (_, node) in enumerate(rule.bands):  # the node limit holds for the whole definition
            nodes += sum(1 for _ in walk(node))
            if nodes > TAG_SCOPE.max_nodes:
                path = f"{field}.bands.bands[{i}].condition"
                raise _bad(
                    path,
                    f"condition node {path}: the bands together have more than {TAG_SCOPE.max_nodes} nodes "
                    "(the limit is per tag definition)",
                    "INVALID_CONDITION",
                )
        self._check_tag_cycles(definition, rule, field)
        return rule

    def _check_tag_cycles(self, definition: pb.TagDefinition, rule: TagRule, field: str) -> None:
        """Refuse a tag that reads itself, directly or through other tags, naming the node that closes the
        cycle by its request path."""
        graph = {name: tags_read(t.refs) for name, t in self.core.engine.tags.items()}
        graph[rule.name] = tags_read(rule.refs)
        kind = definition.WhichOneof("rule")
        conditions = [(definition.condition, f"{field}.condition")] if kind == "condition" else []
        if kind == "bands":
            conditions = [
                (b.condition, f"{field}.bands.bands[{i}].condition") for i, b in enumerate(definition.bands.bands)
            ]
        for condition, path in conditions:
            for tag, where, name in tag_reads(condition, path):
                if reaches(graph, tag, rule.name):
                    raise _bad(
                        where,
                        f"condition node {name}: tag {rule.name!r} depends on itself through {tag!r} (a cycle)",
                        "INVALID_CONDITION",
                    )

    def create_tag(self, definition: pb.TagDefinition, *, builtin_ok: bool = False) -> pb.TagDefinition:
        if definition.name.startswith("fin_") and not builtin_ok:
            raise _bad("definition.name", "names starting with fin_ are reserved for the built-in finance pack")
        if definition.name in finance.PACK and _pack_formula_problem(definition, finance.PACK[definition.name][0]):
            formula = finance.PACK[definition.name][0]  # lifecycle_stage: the stage machine reads its parameters
            raise _bad("definition.rule", f"{definition.name!r} is the finance pack's: a builtin of {formula!r}")
        now = dt.datetime.now(dt.UTC)
        t = self.t["tag_definition"]
        with self.changing():
            self.validate_tag(definition)
            with self.core.writing() as conn:
                taken = conn.execute(select(t.c.archived).where(t.c.name == definition.name).limit(1)).first()
                if taken is not None:
                    archived = " (archived: its name stays taken; choose another name)" if taken.archived else ""
                    raise AlreadyExists(f"a tag named {definition.name!r} exists{archived}", reason="TAG_NAME_TAKEN")
                active = conn.execute(
                    select(func.count(t.c.name.distinct())).where(t.c.archived.is_(False))
                ).scalar_one()
                if active >= self.core.settings.max_tag_definitions:
                    raise ResourceExhausted(f"at most {self.core.settings.max_tag_definitions} tag definitions")
                self._insert_tag(conn, definition, 1, now, now)
        return self.get_tag(definition.name)

    def _insert_tag(self, conn: Any, definition: pb.TagDefinition, version: int, created: Any, now: Any) -> None:
        body = pb.TagDefinition()
        body.CopyFrom(definition)
        for name in ("version", "archived", "created_at", "updated_at"):
            body.ClearField(name)
        conn.execute(
            self.t["tag_definition"]
            .insert()
            .values(
                name=definition.name,
                version=version,
                body=body.SerializeToString(),
                archived=False,
                created_at=created,
                updated_at=now,
            )
        )

    def update_tag(self, definition: pb.TagDefinition, expected_version: int) -> pb.TagDefinition:
        now = dt.datetime.now(dt.UTC)
        with self.changing():
            self.validate_tag(definition)
            with self.core.writing() as conn:
                current = self._latest_tag(conn, definition.name)
                if current.archived:  # a new version would be active again: there is no unarchive
                    raise FailedPrecondition(
                        f"tag {definition.name!r} is archived and is not updated (its name stays taken): "
                        "create a tag under a new name",
                        reason="TAG_ARCHIVED",
                    )
                if expected_version and expected_version != current.version:
                    raise Aborted(f"tag {definition.name!r} is at version {current.version}, not {expected_version}")
                # The pack's name reservation, which create_tag enforces, held for its versions too: the pack's formula
                # (not the stored one, which a release before 0.2.7 let lifecycle_stage change: so it can be repaired).
                pack = finance.PACK.get(definition.name, (current.builtin.formula,))[0]
                if (definition.name.startswith("fin_") or definition.name in finance.PACK) and _pack_formula_problem(
                    definition, pack
                ):
                    raise _bad(
                        "definition.rule",
                        f"{definition.name!r} of the built-in finance pack keeps its formula "
                        f"({pack!r}): change its builtin.parameters, or create a tag of your own",
                    )
                was_external = current.WhichOneof("rule") == "external"
                if was_external != (definition.WhichOneof("rule") == "external"):
                    # Either way the values on the profiles are the other kind's: a rule's would stay where nothing
                    # keeps them current (until 0.2.10 a rule tag could become external: walk, session 27).
                    side = "an external tag stays external" if was_external else "a computed tag stays computed"
                    raise _bad("definition.rule", f"{side}: create a tag of the other kind under a new name")
                kind = tag_kind(definition)
                changed = kind is not None and kind != tag_kind(current)  # unknown: any value, nothing to break
                clashes = kind_clashes(self.core.engine, definition.name, kind) if changed else []
                created = current.created_at.ToDatetime(dt.UTC)
                self._insert_tag(conn, definition, current.version + 1, created, now)
            if clashes:  # not refused: a reader can be given the new kind only once the tag has it (updated next)
                log.warning(
                    "tag %r now holds %s values, which %s compare with values of another kind: update them",
                    definition.name,
                    kind,
                    ", ".join(clashes),
                )
        level3 = types_pb2.SENSITIVITY_LEVEL_3
        if definition.sensitivity >= level3 > current.sensitivity:  # its values stored so far go under seal
            self.seal_sensitive_tags([definition.name])
        return self.get_tag(definition.name)

    def get_tag(self, name: str, version: int = 0) -> pb.TagDefinition:
        with self.core.database.connection() as conn:
            return self._latest_tag(conn, name, version)

    def list_tags(self, after: str, limit: int, include_archived: bool) -> list[pb.TagDefinition]:
        with self.core.database.connection() as conn:
            out = []
            for name in self._tag_names(conn):
                if name <= after:
                    continue
                definition = self._latest_tag(conn, name)
                if definition.archived and not include_archived:
                    continue
                out.append(definition)
                if len(out) >= limit:
                    break
            return out

    def archive_tag(self, name: str) -> pb.TagDefinition:
        """Stop evaluating (or taking writes of) the tag, and remove its values from every profile in the same
        transaction: nothing would keep them current (there is no unarchive), and readers such as svc_campaign's
        journeys would act on them as current. A tag that an active tag or segment reads (``has_tag``, a tag or
        score field) is refused: their answers would freeze on the values it last had."""
        t, values = self.t["tag_definition"], self.t["tag"]
        engine = self.core.engine
        with self.changing(), self.core.writing() as conn:
            self._latest_tag(conn, name)
            if name == "lifecycle_stage":  # its parameters are the stage machine's, which runs whatever the tag
                raise FailedPrecondition(
                    "tag 'lifecycle_stage' holds the lifecycle's parameters and is not archived (the stage is kept "
                    "for every profile regardless): change its builtin.parameters instead",
                    reason="TAG_REQUIRED",
                )
            readers = tag_readers(engine, name)
            if readers:
                raise FailedPrecondition(
                    f"tag {name!r} is read by active {', '.join(readers)}: archive them or update their "
                    "conditions first",
                    reason="TAG_IN_USE",
                )
            conn.execute(update(t).where(t.c.name == name).values(archived=True))
            removed = conn.execute(delete(values).where(values.c.name == name)).rowcount
        log.info("tag %r archived; its values were removed (%s rows)", name, removed if removed >= 0 else "some")
        return self.get_tag(name)

    # -- segments ------------------------------------------------------------------------------------
    def validate_segment(self, segment: pb.Segment) -> SegmentRule:
        if not NAME.match(segment.segment_id):
            raise _bad("segment.segment_id", f"segment id {segment.segment_id!r} must be lower_snake_case, 1-64 chars")
        kind = segment.WhichOneof("definition")
        if kind is None:
            raise _bad("segment.definition", "set condition (dynamic) or static_list")
        rule = self.segment_rule(segment, self.strict(PROFILE_SCOPE))
        if rule.node is None:
            return rule
        check_retained(segment.condition, "segment.condition", retention_days=self.core.settings.event_retention_days)
        known = self.core.engine.segments
        graph = {sid: set(r.refs.segments) if r.refs else set() for sid, r in known.items()}
        graph[rule.segment_id] = set(rule.refs.segments) if rule.refs else set()
        for path, node, _ in condition_nodes(segment.condition, "segment.condition"):
            if node.WhichOneof("node") != "in_segment":
                continue
            target, where, name = node.in_segment.segment_id, f"{path}.in_segment.segment_id", label(node, path)
            if target != rule.segment_id and target not in known:
                raise _bad(where, f"condition node {name}: unknown segment {target!r}", "INVALID_CONDITION")
            if reaches(graph, target, rule.segment_id):
                raise _bad(
                    where,
                    f"condition node {name}: in_segment {target!r} makes a cycle back to {rule.segment_id!r}",
                    "INVALID_CONDITION",
                )
        return rule

    def create_segment(self, segment: pb.Segment) -> pb.Segment:
        """Store a new segment; one without a ``segment_id`` gets one (``seg_`` and 16 hex digits, profile.proto)."""
        if not segment.segment_id:
            assigned = pb.Segment()
            assigned.CopyFrom(segment)
            assigned.segment_id = f"seg_{uuid.uuid4().hex[:16]}"
            segment = assigned
        now = dt.datetime.now(dt.UTC)
        t = self.t["segment"]
        with self.changing(), self.core.writing() as conn:
            self.validate_segment(segment)  # in the lock: against the other segments as they are when it is written
            if conn.execute(select(t.c.segment_id).where(t.c.segment_id == segment.segment_id)).first():
                raise AlreadyExists(f"a segment {segment.segment_id!r} exists", reason="SEGMENT_ID_TAKEN")
            active = conn.execute(select(func.count()).select_from(t).where(t.c.archived.is_(False))).scalar_one()
            if active >= self.core.settings.max_segment_definitions:
                raise ResourceExhausted(f"at most {self.core.settings.max_segment_definitions} segments")
            conn.execute(
                t.insert().values(
                    segment_id=segment.segment_id,
                    version=1,
                    body=_segment_body(segment),
                    archived=False,
                    member_count=0,
                    size_computed_us=0,
                    created_at=now,
                    updated_at=now,
                )
            )
        return self.get_segment(segment.segment_id)

    def discard_segment(self, segment_id: str) -> None:
        """Undo ``create_segment`` when the segment's first computation failed within the call, so that the
        caller's retry creates it again (not ALREADY_EXISTS). Memberships the log consumer gave it meanwhile end
        with ``$segment_exited`` (cause ``archived``). Their rows stay, as non-members: their ``seq`` numbers the
        ids of the events a segment of the same id publishes next (deleted, a retry's events took the ids of the
        first ones, and svc_collect answered them DUPLICATE: never delivered; review 2026-12-07)."""
        t = self.t["segment"]
        with self.changing(), self.core.writing() as conn:
            members = self.core.store.load_members(conn, None, [segment_id])
            changes = sorted((pid, segment_id, False) for pid, rows in members.items() if rows[segment_id].is_member)
            self.core.engine.write_changes(conn, changes, now_us(), "archived", {}, members)
            conn.execute(delete(t).where(t.c.segment_id == segment_id))

    def update_segment(self, segment: pb.Segment, expected_version: int) -> pb.Segment:
        t = self.t["segment"]
        with self.changing(), self.core.writing() as conn:
            self.validate_segment(segment)
            current = self._segment_row(conn, segment.segment_id)
            if current.archived:  # a new version would be stored on a segment nobody evaluates (no unarchive)
                raise FailedPrecondition(
                    f"segment {segment.segment_id!r} is archived and is not updated (its id stays taken): "
                    "create a segment under a new id",
                    reason="SEGMENT_ARCHIVED",
                )
            if expected_version and expected_version != current.version:
                raise Aborted(f"segment {segment.segment_id!r} is at version {current.version}, not {expected_version}")
            if current.WhichOneof("definition") != segment.WhichOneof("definition"):
                raise _bad("segment.definition", "a segment stays dynamic or static; create a new one to change kind")
            conn.execute(
                update(t)
                .where(t.c.segment_id == segment.segment_id)
                .values(version=current.version + 1, body=_segment_body(segment), updated_at=dt.datetime.now(dt.UTC))
            )
        return self.get_segment(segment.segment_id)

    def stored_segment(self, conn: Any, segment_id: str) -> pb.Segment:
        """The segment as stored (NOT_FOUND when unknown), without the count of its members ``get_segment`` makes."""
        return self._segment_row(conn, segment_id)

    def get_segment(self, segment_id: str) -> pb.Segment:
        with self.core.database.connection() as conn:
            segment = self._segment_row(conn, segment_id)
            segment.size = self.size(conn, segment_id)
            t = self.t["segment"]
            computed = conn.execute(select(t.c.size_computed_us).where(t.c.segment_id == segment_id)).scalar_one()
            if computed:
                segment.size_computed_at.FromMicroseconds(computed)
            return segment

    def size(self, conn: Any, segment_id: str) -> int:
        m = self.t["member"]
        stmt = select(func.count()).select_from(m).where(m.c.segment_id == segment_id, m.c.is_member.is_(True))
        return int(conn.execute(stmt).scalar_one())

    def list_segments(self, after: str, limit: int, include_archived: bool) -> list[pb.Segment]:
        with self.core.database.connection() as conn:
            ids = [s for s in self._segment_ids(conn) if s > after]
        out = []
        for sid in ids:
            segment = self.get_segment(sid)
            if segment.archived and not include_archived:
                continue
            out.append(segment)
            if len(out) >= limit:
                break
        return out

    def archive_segment(self, segment_id: str) -> pb.Segment:
        """Stop evaluating the segment and end every membership: each member gets ``$segment_exited``
        (cause ``archived``) through the outbox, in the transaction that archives it. A segment that an active
        segment reads (``in_segment``) is refused: archive or update the readers first."""
        t = self.t["segment"]
        engine = self.core.engine
        with self.changing(), self.core.writing() as conn:
            self._segment_row(conn, segment_id)
            readers = sorted(
                sid
                for sid, r in engine.segments.items()
                if sid != segment_id and segment_id in (r.refs.segments if r.refs else ())
            )
            if readers:
                raise FailedPrecondition(
                    f"segment {segment_id!r} is read (in_segment) by active segment(s) {readers}: archive them or "
                    "update their conditions first",
                    reason="SEGMENT_IN_USE",
                )
            conn.execute(update(t).where(t.c.segment_id == segment_id).values(archived=True))
            members = self.core.store.load_members(conn, None, [segment_id])
            changes = sorted((pid, segment_id, False) for pid, m in members.items() if m[segment_id].is_member)
            now = now_us()
            engine.write_changes(conn, changes, now, "archived", {}, members)
            conn.execute(update(t).where(t.c.segment_id == segment_id).values(member_count=0, size_computed_us=now))
        return self.get_segment(segment_id)

    def install_pack(self) -> None:
        """The built-in finance tags (``fin_*`` and ``lifecycle_stage``), created when missing."""
        with self.core.database.connection() as conn:
            existing = set(self._tag_names(conn))
        for name, (formula, description, _) in finance.PACK.items():
            if name in existing:
                continue
            definition = pb.TagDefinition(
                name=name,
                display_name=description,
                description=f"built-in formula {formula} (docs/profile.md)",
                value_type=FORMULA_VALUE_TYPES[formula],
                builtin=pb.BuiltinTag(formula=formula),
            )
            with contextlib.suppress(AlreadyExists):
                self.create_tag(definition, builtin_ok=True)


def _segment_body(segment: pb.Segment) -> bytes:
    body = pb.Segment()
    body.CopyFrom(segment)
    for name in ("version", "size", "size_computed_at", "archived", "created_at", "updated_at"):
        body.ClearField(name)
    return body.SerializeToString()
