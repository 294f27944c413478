"""Identity stitching: which person an id belongs to, links made by login/signup/alias, and merges.

Rules (docs/profile.md, "Identities"): placeholder ids ("null", "0", "guest" ...) are never ids; a login
or signup event links its anonymous id (and further ids) to the customer's profile, merging an anonymous
profile into it; an alias links every id it carries; two profiles that each hold a different customer
number are never merged (the link is refused and counted). Plain events only add ids nobody holds yet.
"""

from __future__ import annotations

import itertools
import logging
import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from svc_common.errors import FailedPrecondition, FieldViolation, InvalidArgument
from svc_common.pb.qiming.common.v1 import event_pb2, types_pb2
from svc_common.protection import KeyProvider, Pseudonymizer
from svc_common.server import current_call, note_customers
from svc_profile.config import ProfileSettings
from svc_profile.features import event_us
from svc_profile.store._sql import CANONICAL, CUSTOMER, ProfileStore

log = logging.getLogger("qiming.profile")
ANONYMOUS = types_pb2.ID_TYPE_ANONYMOUS
_ID_TYPES = frozenset(types_pb2.IdType.values()) - {types_pb2.ID_TYPE_UNSPECIFIED}  # once: values() builds a list
_PSEUDONYMIZED = {types_pb2.ID_TYPE_FUND_ACCOUNT: "fund_account", types_pb2.ID_TYPE_PHONE_PSEUDONYM: "phone"}
IdKey = tuple[int, str]
MAX_ID_CHARS = 128
"""The longest id value a request may name (as svc_collect: the log refuses longer ones)."""


class IdPolicy:
    """What counts as an id, and its stored form (fund accounts and phones as keyed pseudonyms)."""

    def __init__(self, settings: ProfileSettings, keys: KeyProvider) -> None:
        self._placeholders = frozenset(_folded(p) for p in settings.placeholder_ids)
        self._pseudonyms = Pseudonymizer(keys)
        # svc_collect stores fund-account and phone ids as pseudonyms, placeholders included ("null", "0", a blank):
        # their pseudonyms, in every spelling of upper and lower case, are placeholders too, else every event
        # carrying one would be linked to the same person (review 2026-12-07).
        self._placeholder_pseudonyms = frozenset(
            self._pseudonyms.pseudonymize(namespace, spelling)
            for namespace in set(_PSEUDONYMIZED.values())
            for placeholder in (*settings.placeholder_ids, "", *_INVISIBLE)
            for spelling in _case_spellings(placeholder.strip())
        )

    def is_placeholder(self, value: str) -> bool:
        stripped = value.strip()
        if stripped and not stripped.isascii():  # an id of only zero-width characters or BOMs is blank too
            stripped = stripped.strip(_INVISIBLE).strip()
        return not stripped or (stripped.lower() if stripped.isascii() else _folded(stripped)) in self._placeholders

    def key(self, id_type: int, value: str) -> IdKey | None:
        """The stored key of an id from an event, None when it is not an id (empty or a placeholder, also as the
        pseudonym svc_collect made of it)."""
        if self.is_placeholder(value) or id_type in (types_pb2.ID_TYPE_UNSPECIFIED, CANONICAL):
            return None
        # Strip before the cut (Pseudonymizer strips again, harmlessly): blanks must not count towards 256.
        value = value.strip()[:256]
        namespace = _PSEUDONYMIZED.get(id_type)
        if namespace:
            if not Pseudonymizer.is_pseudonym(value):
                value = self._pseudonyms.pseudonymize(namespace, value)
            if value in self._placeholder_pseudonyms:
                return None
        return (id_type, value)

    def ref(self, id_type: int, value: str, field_name: str) -> IdKey:
        """The key of a ``UserRef``/``Identity`` of a request; INVALID_ARGUMENT naming the field otherwise."""
        if id_type not in _ID_TYPES:
            raise InvalidArgument(
                f"{field_name}.type must be set to an IdType",
                reason="MISSING_FIELD" if id_type == types_pb2.ID_TYPE_UNSPECIFIED else "VALUE_NOT_ALLOWED",
                violations=[FieldViolation(f"{field_name}.type", "set an IdType (CUSTOMER, ANONYMOUS, ...)")],
            )
        if len(value) > MAX_ID_CHARS:
            raise InvalidArgument(
                f"{field_name}.value is longer than {MAX_ID_CHARS} characters",
                reason="STRING_TOO_LONG",
                violations=[FieldViolation(f"{field_name}.value", f"at most {MAX_ID_CHARS} characters")],
            )
        if self.is_placeholder(value):
            raise InvalidArgument(
                f"{field_name}.value {value!r} is a placeholder, not an id",
                reason="PLACEHOLDER_ID",
                violations=[
                    FieldViolation(f"{field_name}.value", "placeholder ids ('null', '0', 'guest' ...) are refused")
                ],
            )
        if id_type == CANONICAL:
            return (CANONICAL, value.strip())
        key = self.key(id_type, value)
        if key is None:  # a placeholder's pseudonym, or one once normalised ("+86 0")
            raise InvalidArgument(
                f"{field_name}.value is a placeholder (or its pseudonym), not an id",
                reason="PLACEHOLDER_ID",
                violations=[
                    FieldViolation(f"{field_name}.value", "placeholder ids ('null', '0', 'guest' ...) are refused")
                ],
            )
        return key


_MAX_SPELLED_LETTERS = 10
_FULL_WIDTH = {code: code + 0xFEE0 for code in range(0x21, 0x7F)}  # ASCII ! … ~ to U+FF01 … U+FF5E


_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
"""Zero-width characters and the byte order mark, which ``str.strip`` keeps: around a placeholder, it still is one."""


def _folded(value: str) -> str:
    """``value`` as placeholders are compared: compatibility forms made plain (full-width ``ＮＵＬＬ`` is ``null``),
    the minus sign U+2212 a hyphen-minus (``−1`` is ``-1``), lower case."""
    return unicodedata.normalize("NFKC", value).replace("\u2212", "-").lower()


def _case_spellings(word: str) -> set[str]:
    """``word`` in every spelling of upper and lower case ("null", "Null", "NULL" ...), for a word of at most 10
    letters (1,024 spellings; a longer one in lower, upper and title case only), and those three in full-width
    characters ("ＮＵＬＬ": svc_collect pseudonymizes a fund account as sent)."""
    plain = {word, word.lower(), word.upper(), word.title()}
    spellings = plain | {spelling.translate(_FULL_WIDTH) for spelling in plain}
    if word.startswith("-"):  # "−1" with the minus sign U+2212, as svc_collect would pseudonymize it
        spellings.add("\u2212" + word[1:])
    letters = [i for i, char in enumerate(word) if char.isalpha()]
    if len(letters) > _MAX_SPELLED_LETTERS:
        # Each word of it in lower, capitalised or upper case: "[object Object]", as JavaScript writes it.
        words = re.split(r"([^A-Za-z]+)", word.lower())
        choices = [(w, w.capitalize(), w.upper()) if w.isalpha() else (w,) for w in words]
        if len(choices) <= 9:
            spellings |= {"".join(parts) for parts in itertools.product(*choices)}
        return spellings
    for mask in range(1 << len(letters)):
        chars = list(word.lower())
        for bit, i in enumerate(letters):
            if mask >> bit & 1:
                chars[i] = chars[i].upper()
        spellings.add("".join(chars))
    return spellings


@dataclass
class Resolution:
    """The person of each event of a batch (None: the event carries no usable id) and what changed."""

    pids: list[str | None]
    created: list[str] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    merges: list[tuple[str, str]] = field(default_factory=list)
    refused: int = 0
    customers: dict[str, str] = field(default_factory=dict)
    owner: dict[IdKey, str] = field(default_factory=dict)
    """Every id the batch named → its holder after the batch (before merges: a batch with merges is not
    cached)."""
    looked_up: set[IdKey] | None = None
    """The ids that the consumer's hot persons did not hold (None: no cache was asked); those of ``owner`` that
    the cache holds map to the same profiles (a batch that merges is not cached)."""
    gained: set[str] = field(default_factory=set)
    """Existing profiles this batch linked a customer number to: everything about them is evaluated again (a stage,
    the dormant score and what reads them depend on having a customer, which no event type's rules name)."""
    gained_us: dict[str, int] = field(default_factory=dict)
    """When each of ``gained`` was given its customer number: the time of the event that linked it."""


def new_profile_id() -> str:
    return str(uuid.uuid4())


def person_row(pid: str, at_us: int) -> dict[str, Any]:
    return {
        "profile_id": pid,
        "created_us": at_us,
        "updated_us": at_us,
        "attributes": {},
        "sealed_attributes": None,
        "features": {},
        "lifecycle_stage": "PROSPECT",
        "lifecycle_since_us": at_us,
    }


def link_row(pid: str, key: IdKey, linked_by: str, source_ref: str, at_us: int) -> dict[str, Any]:
    return {
        "id_value": key[1],
        "id_type": key[0],
        "profile_id": pid,
        "linked_by": linked_by,
        "linked_us": at_us,
        "source_ref": source_ref[:128],
    }


_UNSEEN: Any = object()
_NO_IDS: tuple[IdKey, ...] = ()
_MEMO = 200_000
"""Customer and device id values whose keys a resolver remembers (then it starts over)."""


class BatchResolver:
    def __init__(self, settings: ProfileSettings, policy: IdPolicy, store: ProfileStore) -> None:
        self.policy = policy
        self.store = store
        self.identify = frozenset(settings.identify_event_types)
        self.alias = frozenset(settings.alias_event_types)
        self._users: dict[str, Any] = {}
        self._devices: dict[str, Any] = {}

    def resolve(self, conn: Connection, events: list[event_pb2.Event], now: int, hot: Any = None) -> Resolution:
        key = self.policy.key
        per_event: list[tuple[IdKey | None, IdKey | None, Sequence[IdKey]]] = []
        wanted: set[IdKey] = set()
        # Customer and device ids are stored as given (trimmed; never pseudonymized): their keys are remembered
        # across batches, as the same customers keep coming back.
        users, devices = self._users, self._devices
        if len(users) + len(devices) > _MEMO:
            users.clear()
            devices.clear()
        for e in events:
            user, device, identities = e.user_id, e.anonymous_id, e.identities
            customer = anonymous = None
            if user:
                customer = users.get(user, _UNSEEN)
                if customer is _UNSEEN:
                    customer = users[user] = key(CUSTOMER, user)
            if device:
                anonymous = devices.get(device, _UNSEEN)
                if anonymous is _UNSEEN:
                    anonymous = devices[device] = key(ANONYMOUS, device)
            extra = [k for i in identities if (k := key(i.type, i.value)) is not None] if identities else _NO_IDS
            per_event.append((customer, anonymous, extra))
            if customer:
                wanted.add(customer)
            if anonymous:
                wanted.add(anonymous)
            wanted.update(extra)
        if hot is not None:  # the consumer's hot persons: only the others are looked up
            owner, missing = hot.owners(wanted)
            owner.update(self.store.lookup_ids(conn, missing) if missing else {})
        else:
            owner = self.store.lookup_ids(conn, wanted)
        res = Resolution(pids=[None] * len(events), owner=owner, looked_up=missing if hot is not None else None)
        # A profile holds at most one customer id (a second one is refused), so the customer ids found by the
        # lookup name their holders' customers; only the other holders are asked for theirs.
        customers = {pid: value for (id_type, value), pid in owner.items() if id_type == CUSTOMER}
        unknown = sorted(set(owner.values()) - customers.keys())
        if unknown and hot is not None:
            known, unknown = hot.customers(unknown)
            customers.update(known)
        if unknown:
            customers.update(self.store.customers_of(conn, unknown))
        res.customers = customers
        parent: dict[str, str] = {}

        def find(pid: str) -> str:
            while pid in parent:
                pid = parent[pid]
            return pid

        alias, identify, pids = self.alias, self.identify, res.pids
        for i, (e, (customer, anonymous, extra)) in enumerate(zip(events, per_event, strict=True)):
            primary = customer or anonymous or (extra[0] if extra else None)
            if primary is None:
                continue
            event_type = e.event_type
            found = owner.get(primary)
            if found is None and customer is None and event_type not in alias and event_type not in identify:
                # A plain event without a user_id whose first id is new but another is held: the holder's event (its
                # new ids linked as a plain event's are), not a new profile's (until 0.2.10 it depended on the order
                # of its ids: walk, session 27).
                held = next((k for k in (anonymous, *extra) if k and k != primary and k in owner), None)
                # A customer number nobody holds names a customer of its own: not another's event (review, session 27).
                if held is not None and not any(k[0] == CUSTOMER and k not in owner for k in (primary, *extra)):
                    primary, found = held, owner[held]
            if found and not extra and event_type not in alias and event_type not in identify:
                pids[i] = find(found) if parent else found  # most events: a known person, nothing to link
                continue
            kind = "alias" if event_type in alias else "identify" if event_type in identify else "plain"
            pid = find(found) if found else None
            linked_by = {
                "alias": "alias_event",
                "identify": "signup_event" if "signup" in event_type else "login_event",
            }
            if pid is None:
                pid = new_profile_id()
                res.created.append(pid)
                res.links.append(link_row(pid, (CANONICAL, pid), "created", e.event_id, now))
                res.links.append(link_row(pid, primary, "event", e.event_id, now))
                owner[primary] = pid
                if primary[0] == CUSTOMER:
                    customers[pid] = primary[1]
            others = [k for k in (anonymous, *extra) if k and k != primary] if kind != "plain" else list(extra)
            for other in others:
                held = owner.get(other)
                holder = find(held) if held else None
                if holder == pid:
                    continue
                if holder is None:
                    if other[0] == CUSTOMER and customers.get(pid, other[1]) != other[1]:
                        # A second customer number on this profile would make two customers one person.
                        res.refused += 1
                        log.warning(
                            "refused to link a second customer number to a customer's profile (event %s)",
                            e.event_id,
                        )
                        continue
                    res.links.append(link_row(pid, other, linked_by.get(kind, "event"), e.event_id, now))
                    owner[other] = pid
                    if other[0] == CUSTOMER:
                        if not customers.get(pid):
                            res.gained.add(pid)
                            res.gained_us.setdefault(pid, event_us(e))
                        customers[pid] = other[1]
                    continue
                if kind == "plain":
                    continue
                mine, theirs = customers.get(pid), customers.get(holder)
                if mine and theirs and mine != theirs:
                    res.refused += 1
                    log.warning(
                        "refused to merge two customers' profiles (event %s links %s to another customer)",
                        e.event_id,
                        types_pb2.IdType.Name(other[0]),
                    )
                    continue
                winner, loser = (holder, pid) if theirs and not mine else (pid, holder)
                parent[loser] = winner
                res.merges.append((loser, winner))
                if customers.get(loser):
                    customers[winner] = customers[loser]
                pid = winner
            res.pids[i] = pid
        if parent:  # merged in this batch: every event of a loser goes to its winner
            res.pids = [find(p) if p else None for p in pids]
        return res


def fold_lifecycle(conn: Connection, store: ProfileStore, loser: str, winner: str) -> bool:
    """Make the lifecycle history of ``loser`` one story with ``winner``'s before a merge moves it over (call it
    before ``Core.merge``). The winner's track is the person's: the loser's entries from the winner's first entry on
    (a prospect's device seen while the customer was already NEW) are dropped; those before it are the person's
    earlier past, and the winner's first entry then moves on from the stage they reached (``PROSPECT → NEW``, not a
    second ``UNSPECIFIED → NEW``; dropped when the stage is the same). A winner without history (created by this
    transaction), or one that never left PROSPECT against a loser that had an account, takes the loser's stage and
    story: True, so that its first stage is not recorded as an entry."""
    h, p = store.t["lifecycle"], store.t["person"]
    rows = conn.execute(
        select(h.c.transition_id, h.c.profile_id, h.c.from_stage, h.c.to_stage, h.c.at_us)
        .where(h.c.profile_id.in_([loser, winner]))
        .order_by(h.c.at_us, h.c.transition_id)
    ).all()
    theirs = [r for r in rows if r.profile_id == loser]
    mine = [r for r in rows if r.profile_id == winner]
    if not theirs:
        return False
    # A winner that never had an account (a device's prospect, which a link of two ids without a customer number may
    # keep) against an account's story: the account's is the person's, the prospect's entries from its start on
    # dropped and those before kept as the earlier past. Kept the other way, the account's story was dropped and the
    # merge recorded PROSPECT → its stage (walk 2026-12-07).
    prospect = all(r.to_stage == "PROSPECT" for r in mine) and any(r.to_stage != "PROSPECT" for r in theirs)
    if mine and not prospect:
        _fold_track(conn, h, mine, theirs)
        return False
    if mine:
        _fold_track(conn, h, theirs, mine)
    stage = conn.execute(select(p.c.lifecycle_stage, p.c.lifecycle_since_us).where(p.c.profile_id == loser)).first()
    if stage is not None:  # the winner takes the loser's stage with its story
        conn.execute(
            update(p)
            .where(p.c.profile_id == winner)
            .values(lifecycle_stage=stage.lifecycle_stage, lifecycle_since_us=stage.lifecycle_since_us)
        )
    return True


def _fold_track(conn: Connection, h: Any, kept: list[Any], other: list[Any]) -> None:
    """``other``'s entries from ``kept``'s first one on deleted; ``kept``'s first entry moving on from the stage
    ``other`` had reached before it (deleted when that is its stage already)."""
    first = kept[0]
    later = [r.transition_id for r in other if r.at_us >= first.at_us]
    if later:
        conn.execute(delete(h).where(h.c.transition_id.in_(later)))
    past = [r for r in other if r.at_us < first.at_us]
    if past and first.from_stage == "UNSPECIFIED":
        reached = past[-1].to_stage
        if reached == first.to_stage:
            conn.execute(delete(h).where(h.c.transition_id == first.transition_id))
        else:
            conn.execute(update(h).where(h.c.transition_id == first.transition_id).values(from_stage=reached))


def note_customers_of(store: ProfileStore, conn: Connection, pids: Any) -> None:
    """Record the customer numbers of the persons ``pids`` in the audit record of the RPC being served (nothing
    outside an RPC): the audit trail names the customers a call read or changed."""
    if pids and current_call() is not None:
        note_customers(*store.customers_of(conn, sorted(set(pids))).values())


def check_link(customers: dict[str, str], pid: str, other: str) -> None:
    """Refuse (FAILED_PRECONDITION) to merge two profiles that hold different customer numbers."""
    mine, theirs = customers.get(pid), customers.get(other)
    if mine and theirs and mine != theirs:
        raise FailedPrecondition(
            "the two ids belong to two different customers; merging them is refused",
            reason="IDENTITY_CONFLICT",
            metadata={"profile_id": pid, "other_profile_id": other},
        )
