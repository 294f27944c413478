"""Every service process records its start and stop in its own database, so IT can see which nodes ran which
version and when (``OpsService.ListInstances``)."""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from dataclasses import dataclass

from sqlalchemy import Column, Index, Integer, MetaData, String, Table, and_, or_, select, update

from svc_common.db import Database, UtcDateTime
from svc_common.paging import decode_token, encode_token, invalid_page_token


def instance_table(metadata: MetaData, service: str) -> Table:
    """The ``<service>_instance`` table, part of every service's schema."""
    return Table(
        f"{service}_instance",
        metadata,
        Column("instance_id", String(36), primary_key=True),
        Column("service_name", String(32), nullable=False),
        Column("version", String(32), nullable=False),
        Column("host_name", String(255), nullable=False),
        Column("pid", Integer, nullable=False),
        Column("started_at", UtcDateTime(), nullable=False),
        Column("stopped_at", UtcDateTime(), nullable=True),
        Index(f"ix_{service}_instance_started", "started_at"),
    )


@dataclass(frozen=True)
class Instance:
    instance_id: str
    service_name: str
    version: str
    host_name: str
    pid: int
    started_at: dt.datetime
    stopped_at: dt.datetime | None


class InstanceRegistry:
    def __init__(self, database: Database, table: Table, service: str, version: str) -> None:
        self._db = database
        self._table = table
        self.service = service
        self.current = Instance(
            instance_id=str(uuid.uuid4()),
            service_name=service,
            version=version,
            host_name=socket.gethostname(),
            pid=os.getpid(),
            started_at=dt.datetime.now(dt.UTC),
            stopped_at=None,
        )

    def record_start(self) -> None:
        with self._db.connection(write=True) as conn:
            conn.execute(self._table.insert().values(**self.current.__dict__))

    def record_stop(self) -> None:
        with self._db.connection(write=True) as conn:
            conn.execute(
                update(self._table)
                .where(self._table.c.instance_id == self.current.instance_id)
                .values(stopped_at=dt.datetime.now(dt.UTC))
            )

    def list(self, size: int, token: str) -> tuple[list[Instance], str]:
        """Newest first; keyset-paginated on (started_at, instance_id)."""
        t = self._table
        query = select(t).order_by(t.c.started_at.desc(), t.c.instance_id.desc()).limit(size + 1)
        position = decode_token(token, f"instances:{self.service}")
        if position:
            after, last_id = _instance_position(position)
            query = query.where(
                or_(
                    t.c.started_at < after,
                    and_(t.c.started_at == after, t.c.instance_id < last_id),
                )
            )
        with self._db.connection() as conn:
            rows = [Instance(**row._mapping) for row in conn.execute(query)]
        next_token = ""
        if len(rows) > size:
            rows = rows[:size]
            last = rows[-1]
            next_token = encode_token(
                f"instances:{self.service}",
                {"started_at": last.started_at.isoformat(), "instance_id": last.instance_id},
            )
        return rows, next_token


def _instance_position(position: dict) -> tuple[dt.datetime, str]:
    """(started_at, instance_id) of a token's position; a position this listing did not write is INVALID_ARGUMENT
    (not a KeyError or a naive time that would become INTERNAL)."""
    started_at, instance_id = position.get("started_at"), position.get("instance_id")
    if not isinstance(started_at, str) or not isinstance(instance_id, str):
        raise invalid_page_token()
    try:
        after = dt.datetime.fromisoformat(started_at)
    except ValueError:
        raise invalid_page_token() from None
    if after.tzinfo is None:
        raise invalid_page_token()
    return after, instance_id


def create_instance_table_op(op: object, service: str) -> None:
    """Migration step creating ``<service>_instance`` as of revision 0001. Frozen: change it only by a new
    migration, never here (old databases were created by this exact shape)."""
    import sqlalchemy as sa

    op.create_table(  # type: ignore[attr-defined]
        f"{service}_instance",
        sa.Column("instance_id", sa.String(36), primary_key=True),
        sa.Column("service_name", sa.String(32), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("host_name", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("stopped_at", UtcDateTime(), nullable=True),
    )
    op.create_index(f"ix_{service}_instance_started", f"{service}_instance", ["started_at"])  # type: ignore[attr-defined]
