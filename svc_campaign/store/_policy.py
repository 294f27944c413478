"""The policy gate's statements: consents, the contact policy document, the customers' recent messages (what caps and
de-duplication count) and the per-customer gate locks. Which path a database takes (advisory lock or bucket rows,
an array parameter or ``IN``) is decided by ``svc_campaign.policy`` (its ``*_DIALECTS`` lists) and passed in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Integer, Row, Select, Table, bindparam, cast, func, insert, literal_column, select, true, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from svc_campaign.store._bulk import among, json_texts
from svc_common.db import upsert

GATE_LOCKS = 0x5147  # the first key of the gate's advisory locks ("QG"): apart from any other advisory lock user


class Sent(NamedTuple):
    """A message the caps and de-duplication count (the columns read of it)."""

    message_id: str
    channel: int
    template_id: str
    priority: int
    status: str
    created_at: dt.datetime
    is_marketing: bool
    scheduled_at: dt.datetime | None
    lease_until: dt.datetime | None  # set while a delivery round holds it: at the gateway, not to be preempted

    @property
    def at(self) -> dt.datetime:
        """When it reaches the customer: a message held for quiet hours counts on the day it goes out."""
        return self.scheduled_at or self.created_at


def recent_lateral(message: Table) -> Select[Any]:
    """The counted messages since ``b_since`` of the customers in the list ``b_users``, one index probe per
    customer: ``FROM json_array_elements_text(:users) AS u CROSS JOIN LATERAL (SELECT ... WHERE user_id =
    u.user_id ... OFFSET 0)``.
    With ``user_id IN (...)`` PostgreSQL scans the whole outbox whenever its statistics are missing or old (a new
    or fast-growing table: it assumes a customer has 1/200 of the rows), a scan per batch that grows with the
    table; ``OFFSET 0`` keeps the subquery a per-customer probe of ``ix_campaign_message_user`` whatever the
    statistics say (PostgreSQL does not merge such a subquery into a join it could hash)."""
    m = message.c
    users = json_texts("b_users").table_valued("user_id").render_derived(name="u")
    sent = (
        select(*(m[f] for f in Sent._fields))
        .where(
            m.user_id == users.c.user_id,
            m.created_at >= bindparam("b_since", type_=m.created_at.type),
            m.status != "SUPPRESSED",
            m.status != "FAILED",
        )
        .offset(0)
        .lateral("r")
    )
    return select(users.c.user_id, *sent.c).select_from(users).join(sent, true())


class GateStore:
    def __init__(self, tables: dict[str, Table]) -> None:
        self._message = tables["message"]
        self._consent = tables["consent"]
        gate_lock = tables["gate_lock"].c
        c, m = self._consent.c, self._message.c
        self._consents = select(c.channel, c.purpose, c.granted).where(c.user_id == bindparam("b_user"))
        self._recent = select(*(m[f] for f in Sent._fields)).where(
            m.user_id == bindparam("b_user"),
            m.created_at >= bindparam("b_since"),
            # Two plain comparisons rather than IN (...): a statement with no expanding parameter stays cached.
            m.status != "SUPPRESSED",
            m.status != "FAILED",
        )
        self._recent_lateral = recent_lateral(self._message)
        self._consents_of = select(c.user_id, c.channel, c.purpose, c.granted).where(among(c.user_id, "b_users"))
        keys = json_texts("b_keys").table_valued("value").render_derived(name="k")
        key = cast(keys.c.value, Integer)
        ordered = select(key.label("key")).order_by(key).subquery("ordered")  # ascending: waits, not deadlocks
        self._lock = select(func.count(func.pg_advisory_xact_lock(literal_column(str(GATE_LOCKS)), ordered.c.key)))
        self._lock_rows = (
            select(gate_lock.bucket)
            .where(gate_lock.bucket.in_(bindparam("b_buckets", expanding=True)))
            .order_by(gate_lock.bucket)  # ascending, as the advisory keys: overlapping batches wait, not deadlock
            .with_for_update()
        )

    def lock_keys(self, conn: Connection, keys: list[int]) -> None:
        """Transaction advisory locks ``(GATE_LOCKS, key)``, in ascending key order, in one statement."""
        conn.execute(self._lock, {"b_keys": keys})

    def lock_buckets(self, conn: Connection, buckets: list[int]) -> set[int]:
        """Lock these rows of ``campaign_gate_lock`` (``FOR UPDATE``, ascending); returns the buckets locked."""
        return {row.bucket for row in conn.execute(self._lock_rows, {"b_buckets": buckets})}

    def consents_of(self, conn: Connection, users: list[str], *, array: bool) -> Iterable[Any]:
        """The consent rows (user_id, channel, purpose, granted) of several customers at once (``array``: the list
        as one parameter)."""
        if array:
            return conn.execute(self._consents_of, {"b_users": users})
        c = self._consent.c
        return conn.execute(select(c.user_id, c.channel, c.purpose, c.granted).where(c.user_id.in_(users)))

    def recent_of(self, conn: Connection, users: list[str], since: dt.datetime, *, array: bool) -> Iterable[Row[Any]]:
        """(user_id, *Sent) of the counted messages since ``since`` of several customers at once."""
        if array:
            return conn.execute(self._recent_lateral, {"b_users": users, "b_since": since})
        m = self._message.c
        query = select(m.user_id, *(m[f] for f in Sent._fields)).where(
            m.user_id.in_(users), m.created_at >= since, m.status != "SUPPRESSED", m.status != "FAILED"
        )
        return conn.execute(query)

    def consents(self, conn: Connection, user: str) -> Sequence[Row[Any]]:
        return conn.execute(self._consents, {"b_user": user}).all()

    def recent(self, conn: Connection, user: str, since: dt.datetime) -> list[Sent]:
        return [Sent(**r._mapping) for r in conn.execute(self._recent, {"b_user": user, "b_since": since})]


class PolicyStore:
    """The contact policy (one document, ``default``) and consent records."""

    def __init__(self, tables: dict[str, Table]) -> None:
        self.t = tables

    def policy(self, conn: Connection) -> Row[Any] | None:
        """(document, version_no) of the stored policy; None before one is stored."""
        p = self.t["policy"].c
        return conn.execute(select(p.document, p.version_no).where(p.policy_id == "default")).first()

    def policy_version(self, conn: Connection) -> tuple[int, bool]:
        """The stored policy's version and True, or the defaults' (1, svc_campaign.policy.DEFAULT_POLICY_VERSION) and
        False before one is stored."""
        p = self.t["policy"].c
        row = conn.execute(select(p.version_no).where(p.policy_id == "default")).first()
        return (row.version_no, True) if row is not None else (1, False)

    def save_policy(
        self, conn: Connection, document: dict[str, Any], version: int, now: dt.datetime, *, replaces: int | None
    ) -> bool:
        """Store the policy at ``version`` if the stored one is still at ``replaces`` (None: none is stored yet);
        False when another edit came first (a compare-and-set: two edits read the same version, one wins)."""
        table = self.t["policy"]
        p = table.c
        values = {"document": document, "version_no": version, "updated_at": now}
        if replaces is not None:
            changed = conn.execute(
                update(table).where(p.policy_id == "default", p.version_no == replaces).values(**values)
            ).rowcount
            return changed == 1
        try:
            with conn.begin_nested():
                conn.execute(insert(table).values(policy_id="default", **values))
        except IntegrityError:  # another first edit stored the row meanwhile
            return False
        return True

    def set_consent(self, conn: Connection, row: dict[str, Any]) -> None:
        """A consent record (user_id, channel, purpose, granted, source, updated_at), replacing the one of the same
        customer, channel and purpose; the history keeps every record, in the same transaction."""
        upsert(
            conn,
            self.t["consent"],
            [row],
            keys=["user_id", "channel", "purpose"],
            updates=["granted", "source", "updated_at"],
        )
        conn.execute(insert(self.t["consent_history"]), [row])

    def consents(self, conn: Connection, user: str, history: bool = False) -> Sequence[RowMapping]:
        """The records in force (by channel and purpose), or with ``history`` every record ever set, oldest first."""
        if history:
            h = self.t["consent_history"].c
            query = select(self.t["consent_history"]).where(h.user_id == user).order_by(h.history_id)
            return conn.execute(query).mappings().all()
        c = self.t["consent"].c
        query = select(self.t["consent"]).where(c.user_id == user).order_by(c.channel, c.purpose)
        return conn.execute(query).mappings().all()


__all__ = ["GATE_LOCKS", "GateStore", "PolicyStore", "Sent", "recent_lateral"]
