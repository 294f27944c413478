"""The hot persons of the log consumer, kept in memory by the single writer (docs/profile.md, "Consuming
the log"): which profile holds an id, each profile's customer id, its person row (features, attributes,
lifecycle), and for the persons a batch evaluated their tag rows and segment memberships. A batch reads only
the persons it has not seen recently.

Valid because one process writes the profile tables and every write holds ``Core.write_lock``: a write
other than a log batch (RPC writes, merges by RPC, recompute, sweep) clears the cache when it takes the
lock; a batch that fails, or that merged profiles, clears it too; a batch that commits stores what it wrote.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, NamedTuple

from svc_profile.model import compact_json
from svc_profile.store._raw import loads as _loads
from svc_profile.store._sql import TagRow

IdKey = tuple[int, str]
_NONE = ""


encode_doc = compact_json
"""A JSON document as the consumer writes it; one encoder, not one built per call as ``json.dumps`` with options
(or ``JSONEncoder.encode``) does."""


class PersonRow:
    """A person row as the consumer uses it: features decoded (folded in place by a batch), attributes decoded
    only when a rule reads them (most touched persons are not evaluated), the texts kept for the cache."""

    __slots__ = (
        "_attributes",
        "attributes_text",
        "created_us",
        "features",
        "lifecycle_since_us",
        "lifecycle_stage",
        "profile_id",
        "sealed_attributes",
        "updated_us",
    )

    def __init__(
        self,
        profile_id: str,
        created_us: int,
        updated_us: int,
        attributes_text: str | None,
        sealed_attributes: bytes | None,
        features: dict[str, Any],
        lifecycle_stage: str,
        lifecycle_since_us: int,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        self.profile_id = profile_id
        self.created_us = created_us
        self.updated_us = updated_us
        self.attributes_text = attributes_text
        self._attributes = attributes
        self.sealed_attributes = sealed_attributes
        self.features = features
        self.lifecycle_stage = lifecycle_stage
        self.lifecycle_since_us = lifecycle_since_us

    @property
    def attributes(self) -> dict[str, Any]:
        if self._attributes is None:
            self._attributes = _loads(self.attributes_text or "{}")
        return self._attributes

    @classmethod
    def of(cls, row: Any) -> PersonRow:
        """From a row read from the database (its JSON columns decoded already)."""
        return cls(
            row.profile_id,
            row.created_us,
            row.updated_us,
            None,
            row.sealed_attributes,
            row.features,
            row.lifecycle_stage,
            row.lifecycle_since_us,
            attributes=row.attributes,
        )


class MemberRow(NamedTuple):
    """A membership row as evaluation and ``Engine.write_changes`` read it (cached: no database row object)."""

    is_member: bool
    seq: int
    entered_us: int


class HotPersons:
    def __init__(self, limit: int, day_limit: int = 1_000_000) -> None:
        self.limit = limit
        self.day_limit = day_limit
        """The most day buckets kept (``hot_day_buckets``)."""
        self.day_buckets = 0
        self.owner: dict[IdKey, str] = {}
        self.customer: dict[str, str] = {}
        """Profile → its customer id; "" when it has none."""
        self.rows: dict[str, tuple[Any, ...]] = {}
        """Person rows as tuples of plain values (attributes as JSON text, features decoded: a dict of tuples, see
        ``settled``): objects the garbage collector stops tracking, so a large cache does not make every
        collection of the process slower. The features dict is the batch's own (``person_rows``): it folds its
        events into it in place, and a batch that fails clears the cache."""
        self.tags: dict[str, dict[str, TagRow]] = {}
        """Evaluated persons' tag rows ({} for none). The dicts are handed to a batch, which applies its writes
        to them in place: a batch that fails clears the cache, one that commits leaves them as stored."""
        self.members: dict[str, dict[str, MemberRow]] = {}
        """Evaluated persons' membership rows, the same way."""
        self.days: dict[str, dict[str, dict[int, tuple[int, int]]]] = {}
        """Evaluated persons' day buckets as evaluation reads them ({event_type: {day: (n, amount_fen)}}) for the
        types and from the first day of ``days_key``; a batch adds its own deltas to them (``add_days``)."""
        self.days_key: tuple[frozenset[str], int] | None = None
        self.hits = self.misses = self.rule_hits = self.day_hits = 0

    def clear(self) -> None:
        self.owner.clear()
        self.customer.clear()
        self.rows.clear()
        self.tags.clear()
        self.members.clear()
        self.days.clear()
        self.day_buckets = 0

    # -- reads -------------------------------------------------------------------------------------------
    def owners(self, keys: Iterable[IdKey]) -> tuple[dict[IdKey, str], set[IdKey]]:
        """(holders known here, keys to ask the database for)."""
        found, missing = {}, set()
        owner = self.owner
        for key in keys:
            pid = owner.get(key)
            if pid is None:
                missing.add(key)
            else:
                found[key] = pid
        return found, missing

    def customers(self, pids: Iterable[str]) -> tuple[dict[str, str], list[str]]:
        """(customer ids known here, profiles to ask the database for); a profile known to have none is in
        neither."""
        known, ask = {}, []
        for pid in pids:
            value = self.customer.get(pid)
            if value is None:
                ask.append(pid)
            elif value:
                known[pid] = value
        return known, ask

    def person_rows(self, pids: Iterable[str]) -> tuple[dict[str, PersonRow], list[str]]:
        """(rows known here, persons to read). Their features are the cache's own dicts, not copies: the batch
        folds into them (decoding and copying each was ~7 % of a batch); a failed batch clears the cache."""
        found, missing = {}, []
        rows = self.rows
        for pid in pids:
            row = rows.get(pid)
            if row is None:
                missing.append(pid)
            else:
                created, updated, attributes, sealed, features, stage, since = row
                found[pid] = PersonRow(pid, created, updated, attributes, sealed, features, stage, since)
        self.hits += len(found)
        self.misses += len(missing)
        return found, missing

    def tag_rows(self, pids: Iterable[str]) -> tuple[dict[str, dict[str, TagRow]], list[str]]:
        """({person: {tag: row}} known here — {} for a person without tags, persons to read). The dicts are the
        cache's own: the caller's writes go into them (``Engine._tags``), and a failed batch clears the cache."""
        found, missing = _split_known(self.tags, pids)
        self.rule_hits += len(found)
        return found, missing

    def member_rows(self, pids: Iterable[str]) -> tuple[dict[str, dict[str, MemberRow]], list[str]]:
        """({person: {segment: row}} known here, persons to read); shared as ``tag_rows``."""
        found, missing = _split_known(self.members, pids)
        self.rule_hits += len(found)
        return found, missing

    def day_rows(
        self, pids: Iterable[str], types: Iterable[str], first_day: int
    ) -> tuple[dict[str, dict[str, dict[int, Any]]], list[str]]:
        """({person: buckets} known here for exactly these types from ``first_day`` on, persons to read). Buckets
        read for other types or another first day (a day boundary passed, definitions changed) are dropped: a
        cached person holds exactly what ``store.load_days`` would return, nothing older."""
        key = (frozenset(types), first_day)
        if key != self.days_key:
            self.days.clear()
            self.day_buckets = 0
            self.days_key = key
        found, missing = _split_known(self.days, pids)
        self.day_hits += len(found)
        return found, missing

    def _evict_days(self, target: int) -> None:
        """Drop the persons cached longest ago until at most ``target`` buckets are held: a cache at its bound keeps
        most of what it holds (emptying it whole would make every batch at the bound read all its buckets again)."""
        cached = self.days
        while cached and self.day_buckets > target:
            oldest = next(iter(cached))
            self.day_buckets -= sum(len(b) for b in cached.pop(oldest).values())

    def add_days(self, deltas: dict[tuple[str, str, int], list[int]]) -> None:
        """A batch's day deltas (``store.add_days``, in the same transaction), added to the cached buckets in place
        before the batch evaluates: a failed batch clears the cache."""
        cached, key = self.days, self.days_key
        if not cached or key is None:
            return
        types, first = key
        for (pid, event_type, day), (n, amount) in deltas.items():
            mine = cached.get(pid)
            if mine is None or day < first or event_type not in types:
                continue
            bucket = mine.get(event_type)
            if bucket is None:
                bucket = mine[event_type] = {}
            old = bucket.get(day)
            if old is None:
                bucket[day] = (n, amount)
                self.day_buckets += 1
            else:
                bucket[day] = (old[0] + n, old[1] + amount)

    def forget_merged(self, pids: Iterable[str]) -> None:
        """Winners of this batch's merges, before it evaluates them: the merge moved the loser's day buckets and
        kept tags (MANUAL, IMPORT, MODEL) to them in the database, and put them on the loser's static lists, so their
        cached buckets, tag rows and memberships are stale."""
        for pid in pids:
            days = self.days.pop(pid, None)
            if days is not None:
                self.day_buckets -= sum(len(b) for b in days.values())
            self.tags.pop(pid, None)
            self.members.pop(pid, None)

    # -- after a committed batch -----------------------------------------------------------------------
    def store(
        self,
        owner: dict[IdKey, str],
        customers: dict[str, str],
        rows: dict[str, PersonRow],
        evaluated: Iterable[str] = (),
        tags: dict[str, dict[str, TagRow]] | None = None,
        members: dict[str, dict[str, Any]] | None = None,
        days: dict[str, dict[str, dict[int, Any]]] | None = None,
    ) -> None:
        """What a committed batch read and wrote: every id it resolved, the customer (or none) of every
        person it touched, their rows as written (features as folded: ``settled``), and for the
        ``evaluated`` persons their tag and membership rows as the batch left them (``tags`` / ``members``:
        every row of those persons, the batch's writes applied); ``days``: the buckets the batch read from the
        database for evaluated persons not cached (``Loading.people``), each person's complete (``{}``: none)."""
        if self.limit == 0:
            return
        if len(self.rows) + len(rows) > self.limit or len(self.owner) + len(owner) > 4 * self.limit:
            self.clear()  # the simplest bound: start over (a batch refills its own persons)
        self.owner.update(owner)
        customer, cached = self.customer, self.rows
        for pid, row in rows.items():
            customer[pid] = customers.get(pid) or _NONE
            attributes = row.attributes_text
            if attributes is None:
                attributes = encode_doc(row.attributes)
            cached[pid] = (
                row.created_us,
                row.updated_us,
                attributes,
                row.sealed_attributes,
                row.features,
                row.lifecycle_stage,
                row.lifecycle_since_us,
            )
        if self.day_buckets > self.day_limit:  # grown past the bound by batches' new buckets
            self._evict_days(self.day_limit - self.day_limit // 10)
        if days and self.day_limit:
            cached_days, room = self.days, self.day_limit - self.day_buckets
            for pid, mine in days.items():
                if pid not in rows:
                    continue
                size = sum(len(b) for b in mine.values())
                if size > room:
                    break  # full: these persons' buckets are read again next time
                room -= size  # tuples of ints: the collector stops tracking them
                cached_days[pid] = {t: {d: (v[0], v[1]) for d, v in b.items()} for t, b in mine.items()}
            self.day_buckets = self.day_limit - room
        if tags is None or members is None:
            return
        cached_tags, cached_members = self.tags, self.members
        for pid in evaluated:
            if pid not in rows:
                continue  # only persons whose row is cached: one clear() drops all of a person
            cached_tags[pid] = tags.get(pid) or {}
            mine = members.get(pid)
            if mine and not all(type(m) is MemberRow for m in mine.values()):
                mine = {sid: MemberRow(bool(m.is_member), int(m.seq), int(m.entered_us)) for sid, m in mine.items()}
            cached_members[pid] = mine or {}


def settled(features: dict[str, Any]) -> dict[str, Any]:
    """A features document read from the database as the cache keeps it: items as tuples (the fold replaces items,
    never changes them), names interned (shared by every cached person). Encoded, the same JSON."""
    intern = sys.intern
    return {intern(name): tuple(item) if type(item) is list else item for name, item in features.items()}


def _split_known(cached: dict[str, Any], pids: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
    """({person: what ``cached`` holds of them}, the persons it does not hold), in the order given."""
    found, missing = {}, []
    for pid in pids:
        rows = cached.get(pid)
        if rows is None:
            missing.append(pid)
        else:
            found[pid] = rows
    return found, missing


__all__ = ["HotPersons", "MemberRow", "PersonRow", "encode_doc", "settled"]
