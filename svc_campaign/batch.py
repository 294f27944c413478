"""Writes and reads of one engine transaction, batched: messages, new participants and visits wait in memory and
go out in one ``executemany`` each before commit; what the entry rules and the policy gate ask per customer is
read ahead for the whole batch. Mixed into :class:`svc_campaign.journey_walk.Walker`."""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.engine import Connection


class BatchedWrites:
    """Needs ``self._local`` (a ``threading.local``), ``self.t``, ``self.gate``, ``self.policy()`` and the
    ``_insert_message`` / ``_insert_participant`` / ``_insert_visit`` statements."""

    def _writes(self) -> Writes:
        writes = getattr(self._local, "writes", None)
        if writes is None:
            writes = self._local.writes = Writes()
        return writes

    def _pending(self) -> list[dict[str, Any]]:
        return self._writes().visits

    def pending_messages(self, user: str) -> list[dict[str, Any]]:
        """Messages of ``user`` written in this transaction but not flushed yet (the gate counts them)."""
        return self._writes().messages_by_user.get(user, [])

    def flush(self, conn: Connection) -> None:
        """Write the messages, new participants and visits recorded since the last flush, in three statements
        (in the caller's transaction)."""
        writes = self._writes()
        if writes.messages:
            conn.execute(self._insert_message, writes.messages)
        if writes.participants:
            conn.execute(self._insert_participant, writes.participants)
        if writes.visits:
            conn.execute(self._insert_visit, writes.visits)
        self._local.writes = Writes()

    def discard(self) -> None:
        self._local.writes = Writes()

    def prefetch(self, conn: Connection, users: set[str], now: dt.datetime) -> None:
        """Read, in a few statements, what the entry rules and the policy gate ask per customer, for the customers
        a batch may enter into journeys (instead of three queries per entry). Valid for this transaction only;
        rows written during it are seen through the pending lists, rows changed are dropped from the read-ahead."""
        writes = self._writes()
        todo = sorted(users - writes.known_users)
        if not todo:
            return
        policy = self.policy(conn)
        since = now - dt.timedelta(seconds=max(7 * 86_400, policy.dedupe_window_seconds))
        i, c = self.t["instance"].c, self.t["consent"].c
        for start in range(0, len(todo), 500):
            chunk = todo[start : start + 500]
            writes.known_users.update(chunk)
            rows = conn.execute(
                select(i.user_id, i.journey_id, i.status, i.entered_at)
                .where(i.user_id.in_(chunk))
                .order_by(i.entered_at)
            )
            for row in rows:
                writes.previous[(row.user_id, row.journey_id)] = Previous(row.status, row.entered_at)
            for row in conn.execute(select(c.user_id, c.channel, c.purpose, c.granted).where(c.user_id.in_(chunk))):
                writes.consents.setdefault(row.user_id, []).append((row.channel, row.purpose, row.granted))
            for user, sent in self.gate.recent_for(conn, chunk, since).items():
                writes.recent[user] = sent

    # -- cached reference data ------------------------------------------------------------------------

    def _known(self, user: str) -> tuple[Any, Any]:
        writes = self._writes()
        if user not in writes.known_users:
            return None, None
        return writes.consents.get(user, []), writes.recent.get(user, [])


class Previous(NamedTuple):
    status: str
    entered_at: dt.datetime


class Writes:
    """Rows of one transaction waiting to be written together."""

    def __init__(self) -> None:
        self.visits: list[dict[str, Any]] = []
        self.participants: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.messages_by_user: dict[str, list[dict[str, Any]]] = {}
        # Read ahead for the customers of a batch (see Walker.prefetch): what the table held at its start.
        self.known_users: set[str] = set()
        self.previous: dict[tuple[str, str], Previous] = {}
        self.consents: dict[str, list[tuple[int, str, bool]]] = {}
        self.recent: dict[str, list[Any]] = {}
        self.dropped: set[tuple[str, str]] = set()
