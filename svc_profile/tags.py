"""Tag values written by other services (model scores, imports) with provenance, and a person's tags."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from svc_common.conditions import from_proto
from svc_common.errors import FieldViolation, InvalidArgument, NotFound, QimingError
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_profile.core import Core
from svc_profile.definitions import Definitions
from svc_profile.model import encode, now_us

MAX_WRITES = 10_000
STREAM_GROUP_WRITES = 50_000
"""WriteTagsStream commits this many writes (of several messages) at a time: a million model scores go in twenty
transactions, not two hundred (each commit of random persons rewrites a page per person in SQLite's WAL)."""
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
        errors: list[tuple[int, str, str, str]] = []
        rows: list[dict[str, Any]] = []
        keyed: list[tuple[int, Any, Any]] = []
        for i, w in enumerate(writes):
            where = f"writes[{i}]"
            try:
                rule = rules.get(w.tag_name)
                if rule is None:
                    raise NotFound(f"{where}.tag_name: no tag definition {w.tag_name!r}", reason="TAG_NOT_FOUND")
                if rule.kind != "external":
                    raise InvalidArgument(
                        f"{where}.tag_name: {w.tag_name!r} is computed by its rule, not written",
                        reason="TAG_NOT_WRITABLE",
                    )
                value = from_proto(w.value)
                if value is None:
                    raise InvalidArgument(f"{where}.value is not set")
                keyed.append((i, self.core.policy.ref(w.user.type, w.user.value, f"{where}.user"), w))
                rows.append({"value": value})
            except QimingError as exc:
                errors.append((offset + i, exc.reason, where, exc.message))
        now = now_us()
        written = 0
        with self.core.writing() as conn:
            owners = self.core.store.lookup_ids(conn, [k for _, k, _ in keyed])
            out, touched = [], set()
            for (i, key, w), row in zip(keyed, rows, strict=True):
                pid = owners.get(key)
                if pid is None:
                    errors.append((offset + i, "PROFILE_NOT_FOUND", f"writes[{i}].user", "no profile has this id"))
                    continue
                touched.add(pid)
                out.append(
                    {
                        "profile_id": pid,
                        "name": w.tag_name,
                        "tag_value": encode(row["value"]),
                        "source": source,
                        "writer": provenance.writer[:128],
                        "writer_version": provenance.writer_version[:64],
                        "written_us": now,
                        "expires_us": w.expires_at.ToMicroseconds() if w.HasField("expires_at") else None,
                        "trace_id": trace_id[:32],
                    }
                )
            self.core.store.upsert_tags(conn, out)
            written = len(out)
            rule_tags, segments = readers_of(self.core.engine, {row["name"] for row in out})
            if touched and (rule_tags or segments):  # persons are loaded with their tags only when tags=True
                self.core.engine.refresh(conn, sorted(touched), now, cause="event", tags=True, only_segments=segments)
        return written, sorted(errors)

    def list_user_tags(self, ref: Any) -> list[Any]:
        key = self.core.policy.ref(ref.type, ref.value, "user")
        now = now_us()
        with self.core.database.connection() as conn:
            pid = self.core.find(conn, key)
            tags = self.core.store.load_tags(conn, [pid]).get(pid, {})
        return [t for _, t in sorted(tags.items()) if t.expires_us is None or t.expires_us > now]


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
