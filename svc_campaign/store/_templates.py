"""Message templates, stored as protobuf JSON with their channel and version."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.engine import Connection


class TemplateStore:
    def __init__(self, tables: dict[str, Table]) -> None:
        self.t = tables

    def exists(self, conn: Connection, template_id: str) -> bool:
        t = self.t["template"]
        return conn.execute(select(t.c.template_id).where(t.c.template_id == template_id)).first() is not None

    def add(self, conn: Connection, template_id: str, document: dict[str, Any], channel: int, now: dt.datetime) -> None:
        conn.execute(
            self.t["template"]
            .insert()
            .values(
                template_id=template_id,
                document=document,
                channel=channel,
                version_no=1,
                created_at=now,
                updated_at=now,
            )
        )

    def replace(
        self,
        conn: Connection,
        template_id: str,
        expected_version: int,
        document: dict[str, Any],
        channel: int,
        version: int,
        now: dt.datetime,
    ) -> None:
        """The template's new version, if it is still at ``expected_version``."""
        t = self.t["template"]
        conn.execute(
            update(t)
            .where(t.c.template_id == template_id, t.c.version_no == expected_version)
            .values(document=document, channel=channel, version_no=version, updated_at=now)
        )

    def document(self, conn: Connection, template_id: str) -> dict[str, Any] | None:
        t = self.t["template"].c
        row = conn.execute(select(t.document).where(t.template_id == template_id)).first()
        return row.document if row is not None else None

    def channel(self, conn: Connection, template_id: str) -> int | None:
        """The template's channel (0: every channel); None when there is no such template."""
        t = self.t["template"].c
        row = conn.execute(select(t.channel).where(t.template_id == template_id)).first()
        return None if row is None else row.channel

    def documents(self, conn: Connection, channel: int, after: str, limit: int) -> list[dict[str, Any]]:
        """Templates after ``after`` in id order (of ``channel`` when set)."""
        t = self.t["template"].c
        query = select(t.document).where(t.template_id > after).order_by(t.template_id).limit(limit)
        if channel:
            query = query.where(t.channel == channel)
        return [r.document for r in conn.execute(query)]


__all__ = ["TemplateStore"]
