"""Profiles and identities: lookup by any id, declared attributes, explicit links, erase (no grpc here)."""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from svc_common.conditions import from_proto, to_proto
from svc_common.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.protection import find_personal_data
from svc_common.server import note_customers
from svc_profile.core import Core
from svc_profile.erasure import ERASED_CAUSE, customer_ids, erasure_events
from svc_profile.features import FIRST_CUSTOMER_EVENT
from svc_profile.identity import (
    check_link,
    fold_lifecycle,
    link_row,
    new_profile_id,
    note_customers_of,
    person_row,
)
from svc_profile.model import document_json, encode, from_us, is_attribute_name, now_us
from svc_profile.store._bundle import BUNDLE_DIALECTS, load_bundle
from svc_profile.store._outbox import outbox_row
from svc_profile.store._sql import CANONICAL, CUSTOMER

# A run of 11 or more digits (spaces or hyphens inside): a phone, ID or bank card number an operator pasted into an
# erasure's free-text reason. A ticket number is shorter; the log must not carry level-3 values.
_LONG_NUMBER = re.compile(r"\d(?:[ -]?\d){10,}[\dXx]?")


def erasure_reason(reason: str) -> str:
    """An erasure's free-text reason as its log line and its (tamper-evident, never edited) audit record keep it:
    each piece of personal data svc_collect detects (a mobile, identity or card number, an e-mail address) and any
    other long digit run replaced by ``***``, nothing of it kept; then cut to 200 characters (cut first, a value
    straddling the cut was no longer found, and its head was kept)."""
    for start, end, _ in reversed(find_personal_data(reason)):
        reason = f"{reason[:start]}***{reason[end:]}"
    return _LONG_NUMBER.sub("***", reason)[:200]


log = logging.getLogger("qiming.profile")
PARTS = frozenset({"attributes", "features", "tags", "identities", "segments"})
MAX_BATCH_REFS = 1000
MAX_LINKED_BY = 32
MAX_STRING_CHARS = 8_192
"""The longest string an attribute (or a written tag) may hold, as svc_collect's ``max_string_chars``."""
RISK_RATING = "risk_rating"
RATING = re.compile(r"[Cc][1-5]")
"""A ``risk_rating`` as the finance pack reads it (finance._rating): anything else would never be compared."""


def _ts(target: Any, micros: int | None) -> None:
    if micros is not None:
        target.FromMicroseconds(micros)


def check_attribute_name(name: str, field: str) -> None:
    if not is_attribute_name(name):  # until 0.2.10 a leading "_" was taken, stored and then read by SQL alone
        raise InvalidArgument(
            f"{field}: attribute name {name!r} must be 1-64 chars of a-z, 0-9, '_' and '.', not starting with '_'",
            reason="INVALID_NAME",
            violations=[FieldViolation(field, "lower_snake_case attribute names")],
        )


def check_value(value: object, field: str) -> None:
    """Refuse what no store can hold: NaN and infinity (JSON has neither: a stored NaN breaks every SQL-translated
    segment), strings over ``MAX_STRING_CHARS``. INVALID_ARGUMENT naming ``field``."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgument(
            f"{field}: NaN and infinity are refused",
            reason="VALUE_NOT_ALLOWED",
            violations=[FieldViolation(field, "NaN and infinity are refused")],
        )
    strings = [value] if isinstance(value, str) else value if isinstance(value, tuple) else ()
    if any("\x00" in text for text in strings):  # the gRPC layer refuses it first; PostgreSQL's JSONB cannot hold it
        raise InvalidArgument(
            f"{field}: a string holds a NUL character",
            reason="VALUE_NOT_ALLOWED",
            violations=[FieldViolation(field, "no NUL (U+0000) in text")],
        )
    if any(len(text) > MAX_STRING_CHARS for text in strings):
        raise InvalidArgument(
            f"{field}: a string is longer than {MAX_STRING_CHARS} characters",
            reason="STRING_TOO_LONG",
            violations=[FieldViolation(field, f"at most {MAX_STRING_CHARS} characters")],
        )


ACCOUNT_OPENED_AT = "account_opened_at"
OPENED_AT_SKEW = dt.timedelta(days=1)
"""How far ahead of this server's clock an opening date may be (a counter in another time zone, a clock off)."""


def check_attribute_value(name: str, value: object, field: str) -> None:
    """``check_value``, and an amount (``*_fen``) is a number of fen (``money_fen_value``), never text."""
    if value is None:
        raise InvalidArgument(
            f"{field} has no value", reason="MISSING_FIELD", violations=[FieldViolation(field, "set a value")]
        )
    check_value(value, field)
    if name == RISK_RATING and not (isinstance(value, str) and RATING.fullmatch(value)):
        raise InvalidArgument(
            f"{field}: a risk rating is C1 to C5 (C or c and one digit, nothing around it), not {value!r}",
            reason="VALUE_NOT_ALLOWED" if isinstance(value, str) else "PROPERTY_TYPE_MISMATCH",
            violations=[FieldViolation(field, "C1, C2, C3, C4 or C5")],
        )
    if name == ACCOUNT_OPENED_AT:  # lifecycle and the activation score read it as a time, and only as one
        if not isinstance(value, dt.datetime):
            raise InvalidArgument(
                f"{field}: account_opened_at is a timestamp_value, not {type(value).__name__}",
                reason="PROPERTY_TYPE_MISMATCH",
                violations=[FieldViolation(field, "send timestamp_value")],
            )
        if value > dt.datetime.now(dt.UTC) + OPENED_AT_SKEW:
            raise InvalidArgument(
                f"{field}: account_opened_at {value.isoformat()} is in the future (it would keep the account NEW "
                "until then)",
                reason="VALUE_NOT_ALLOWED",
                violations=[FieldViolation(field, "at most a day ahead of the server's clock")],
            )
    if name.endswith("_fen") and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise InvalidArgument(
            f"{field}: an amount (*_fen) is a money_fen_value (fen), not {type(value).__name__}",
            reason="PROPERTY_TYPE_MISMATCH",
            violations=[FieldViolation(field, "send money_fen_value (fen)")],
        )


class ImportStopped(Exception):
    """An ``ImportAttributes`` call ended (cancelled, past its deadline, the server stopping) while one of its
    chunks was being applied: that chunk was rolled back."""


class ProfileDomain:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.unmask_roles = frozenset(core.settings.unmask_roles)

    # -- reading --------------------------------------------------------------------------------------
    def get(self, ref: Any, parts: Sequence[str], roles: frozenset[str], field: str = "user") -> pb.Profile:
        key = self.core.policy.ref(ref.type, ref.value, field)
        core = self.core
        if core.database.engine.dialect.name not in BUNDLE_DIALECTS:
            with core.database.connection() as conn:
                pid = core.find(conn, key, field)
                return self._profile(conn, [pid], parts, roles)[pid]
        # One statement: the id, the person and its rows (on PostgreSQL without BEGIN and COMMIT round trips).
        with core.database.reading() as conn:
            first_day = core.engine.profile_first_day(now_us())
            bundle = load_bundle(conn, core.store.t, key, first_day, core.store.open_tag)
            if bundle is None:
                raise NotFound(f"no profile has the id given in {field}", reason="PROFILE_NOT_FOUND")
            return self._profile(conn, [bundle.profile_id], parts, roles, bundle)[bundle.profile_id]

    def batch_get(self, refs: Sequence[Any], parts: Sequence[str], roles: frozenset[str]) -> tuple[list, list]:
        if len(refs) > MAX_BATCH_REFS:
            raise InvalidArgument(
                f"at most {MAX_BATCH_REFS} users per call", violations=[FieldViolation("users", "too many refs")]
            )
        keys = [self.core.policy.ref(r.type, r.value, f"users[{i}]") for i, r in enumerate(refs)]
        with self.core.database.connection() as conn:
            owners = self.core.store.lookup_ids(conn, keys)
            pids = [owners.get(k) for k in keys]
            profiles = self._profile(conn, sorted({p for p in pids if p}), parts, roles)
        found = [profiles[p] for p in pids if p]
        missing = [r for r, p in zip(refs, pids, strict=True) if not p]
        return found, missing

    def _profile(
        self, conn: Any, pids: Sequence[str], parts: Sequence[str], roles: frozenset[str], bundle: Any = None
    ) -> dict:
        unknown = set(parts) - PARTS
        if unknown:
            raise InvalidArgument(
                f"unknown part(s) {sorted(unknown)}; use {sorted(PARTS)}",
                violations=[FieldViolation("parts", "unknown part")],
            )
        want = set(parts) or PARTS
        core, now = self.core, now_us()
        preloaded = None
        if bundle is not None:
            pid = bundle.profile_id
            rows, ids = {pid: bundle.row}, {pid: bundle.identities}
            preloaded = ({pid: bundle.days}, {pid: bundle.tags}, {pid: bundle.members})
        else:
            rows = core.store.load_persons(conn, pids)
            ids = core.store.identities_of(conn, pids) if "identities" in want else {}
        if "identities" in want or bundle is not None:  # the customer ids are among the identities
            customers = {}
            for pid, linked in ids.items():
                for i in linked:
                    if i.id_type == CUSTOMER:
                        customers.setdefault(pid, i.id_value)
        else:  # what people() would read itself
            customers = core.store.customers_of(conn, pids)
        note_customers(*customers.values())  # the audit record names the customers read
        people = core.engine.people(
            conn, pids, now, all_day_types=True, rows=rows, customers=customers, preloaded=preloaded
        )
        tags = core.engine._local.tag_rows  # loaded by people() in this thread
        members = core.engine._local.member_rows
        unmask = bool(roles & self.unmask_roles)
        out = {}
        for pid in pids:
            person, row = people[pid], rows[pid]
            profile = pb.Profile(
                profile_id=pid,
                lifecycle_stage=pb.LifecycleStage.Value(f"LIFECYCLE_STAGE_{row.lifecycle_stage}"),
            )
            _ts(profile.created_at, row.created_us)
            _ts(profile.updated_at, row.updated_us)
            first, last = person.features.get("first_seen_at"), person.features.get("last_seen_at")
            if first is not None:
                profile.first_seen_at.FromDatetime(first)  # type: ignore[arg-type]
            if last is not None:
                profile.last_seen_at.FromDatetime(last)  # type: ignore[arg-type]
            masked: list[str] = []
            if "attributes" in want:
                self._fill(profile.attributes, person.attributes, unmask, masked)
            if "features" in want:
                features = {**person.features, **person.window_features()}
                from svc_profile.finance import fund_preference_index

                for fund_type, share in fund_preference_index(person, core.engine.fund_params).items():
                    features[f"fund_pref.{fund_type}"] = share
                self._fill(profile.features, features, unmask, masked)
            if "identities" in want:
                for i in ids.get(pid, ()):
                    linked = profile.identities.add(linked_by=i.linked_by, source_ref=i.source_ref)
                    linked.identity.type, linked.identity.value = i.id_type, i.id_value
                    _ts(linked.linked_at, i.linked_us)
            if "tags" in want:
                for tag_name, tag in sorted(tags.get(pid, {}).items()):
                    if tag.expires_us is not None and tag.expires_us <= now:
                        continue
                    if not unmask and tag_name in core.sensitive_tags:  # a level 3+ tag: listed, not shown
                        masked.append(f"tags.{tag_name}")
                        continue
                    profile.tags.append(tag_value_proto(tag))
            if "segments" in want:
                profile.segment_ids.extend(sorted(s for s, m in members.get(pid, {}).items() if m.is_member))
            profile.masked_fields.extend(masked)
            out[pid] = profile
        return out

    def _fill(self, target: Any, values: dict[str, object], unmask: bool, masked: list[str]) -> None:
        for name in sorted(values):
            value = values[name]
            if value is None:
                continue
            if not unmask and self.core.is_sensitive(name):
                masked.append(name)
                continue
            target[name].CopyFrom(to_proto(value))

    # -- writing --------------------------------------------------------------------------------------
    def upsert_attributes(
        self,
        ref: Any,
        attributes: dict[str, Any],
        remove: Iterable[str],
        source: str,
        roles: frozenset[str],
        field: str = "user",
    ) -> tuple[pb.Profile, bool]:
        key = self.core.policy.ref(ref.type, ref.value, field)
        values = self._checked_values(attributes, field[: -len("user")])
        with self.core.writing() as conn:
            now = now_us()  # under the writer (Core.writing)
            pid, created = self._ensure(conn, key, "import", source or "upsert_attributes", now)
            self._write_attributes(conn, pid, values, list(remove), source, now)
            self.core.engine.refresh(conn, [pid], now, cause="event", created={pid} if created else frozenset())
        with self.core.database.connection() as conn:
            return self._profile(conn, [pid], (), roles)[pid], created

    @staticmethod
    def _checked_values(attributes: dict[str, Any], prefix: str) -> dict[str, object]:
        """The attributes as Python values; INVALID_ARGUMENT naming ``<prefix>attributes[<name>]`` (``prefix``: ""
        or "rows[3]." in ImportAttributes, so every path names the row)."""
        values = {}
        for name, value in attributes.items():
            field = f"{prefix}attributes[{name}]"
            check_attribute_name(name, field)
            python = from_proto(value, field)  # a timestamp out of range: INVALID_ARGUMENT naming the field
            check_attribute_value(name, python, field)
            # "c3" is stored "C3": conditions compare the text ("risk_rating GTE 'C3'" would take "c1").
            values[name] = python.upper() if name == RISK_RATING else python  # type: ignore[union-attr]
        return values

    def _ensure(self, conn: Any, key: Any, linked_by: str, ref: str, now: int) -> tuple[str, bool]:
        store = self.core.store
        pid = store.lookup_ids(conn, [key]).get(key)
        if pid is not None:
            return pid, False
        if key[0] == CANONICAL:
            raise NotFound("no profile has this canonical id", reason="PROFILE_NOT_FOUND")
        pid = new_profile_id()
        store.insert_persons(conn, [person_row(pid, now)])
        store.insert_links(
            conn, [link_row(pid, (CANONICAL, pid), "created", ref, now), link_row(pid, key, linked_by, ref, now)]
        )
        return pid, True

    def _write_attributes(
        self, conn: Any, pid: str, values: dict[str, object], remove: list[str], source: str, now: int
    ) -> None:
        row = self.core.store.load_persons(conn, [pid])[pid]
        current = self.core.all_attributes(pid, row)
        for name in remove:
            current.pop(name, None)
        for name, value in values.items():
            current[name] = [*encode(value), source[:64], now]
        clear, sealed = self.core.split_attributes(pid, {k: v[:2] + v[2:] for k, v in current.items()})
        self.core.store.update_persons(
            conn,
            [{"profile_id": pid, "attributes": clear, "sealed_attributes": sealed, "updated_us": now}],
            ("attributes", "sealed_attributes", "updated_us"),
        )

    def import_chunk(self, rows: Sequence[Any], offset: int, stop: threading.Event) -> tuple[int, int, list]:
        """One chunk of an ``ImportAttributes`` stream in one transaction: (created, updated, row errors). Rows are
        numbered from ``offset`` (their position in the stream). The touched persons are refreshed together once.
        ``stop`` (the call ended: cancelled, deadline, shutdown) is checked before each row: once set, the chunk is
        rolled back and ``ImportStopped`` raised, so nothing of it is applied."""
        errors: list[tuple[int, str, str, str]] = []
        valid: list[tuple[int, Any, dict[str, Any], list[str], str]] = []
        for index, row in enumerate(rows, offset):
            try:
                key = self.core.policy.ref(row.user.type, row.user.value, f"rows[{index}].user")
                values = self._checked_values(dict(row.attributes), f"rows[{index}].")
            except InvalidArgument as exc:
                errors.append(self._row_error(index, exc))
                continue
            valid.append((index, key, values, list(row.remove), row.source_system or "import"))
        created: set[str] = set()
        touched: set[str] = set()
        updated = 0
        with self.core.writing() as conn:
            now = now_us()  # under the writer (Core.writing)
            for index, key, values, remove, source in valid:
                if stop.is_set():
                    raise ImportStopped(f"the call ended before row {index} was applied")
                try:
                    pid, was_created = self._ensure(conn, key, "import", source, now)
                except NotFound as exc:
                    errors.append(self._row_error(index, exc))
                    continue
                self._write_attributes(conn, pid, values, remove, source, now)
                touched.add(pid)
                if was_created:
                    created.add(pid)
                else:
                    updated += 1
            if touched:
                self.core.engine.refresh(conn, sorted(touched), now, cause="event", created=created)
                note_customers_of(self.core.store, conn, sorted(touched))  # the audit record names whom it wrote
        errors.sort()
        return len(created), updated, errors

    @staticmethod
    def _row_error(index: int, exc: InvalidArgument | NotFound) -> tuple[int, str, str, str]:
        field = exc.violations[0].field if exc.violations else f"rows[{index}].user"
        return index, exc.reason, field, exc.message

    # -- identities -----------------------------------------------------------------------------------
    def link(self, ref: Any, identity: Any, linked_by: str, roles: frozenset[str]) -> tuple[pb.Profile, str]:
        core = self.core
        key = core.policy.ref(ref.type, ref.value, "user")
        other = core.policy.ref(identity.type, identity.value, "identity")
        if other[0] == CANONICAL:
            raise InvalidArgument(
                "a canonical id is assigned by svc_profile and cannot be linked",
                violations=[FieldViolation("identity.type", "link a broker id, not ID_TYPE_CANONICAL")],
            )
        if len(linked_by) > MAX_LINKED_BY:  # the column's size (profile_identity.linked_by)
            raise InvalidArgument(
                f"linked_by is at most {MAX_LINKED_BY} characters",
                violations=[FieldViolation("linked_by", f"at most {MAX_LINKED_BY} characters, e.g. alias_call")],
            )
        merged, created = "", False
        with core.writing() as conn:
            now = now_us()  # under the writer (Core.writing)
            held = core.store.lookup_ids(conn, [key, other])
            holder = held.get(other)
            if key not in held and key[0] != CANONICAL and key != other:
                # As an alias: a user id nobody holds joins the identity's profile, or with it a new one (until
                # 0.2.10 NOT_FOUND, though the same two ids the other way round linked: walk, session 27).
                if holder is not None:
                    key, other = other, key
                    held[key], holder = holder, None
                else:
                    held[key], created = self._ensure(conn, key, linked_by or "alias_call", "LinkIdentities", now)
            pid = held[key] if key in held else core.find(conn, key)
            if holder == pid:
                pass
            elif holder is None:
                if other[0] == CUSTOMER:
                    check_link({**core.store.customers_of(conn, [pid]), "new": other[1]}, pid, "new")
                core.store.insert_links(conn, [link_row(pid, other, linked_by or "alias_call", "LinkIdentities", now)])
                if other[0] == CUSTOMER:
                    core.store.rekey_outbox(conn, {pid: other[1]})
                    self._customer_since(conn, pid, now)
            else:
                customers = core.store.customers_of(conn, [pid, holder])
                check_link(customers, pid, holder)
                winner, loser = (holder, pid) if customers.get(holder) and not customers.get(pid) else (pid, holder)
                fold_lifecycle(conn, core.store, loser, winner)  # both existed: each has its history
                core.merge(conn, loser, winner, now)
                pid, merged = winner, loser
            core.engine.refresh(conn, [pid], now, cause="event", created={pid} if created else frozenset())
        with core.database.connection() as conn:
            return self._profile(conn, [pid], (), roles)[pid], merged

    def _customer_since(self, conn: Any, pid: str, now: int) -> None:
        """A profile given its customer number now (a known device's): its account dates from now, as for an event's
        link (``FeatureUpdater.seed_customer_since``), not from when the device was first seen."""
        features = dict(self.core.store.load_persons(conn, [pid])[pid].features)
        if FIRST_CUSTOMER_EVENT not in features:
            features[FIRST_CUSTOMER_EVENT] = ["t", now]
            self.core.store.write_features(conn, [(pid, document_json(features), now)])

    def unlink(self, identity: Any) -> str:
        core = self.core
        key = core.policy.ref(identity.type, identity.value, "identity")
        if key[0] == CANONICAL:
            raise InvalidArgument(
                "the canonical id cannot be detached", violations=[FieldViolation("identity.type", "not CANONICAL")]
            )
        with core.writing() as conn:
            now = now_us()  # under the writer (Core.writing)
            previous = core.find(conn, key, "identity")
            note_customers_of(core.store, conn, [previous])  # the customer the id is taken from
            refuse_anchor_unlink(core.store, conn, previous, key)
            core.store.delete_link(conn, *key)
            pid, created = self._ensure(conn, key, "unlink", "UnlinkIdentity", now)
            # The profile left behind changes too (e.g. it no longer holds a customer number).
            core.engine.refresh(
                conn, sorted({previous, pid}), now, cause="event", created={pid} if created else frozenset()
            )
            note_customers_of(core.store, conn, [pid])  # an unlinked customer number: its own profile now
        return pid

    def identities(self, ref: Any) -> tuple[str, list[Any]]:
        key = self.core.policy.ref(ref.type, ref.value, "user")
        with self.core.database.connection() as conn:
            pid = self.core.find(conn, key)
            rows = self.core.store.identities_of(conn, [pid]).get(pid, [])
        note_customers(*(i.id_value for i in rows if i.id_type == CUSTOMER))
        return pid, rows

    def lifecycle_history(self, ref: Any, after: int | None, limit: int) -> list[Any]:
        from sqlalchemy import select

        key = self.core.policy.ref(ref.type, ref.value, "user")
        t = self.core.store.t["lifecycle"]
        with self.core.database.connection() as conn:
            pid = self.core.find(conn, key)
            note_customers_of(self.core.store, conn, [pid])
            stmt = select(t).where(t.c.profile_id == pid)
            if after is not None:
                stmt = stmt.where(t.c.transition_id < after)
            return list(conn.execute(stmt.order_by(t.c.transition_id.desc()).limit(limit)))

    def delete(self, ref: Any, reason: str) -> str:
        if not reason.strip():
            raise InvalidArgument(
                "reason is required (a PIPL request number or ticket)", violations=[FieldViolation("reason", "say why")]
            )
        key = self.core.policy.ref(ref.type, ref.value, "user")
        with self.core.writing() as conn:
            now = now_us()  # under the writer (Core.writing)
            pid = self.core.find(conn, key)
            customers = customer_ids(conn, self.core.store.t["identity"], pid)
            note_customers(*customers)  # the audit record names whom the erasure was of
            members = self.core.store.load_members(conn, [pid])
            changes = [(pid, sid, False) for sid, m in members.get(pid, {}).items() if m.is_member]
            self.core.engine.write_changes(conn, changes, now, ERASED_CAUSE, {}, members)
            erased = erasure_events(pid, customers, now, self.core.signer)
            self.core.store.add_outbox(conn, [outbox_row(e, pid, now) for e in erased])
            self.core.store.delete_person(conn, pid)
        log.info("profile erased", extra={"profile_id": pid, "reason": erasure_reason(reason)})
        return pid


def refuse_anchor_unlink(store: Any, conn: Any, pid: str, key: tuple[str, str]) -> None:
    """Refuse to detach an id that anchors its profile (FAILED_PRECONDITION): its only customer number
    (``CUSTOMER_ID_ANCHORS_PROFILE``) or its only id of any kind (``ID_ANCHORS_PROFILE``, e.g. a prospect's one device).
    The id would move to a new, empty profile and leave the attributes (CRM data, level 3 included), tags and history
    on one that no such id (nor an erasure by it) reaches."""
    ids = [(i.id_type, i.id_value) for i in store.identities_of(conn, [pid]).get(pid, ()) if i.id_type != CANONICAL]
    if key[0] == CUSTOMER and [value for kind, value in ids if kind == CUSTOMER] == [key[1]]:
        raise FailedPrecondition(
            "this customer number is its profile's only one: detached, it would start a new empty profile and leave "
            "the customer's attributes, tags and history on a profile no customer number reaches (nor an erasure "
            "by it). To separate a shared or mistakenly linked device, unlink the device's id instead; to discard "
            "the profile, DeleteProfile it",
            reason="CUSTOMER_ID_ANCHORS_PROFILE",
            metadata={"profile_id": pid},
        )
    if ids == [key]:
        raise FailedPrecondition(
            "this id is its profile's only one: detached, it would start a new empty profile and leave the data "
            "collected under it on a profile that no id (nor an erasure by it) reaches. To discard the profile, "
            "DeleteProfile it",
            reason="ID_ANCHORS_PROFILE",
            metadata={"profile_id": pid},
        )


def tag_value_proto(tag: Any) -> pb.TagValue:
    from svc_profile.model import decode

    out = pb.TagValue(name=tag.name, value=to_proto(decode(tag.tag_value)))
    prov = out.provenance
    prov.source = types_pb2.Provenance.Source.Value(f"SOURCE_{tag.source}")
    prov.writer, prov.writer_version, prov.trace_id = tag.writer, tag.writer_version, tag.trace_id
    prov.written_at.FromMicroseconds(tag.written_us)
    if tag.expires_us is not None:
        out.expires_at.FromMicroseconds(tag.expires_us)
    return out


__all__ = ["ImportStopped", "ProfileDomain", "from_us", "tag_value_proto"]
