"""Writes and reads of one engine transaction, batched: messages, new participants, participant changes and
visits wait in memory and go out in one ``executemany`` each before commit; what the entry rules and the policy
gate ask per customer is read ahead for the whole batch. Mixed into :class:`svc_campaign.journey_walk.Walker`."""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from sqlalchemy.engine import Connection

from svc_campaign.clock import earlier


class BatchedWrites:
    """Needs ``self._local`` (a ``threading.local``), ``self.gate``, ``self.policy()`` and ``self.store`` (a
    :class:`svc_campaign.store.ParticipantStore`: the batch's writers and the participations read ahead)."""

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
        """Write the messages, new participants, participant changes and visits recorded since the last flush, in
        one statement each (in the caller's transaction)."""
        writes = self._writes()
        self.store.insert_messages.executemany(conn, writes.messages)
        self.store.insert_participants.executemany(conn, writes.participants)
        self.flush_updates(conn)
        self.store.insert_visits.executemany(conn, writes.visits)
        self._local.writes = Writes()

    def update_participant(self, instance_id: str, changes: dict[str, Any]) -> None:
        """Record a change of a stored participant, written at the next flush (two changes of one participant in
        a transaction merge: the later values win, as two UPDATEs in that order would leave them)."""
        updates = self._writes().updates
        updates[instance_id] = {**updates.get(instance_id, {}), **changes}

    def flush_updates(self, conn: Connection) -> None:
        """Write the participant changes recorded so far: one ``executemany`` per set of changed columns (a walk
        sets the same few, so a batch of timers is one or two statements). The read-ahead stays valid: it holds
        no participant state the changes touch (changed customers are in ``dropped``)."""
        writes = self._writes()
        if not writes.updates:
            return
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        sets: dict[tuple[str, ...], tuple[str, ...]] = {}  # the walks of a batch set their columns in one order
        for instance_id in sorted(writes.updates):  # one order for every writer: no lock-order deadlock
            changes = writes.updates[instance_id]
            named = tuple(changes)
            columns = sets.get(named)
            if columns is None:
                columns = sets[named] = tuple(sorted(named))
            groups.setdefault(columns, []).append({"instance_id": instance_id, **changes})
        for columns, rows in groups.items():
            self.store.update_participants.write(columns).executemany(conn, rows)
        writes.updates = {}

    def discard(self) -> None:
        self._local.writes = Writes()

    def prefetch(self, conn: Connection, users: set[str], now: dt.datetime, *, entries: bool = True) -> None:
        """Read, in a few statements, what the entry rules (``entries``: the customers' participations) and the
        policy gate (consents, recent messages) ask per customer, for the customers of a batch (instead of three
        queries per entry). Valid for this transaction only; rows written during it are seen through the pending
        lists, rows changed are dropped from the read-ahead."""
        writes = self._writes()
        todo = sorted(users - writes.gate_users)
        profiles = getattr(self.profiles, "prefetch", None)
        if profiles is not None:  # svc_profile's directory: one BatchGetProfiles, not a GetProfile per send
            profiles(users)
        if entries:
            self._prefetch_participations(conn, sorted(users - writes.known_users))
        if not todo:
            return
        policy = self.policy(conn)
        since = earlier(now, max(7 * 86_400, policy.dedupe_window_seconds))
        self.gate.lock_customers(conn, todo)  # before reading what they were sent: held until this batch commits
        for start in range(0, len(todo), 500):
            chunk = todo[start : start + 500]
            writes.gate_users.update(chunk)
            for row in self.gate.consents_for(conn, chunk):
                writes.consents.setdefault(row.user_id, []).append((row.channel, row.purpose, row.granted))
            for user, sent in self.gate.recent_for(conn, chunk, since).items():
                writes.recent[user] = sent

    def _prefetch_participations(self, conn: Connection, todo: list[str]) -> None:
        writes = self._writes()
        for start in range(0, len(todo), 500):
            chunk = todo[start : start + 500]
            writes.known_users.update(chunk)
            for row in self.store.participations(conn, chunk):
                writes.previous[(row.user_id, row.journey_id)] = Previous(row.status, row.entered_at)

    # -- cached reference data ------------------------------------------------------------------------

    def _known(self, user: str) -> tuple[Any, Any]:
        writes = self._writes()
        if user not in writes.gate_users:
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
        self.updates: dict[str, dict[str, Any]] = {}
        """Changes of stored participants by instance id (see ``update_participant``)."""
        # Read ahead for the customers of a batch (see Walker.prefetch): what the table held at its start.
        self.known_users: set[str] = set()
        """Customers whose participations were read ahead (``previous``)."""
        self.gate_users: set[str] = set()
        """Customers whose consents and recent messages were read ahead."""
        self.previous: dict[tuple[str, str], Previous] = {}
        self.consents: dict[str, list[tuple[int, str, bool]]] = {}
        self.recent: dict[str, list[Any]] = {}
        self.dropped: set[tuple[str, str]] = set()
