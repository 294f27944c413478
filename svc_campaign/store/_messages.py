"""The outbox as the dispatcher, receipts and the contact history use it: claiming due messages with a lease,
recording outcomes, reading and listing messages, and the pending ``$message_*`` events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, Table, delete, or_, select, update
from sqlalchemy.engine import Connection, RowMapping

from svc_campaign.store._outbox import UNSENT


class MessageStore:
    def __init__(self, tables: dict[str, Table]) -> None:
        self.t = tables

    # -- the dispatcher -------------------------------------------------------------------------------

    def due(
        self, conn: Connection, now: dt.datetime, limit: int, held: list[str], channels: set[int] | None
    ) -> list[dict[str, Any]]:
        """Unsent messages due now and not leased, oldest due first, except those of the ``held`` journeys and, with
        ``channels``, only those channels; on PostgreSQL locked, skipping rows another round holds."""
        m = self.t["message"]
        query = (
            select(m)
            .where(
                m.c.status.in_(UNSENT),
                m.c.next_attempt_at <= now,
                or_(m.c.lease_until.is_(None), m.c.lease_until < now),
            )
            .order_by(m.c.next_attempt_at)
            .limit(limit)
        )
        if held:
            query = query.where(m.c.journey_id.not_in(held))
        if channels is not None:  # a channel no gateway serves stays QUEUED, its attempts untouched
            query = query.where(m.c.channel.in_(sorted(channels)))
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return [dict(r) for r in conn.execute(query).mappings()]

    def lease(self, conn: Connection, ids: list[str], until: dt.datetime) -> None:
        m = self.t["message"]
        conn.execute(update(m).where(m.c.message_id.in_(ids)).values(lease_until=until))

    def cancel(self, conn: Connection, ids: list[str], reason: str) -> None:
        """SUPPRESSED with ``reason``, its lease and next attempt cleared (a cancelled message)."""
        m = self.t["message"]
        conn.execute(
            update(m)
            .where(m.c.message_id.in_(ids))
            .values(status="SUPPRESSED", suppression_reason=reason, next_attempt_at=None, lease_until=None)
        )

    def suppress(self, conn: Connection, ids: list[str], reason: str) -> None:
        """SUPPRESSED with ``reason`` (its lease kept until the round records it)."""
        m = self.t["message"]
        conn.execute(
            update(m)
            .where(m.c.message_id.in_(ids))
            .values(status="SUPPRESSED", suppression_reason=reason, next_attempt_at=None)
        )

    def defer(self, conn: Connection, ids: list[str], until: dt.datetime) -> None:
        """DEFERRED to ``until`` for quiet hours."""
        m = self.t["message"]
        conn.execute(
            update(m)
            .where(m.c.message_id.in_(ids))
            .values(
                status="DEFERRED",
                scheduled_at=until,
                next_attempt_at=until,
                suppression_reason="quiet_hours_deferred",
            )
        )

    def consents_of(self, conn: Connection, users: list[str]) -> Sequence[Row[Any]]:
        """(user_id, channel, purpose, granted) of these customers' consent records."""
        c = self.t["consent"].c
        return conn.execute(select(c.user_id, c.channel, c.purpose, c.granted).where(c.user_id.in_(users))).all()

    def status(self, conn: Connection, message_id: str) -> Row[Any]:
        """(status, suppression_reason) of a message now."""
        m = self.t["message"].c
        return conn.execute(select(m.status, m.suppression_reason).where(m.message_id == message_id)).one()

    def update(self, conn: Connection, message_id: str, values: dict[str, Any]) -> None:
        m = self.t["message"]
        conn.execute(update(m).where(m.c.message_id == message_id).values(**values))

    # -- reading --------------------------------------------------------------------------------------

    def get(self, conn: Connection, message_id: str) -> RowMapping | None:
        m = self.t["message"]
        return conn.execute(select(m).where(m.c.message_id == message_id)).mappings().first()

    def first_of(self, conn: Connection, message_ids: list[str], user: str) -> RowMapping | None:
        """The first of these messages to ``user`` found."""
        m = self.t["message"]
        rows = conn.execute(select(m).where(m.c.message_id.in_(message_ids), m.c.user_id == user)).mappings()
        return next(iter(rows), None)

    def history(
        self,
        conn: Connection,
        *,
        user: str,
        journey_id: str,
        channels: list[int],
        start: dt.datetime | None,
        end: dt.datetime | None,
        suppressed: bool,
        reasons: list[str],
        after: tuple[dt.datetime, str] | None,
        limit: int,
    ) -> list[RowMapping]:
        """Messages newest first (created_at, message_id), after the ``after`` position, with the filters given."""
        m = self.t["message"].c
        query = select(self.t["message"])
        if user:
            query = query.where(m.user_id == user)
        if journey_id:
            query = query.where(m.journey_id == journey_id)
        if channels:
            query = query.where(m.channel.in_(channels))
        if start:
            query = query.where(m.created_at >= start)
        if end:
            query = query.where(m.created_at < end)
        if suppressed:
            query = query.where(m.status == "SUPPRESSED")
            if reasons:
                query = query.where(m.suppression_reason.in_(reasons))
        if after is not None:
            query = query.where((m.created_at < after[0]) | ((m.created_at == after[0]) & (m.message_id < after[1])))
        query = query.order_by(m.created_at.desc(), m.message_id.desc()).limit(limit)
        return list(conn.execute(query).mappings())

    # -- pending log events ---------------------------------------------------------------------------

    def pending_events(
        self, conn: Connection, limit: int, now: dt.datetime, hold: dt.timedelta = dt.timedelta(0)
    ) -> list[Row]:
        """Pending events oldest first, but those held back after a rejection (until their ``retry_at``) and the later
        events of a customer whose earlier event svc_collect rejected (for up to ``hold`` from its first rejection):
        a customer's events reach the log in the order they were made (a ``$message_clicked`` not before its
        ``$message_sent``; a customer's events are made at different times: a send, then its receipts)."""
        table = self.t["pending_event"]
        p, older = table.c, table.alias("older").c
        holding = (
            select(older.event_id)
            .where(
                older.person_key == p.person_key,
                older.created_at < p.created_at,
                older.rejected_reason.is_not(None),
                older.rejected_at > now - hold,
            )
            .exists()
        )
        query = (
            select(p.event_id, p.payload, p.rejected_reason, p.rejected_at, p.rejections)
            .where(or_(p.retry_at.is_(None), p.retry_at <= now), or_(p.person_key.is_(None), ~holding))
            .order_by(p.created_at)
            .limit(limit)
        )
        return list(conn.execute(query))

    def published(self, conn: Connection, ids: list[str]) -> None:
        p = self.t["pending_event"]
        conn.execute(delete(p).where(p.c.event_id.in_(ids)))

    def rejected(self, conn: Connection, rejections: Sequence[dict[str, Any]]) -> None:
        """Each ``{"event_id", "rejected_reason", "rejected_message", "rejected_quarantine_id", "rejected_at",
        "rejections", "retry_at"}``: the event stays pending with its rejection."""
        p = self.t["pending_event"]
        for values in rejections:
            changes = {k: v for k, v in values.items() if k != "event_id"}
            conn.execute(update(p).where(p.c.event_id == values["event_id"]).values(changes))


__all__ = ["MessageStore"]
