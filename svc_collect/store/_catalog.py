"""Schemas, quarantine and ingest statistics: the small tables around the log (SQLAlchemy Core)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from svc_collect.validation import storable_text
from svc_common.db import Database
from svc_common.errors import Aborted


@dataclass(frozen=True, slots=True)
class SchemaRecord:
    event_type: str
    version: int
    description: str
    properties: list[dict[str, Any]]
    reject_unknown: bool
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class QuarantineRecord:
    quarantine_id: str
    event_id: str
    event_type: str
    reason: str
    field_path: str
    message: str
    quarantined_at_us: int
    replay_count: int
    released_seq: int | None
    sealed_event: bytes


@dataclass(frozen=True, slots=True)
class StatRow:
    minute_us: int
    event_type: str
    accepted: int
    duplicate: int
    rejected: int


class SqlCatalog:
    def __init__(self, database: Database, tables: dict[str, Table]) -> None:
        self._db = database
        self._schema = tables["schema"]
        self._quarantine = tables["quarantine"]
        self._stat = tables["stat"]
        self._sensitive_name = tables["sensitive_name"]

    # -- the sensitive_properties setting -----------------------------------------------------------

    def settle_sensitive_names(self, names: Iterable[str], now_us: int) -> dict[str, int]:
        """At a start, the setting's ``names``: since when (µs) each has been in it without a break, ``now_us`` for one
        new to it; names it no longer holds are forgotten (added again later, they start again). A collector starting
        at the same moment may write the same rows: the first one's stand (written again on a conflict)."""
        c = self._sensitive_name.c
        wanted = set(names)
        attempts = 3
        while True:
            try:
                with self._db.connection(write=True) as conn:
                    stored = {name: since for name, since in conn.execute(select(c.name, c.since_us))}
                    gone = sorted(stored.keys() - wanted)
                    if gone:
                        conn.execute(delete(self._sensitive_name).where(c.name.in_(gone)))
                    new = sorted(wanted - stored.keys())
                    if new:
                        conn.execute(insert(self._sensitive_name), [{"name": n, "since_us": now_us} for n in new])
                return {name: stored.get(name, now_us) for name in wanted}
            except IntegrityError:  # another collector inserted one of them meanwhile: read them again
                attempts -= 1
                if not attempts:
                    raise

    # -- schemas -----------------------------------------------------------------------------------

    def add_schema(self, record: SchemaRecord, expected_version: int, created_by: str) -> None:
        """Store ``record`` as the next version; ABORTED when someone registered another version first."""
        c = self._schema.c
        try:
            with self._db.connection(write=True) as conn:
                latest = conn.execute(select(func.max(c.version)).where(c.event_type == record.event_type)).scalar()
                if (latest or 0) != expected_version:
                    raise Aborted(
                        f"event schema {record.event_type!r} is at version {latest or 0}, not {expected_version}: "
                        "read it again and retry",
                        reason="CONCURRENT_MODIFICATION",
                    )
                conn.execute(
                    insert(self._schema).values(
                        event_type=record.event_type,
                        version=record.version,
                        description=record.description,
                        properties=record.properties,
                        reject_unknown=record.reject_unknown,
                        created_at=record.created_at,
                        created_by=created_by,
                    )
                )
        except IntegrityError:  # a concurrent registration won the same version number
            raise Aborted(
                f"event schema {record.event_type!r} changed while registering: read it again and retry",
                reason="CONCURRENT_MODIFICATION",
            ) from None

    def get_schema(self, event_type: str, version: int = 0) -> SchemaRecord | None:
        c = self._schema.c
        query = select(self._schema).where(c.event_type == event_type)
        query = query.where(c.version == version) if version else query.order_by(c.version.desc()).limit(1)
        with self._db.connection() as conn:
            row = conn.execute(query).one_or_none()
        return _schema(row) if row is not None else None

    def schema_history(self) -> list[SchemaRecord]:
        """Every version of every event type, by type and version (a few rows per type)."""
        c = self._schema.c
        with self._db.connection() as conn:
            return [_schema(row) for row in conn.execute(select(self._schema).order_by(c.event_type, c.version))]

    def latest_schemas(self, after_type: str = "", limit: int | None = None) -> list[SchemaRecord]:
        """The latest version of each event type, by type name."""
        c = self._schema.c
        latest = (
            select(c.event_type, func.max(c.version).label("version"))
            .where(c.event_type > after_type)
            .group_by(c.event_type)
            .subquery()
        )
        query = (
            select(self._schema)
            .join(latest, and_(c.event_type == latest.c.event_type, c.version == latest.c.version))
            .order_by(c.event_type)
        )
        if limit is not None:
            query = query.limit(limit)
        with self._db.connection() as conn:
            return [_schema(row) for row in conn.execute(query)]

    def schema_fingerprint(self) -> tuple[int, int]:
        """Changes whenever a schema is registered anywhere: (row count, max version) — cheap to poll."""
        c = self._schema.c
        with self._db.connection() as conn:
            count, top = conn.execute(select(func.count(), func.coalesce(func.max(c.version), 0))).one()
        return int(count), int(top)

    # -- quarantine --------------------------------------------------------------------------------

    def list_quarantine(
        self,
        *,
        event_types: Sequence[str] = (),
        reasons: Sequence[str] = (),
        start_us: int | None = None,
        end_us: int | None = None,
        include_released: bool = False,
        after: tuple[int, str] | None = None,
        limit: int = 50,
    ) -> list[QuarantineRecord]:
        """Oldest first, keyset-paged by (quarantined_at_us, quarantine_id)."""
        c = self._quarantine.c
        query = select(self._quarantine)
        if event_types:
            query = query.where(c.event_type.in_(list(event_types)))
        if reasons:
            query = query.where(c.reason.in_(list(reasons)))
        if start_us is not None:
            query = query.where(c.quarantined_at_us >= start_us)
        if end_us is not None:
            query = query.where(c.quarantined_at_us < end_us)
        if not include_released:
            query = query.where(c.released_seq.is_(None))
        if after is not None:
            query = query.where(
                or_(
                    c.quarantined_at_us > after[0],
                    and_(c.quarantined_at_us == after[0], c.quarantine_id > after[1]),
                )
            )
        query = query.order_by(c.quarantined_at_us, c.quarantine_id).limit(limit)
        with self._db.connection() as conn:
            return [_quarantined(row) for row in conn.execute(query)]

    def get_quarantined(self, quarantine_ids: Sequence[str]) -> list[QuarantineRecord]:
        c = self._quarantine.c
        with self._db.connection() as conn:
            rows = conn.execute(select(self._quarantine).where(c.quarantine_id.in_(list(quarantine_ids)))).all()
        by_id = {row.quarantine_id: _quarantined(row) for row in rows}
        return [by_id[q] for q in quarantine_ids if q in by_id]

    def note_failed_replay(self, quarantine_id: str, reason: str, field_path: str, message: str) -> None:
        c = self._quarantine.c
        with self._db.connection(write=True) as conn:
            conn.execute(
                update(self._quarantine)
                .where(c.quarantine_id == quarantine_id, c.released_seq.is_(None))  # a concurrent replay released it
                .values(
                    replay_count=c.replay_count + 1,
                    reason=reason,
                    field_path=storable_text(field_path)[:256],
                    message=storable_text(message),
                )
            )

    # -- statistics --------------------------------------------------------------------------------

    def stats(self, start_us: int, end_us: int, event_types: Sequence[str] = ()) -> list[StatRow]:
        c = self._stat.c
        query = select(self._stat).where(and_(c.minute_us >= start_us - start_us % 60_000_000, c.minute_us < end_us))
        if event_types:
            query = query.where(c.event_type.in_(list(event_types)))
        with self._db.connection() as conn:
            rows = conn.execute(query.order_by(c.minute_us, c.event_type)).all()
        return [StatRow(r.minute_us, r.event_type, r.accepted_count, r.duplicate_count, r.rejected_count) for r in rows]


def _schema(row: Any) -> SchemaRecord:
    return SchemaRecord(
        row.event_type, row.version, row.description, row.properties, bool(row.reject_unknown), row.created_at
    )


def _quarantined(row: Any) -> QuarantineRecord:
    return QuarantineRecord(
        row.quarantine_id,
        row.event_id,
        row.event_type,
        row.reason,
        row.field_path,
        row.message,
        row.quarantined_at_us,
        row.replay_count,
        row.released_seq,
        bytes(row.sealed_event),
    )
