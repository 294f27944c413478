"""Evaluation of tags, lifecycle and segments for a set of persons, inside the caller's transaction.

The log consumer calls :meth:`Engine.refresh` for the persons a batch touched; attribute writes call it for
one person; the time sweep and a recompute call it for everyone (bulk-loaded in chunks). Each changed
membership is written with its outbox event in the same transaction (docs/profile.md, "Segments").
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from svc_common.conditions import Money, References, Source, evaluate
from svc_common.protection import Sealer
from svc_profile import finance
from svc_profile.config import ProfileSettings
from svc_profile.features import VIEWS_CHANGED
from svc_profile.hot import MemberRow
from svc_profile.hot import encode_doc as value_text
from svc_profile.loading import Loading
from svc_profile.model import Days, Person, encode
from svc_profile.rules import Context, SegmentRule, TagRule, expiry_type, references, tag_rule_from_proto
from svc_profile.segevents import ENTERED, EXITED, SEGMENT_EVENT_NAMESPACE, segment_event
from svc_profile.store._outbox import outbox_row
from svc_profile.store._sql import ProfileStore, TagRow
from svc_profile.store._tagsql import SEALED_TEXT, TAG_WRITE_COLUMNS


class Engine(Loading):
    def __init__(self, settings: ProfileSettings, store: ProfileStore, sealer: Sealer) -> None:
        self.settings = settings
        self.store = store
        self.sealer = sealer
        self.clock = Days(settings.day_offset_hours)
        self.context = Context(settings)
        self.tags: dict[str, TagRule] = {}
        self.segments: dict[str, SegmentRule] = {}
        self.lifecycle_params = dict(finance.DEFAULTS["lifecycle_stage"])
        self.fund_params = dict(finance.DEFAULTS["fund_preference"])
        self.tag_deps: dict[str, frozenset[str] | None] = {}
        self._local = threading.local()
        self.segment_deps: dict[str, frozenset[str] | None] = {}

    # -- definitions -----------------------------------------------------------------------------------
    def set_tags(self, rules: Iterable[TagRule]) -> None:
        ordered = sorted(rules, key=lambda r: (r.kind != "builtin", r.name))
        by_name = {r.name: r for r in ordered}
        done: dict[str, TagRule] = {}

        def visit(rule: TagRule) -> None:
            if rule.name in done:
                return
            done[rule.name] = rule  # cycles are refused at creation; this only orders
            for ref in rule.refs:
                for dep in sorted(ref.tags):
                    if dep in by_name:
                        visit(by_name[dep])
            done.pop(rule.name)
            done[rule.name] = rule

        for rule in ordered:
            visit(rule)
        self.tags = done
        self.tag_deps = {}
        for rule in done.values():
            if rule.kind == "builtin":
                self.tag_deps[rule.name] = self._builtin_deps(rule)
            elif rule.kind == "external":
                self.tag_deps[rule.name] = frozenset({expiry_type(rule.name)})  # no event writes it
            else:
                self.tag_deps[rule.name] = self.refs_deps(rule.refs)
        # fund_pref.<type> features: the pack's fund preference tag's weights (else another tag of that formula).
        funds = [r for r in ordered if r.kind == "builtin" and r.formula == "fund_preference"]
        funds.sort(key=lambda r: r.name != "fin_fund_preference")
        self.fund_params = dict(funds[0].params) if funds else dict(finance.DEFAULTS["fund_preference"])
        life = by_name.get("lifecycle_stage")
        self.lifecycle_params = (  # a definition stored with another formula (refused since 0.2.7): the defaults
            dict(life.params)
            if life and life.kind == "builtin" and life.formula == "lifecycle_stage"
            else dict(finance.DEFAULTS["lifecycle_stage"])
        )

    def set_segments(self, rules: Iterable[SegmentRule]) -> None:
        by_id = {r.segment_id: r for r in rules}
        done: dict[str, SegmentRule] = {}
        visiting: set[str] = set()

        def visit(rule: SegmentRule) -> None:
            if rule.segment_id in done or rule.segment_id in visiting:
                return  # a cycle stored before the check ran under the writer lock: order it anyhow, do not recurse
            visiting.add(rule.segment_id)
            for dep in sorted(rule.refs.segments if rule.refs else ()):
                if dep in by_id and dep not in done:
                    visit(by_id[dep])
            done[rule.segment_id] = rule

        for rule in by_id.values():
            visit(rule)
        self.segments = done
        self.segment_deps = {}
        for sid, rule in done.items():  # dependency order: in_segment targets first
            self.segment_deps[sid] = self.refs_deps([rule.refs]) if rule.refs else frozenset()

    # -- dependencies: which event types can change a rule's answer (None: any event) ----------------------
    def feature_deps(self, name: str) -> frozenset[str] | None:
        ctx = self.context
        if name.startswith("count."):
            head = name.rpartition(".")[0]
            return frozenset({head[6:]}) if head.startswith("count.") else None
        if name.startswith(("turnover_fen", "trade_", "first_trade", "last_trade", "risk.max_traded")):
            return frozenset(ctx.trade_types)
        if name.startswith(("views.", "risk_views.", "fund_pref.")):
            return frozenset({VIEWS_CHANGED})
        return None

    def refs_deps(self, refs: Iterable[References]) -> frozenset[str] | None:
        out: set[str] = set()
        for ref in refs:
            out.update(ref.event_windows)
            for source, name in ref.fields:
                if source is Source.FEATURE:
                    deps = self.feature_deps(name)
                    if deps is None:
                        return None
                    out |= deps
            for tag in ref.tags:
                deps = self.tag_deps.get(tag, frozenset())
                if deps is None:
                    return None
                out |= deps
            for segment in ref.segments:
                deps = self.segment_deps.get(segment, frozenset())
                if deps is None:
                    return None
                out |= deps
        return frozenset(out)

    def _builtin_deps(self, rule: TagRule) -> frozenset[str] | None:
        ctx, p = self.context, rule.params
        views = frozenset({VIEWS_CHANGED})
        trades = frozenset(ctx.trade_types)
        table = {
            "high_net_worth": trades,
            "investor_tier": frozenset(),
            "dormant_activation_potential": frozenset(
                {
                    *ctx.login_types,
                    *ctx.trade_types,
                    p.get("quote_event", ""),
                    p.get("fund_event", ""),
                    p.get("deposit_event", ""),
                }
            ),
            "fund_preference": views,
            "trading_frequency_tier": trades,
            "risk_mismatch": views | trades,
            "lifecycle_stage": frozenset(ctx.active_types) | trades,
        }
        return table.get(rule.formula)

    # -- evaluation ----------------------------------------------------------------------------------
    def refresh(
        self,
        conn: Connection,
        pids: Sequence[str] | None,
        now: int,
        *,
        cause: str,
        triggers: dict[str, str] | None = None,
        person_types: dict[str, set[str]] | None = None,
        fresh: frozenset[str] | set[str] = frozenset(),
        only_segments: Sequence[SegmentRule] | None = None,
        tags: bool = True,
        rows: dict[str, Any] | None = None,
        customers: dict[str, str] | None = None,
        hot: Any = None,
        lifecycle_for: set[str] | None = None,
        created: frozenset[str] | set[str] = frozenset(),
    ) -> dict[str, int]:
        """Re-evaluate lifecycle, rule tags and segments for ``pids``; write the changes.

        With ``person_types`` (the event types each person had in a log batch), only the rules those types
        can change are evaluated, and only for the persons they concern (``fresh`` persons get everything).
        ``hot`` (the log consumer's ``HotPersons``): tag and membership rows of the persons it holds are taken
        from it, and the rows as this refresh leaves them are kept for ``last_rows`` (to cache after commit).
        ``lifecycle_for`` (the time sweep, with ``person_types``): the persons whose stage can change; the others
        get neither lifecycle nor a ``lifecycle_stage`` formula tag, and when none of ``pids`` is among them only
        the day buckets the planned rules read are loaded. ``created``: persons this transaction created, whose
        first stage is recorded in the history as an entry (from UNSPECIFIED), not as a move out of PROSPECT.
        """
        segments = (
            list(only_segments)
            if only_segments is not None
            else [s for s in self.segments.values() if s.node is not None]
        )
        tag_rules = [r for r in self.tags.values() if r.kind != "external"] if tags else []
        plan: dict[str, tuple[bool, set[str], set[str]]] | None = None
        if person_types is not None:
            plan = {}
            life_deps = frozenset(self.context.active_types) | frozenset(self.context.trade_types)  # the stage's
            everything = (True, {r.name for r in tag_rules}, {s.segment_id for s in segments})
            by_types: dict[tuple[frozenset[str], bool], tuple[bool, set[str], set[str]] | None] = {}
            for pid in pids:
                if pid in fresh:
                    plan[pid] = everything
                    continue
                key = (frozenset(person_types.get(pid, ())), lifecycle_for is None or pid in lifecycle_for)
                if key not in by_types:  # persons with the same event types share one (read-only) plan
                    types, ages = key
                    life = tags and ages and bool(life_deps & types)
                    chosen_tags = {
                        r.name
                        for r in tag_rules
                        if (ages or r.name != "lifecycle_stage") and _hit(self.tag_deps.get(r.name), types)
                    }
                    chosen_segments = {
                        s.segment_id for s in segments if _hit(self.segment_deps.get(s.segment_id), types)
                    }
                    by_types[key] = (
                        (life, chosen_tags, chosen_segments) if life or chosen_tags or chosen_segments else None
                    )
                chosen = by_types[key]
                if chosen is not None:
                    plan[pid] = chosen
            pids = sorted(plan)
            if rows is not None:
                rows = {p: rows[p] for p in pids}
        counts = {"persons": 0, "tag_writes": 0, "lifecycle": 0, "entered": 0, "exited": 0}
        self._local.people = {}
        self._local.tracked = None
        self._local.day_rows = None
        if pids is not None and not pids:
            return counts
        narrow: dict[str, Any] = {}
        if plan is not None and lifecycle_for is not None and not any(plan[pid][0] for pid in plan):
            # Nobody's stage is evaluated: load only what the planned rules read (not lifecycle's 90 days).
            names = set().union(*(plan[pid][1] for pid in plan))
            ids = set().union(*(plan[pid][2] for pid in plan))
            narrow = {
                "segments": [s for s in segments if s.segment_id in ids],
                "tag_rules": [r for r in tag_rules if r.name in names],
                # another tag of the lifecycle formula (its own *_days) reads the last active day over the horizon
                "lifecycle": any(r.formula == "lifecycle_stage" for r in tag_rules if r.name in names),
            }
        people = self.people(
            conn,
            pids,
            now,
            segments=narrow.pop("segments", segments),
            narrow=narrow or None,
            with_tags=tags,
            rows=rows,
            customers=customers,
            lean_tags=person_types is not None,
            hot=hot if tags else None,
        )
        self._local.people = people
        if hot is not None and tags:  # the writes below are applied to these rows as they are made
            self._local.tracked = (self._local.tag_rows, self._local.member_rows)
        counts["persons"] = len(people)
        if tags:
            stages: dict[str, str] = {}
            counts["lifecycle"] = self._lifecycle(conn, people, now, plan, stages, created)
            counts["tag_writes"] = self._tags(conn, people, now, tag_rules, plan, stages)
        entered, exited = self.evaluate_segments(conn, people, segments, now, cause, triggers or {}, plan)
        counts["entered"], counts["exited"] = entered, exited
        return counts

    def last_people(self) -> dict[str, Person]:
        """The persons the last ``refresh`` of this thread evaluated, as it left them (handed over once: not
        kept alive between batches)."""
        people = getattr(self._local, "people", {})
        self._local.people = {}
        return people

    def last_days(self) -> dict[str, dict[str, Any]]:
        """The day buckets the last ``refresh(…, hot=…)`` of this thread read from the database (persons its cache
        did not hold), handed over once."""
        days = getattr(self._local, "day_rows", None) or {}
        self._local.day_rows = None
        return days

    def last_rows(self) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]] | None:
        """(tag rows, membership rows) of the persons the last ``refresh(…, hot=…)`` of this thread evaluated,
        its writes applied: every row of each of them. None when that refresh did not keep them."""
        tracked = getattr(self._local, "tracked", None)
        self._local.tracked = None
        return tracked

    def _lifecycle(
        self,
        conn: Connection,
        people: dict[str, Person],
        now: int,
        plan: dict | None,
        kept: dict[str, str],
        created: frozenset[str] | set[str] = frozenset(),
    ) -> int:
        """Evaluate the persons' stages; ``kept`` gets those whose stage stayed (their person is as it was when
        evaluated, so the ``lifecycle_stage`` tag of the same formula and parameters has that answer too)."""
        updates, history = [], []
        for pid, person in people.items():
            if plan is not None and not plan[pid][0]:
                continue
            stage, rule = finance.lifecycle(person, self.lifecycle_params, self.context)
            first = pid in created  # PROSPECT is only the stored default: a new person's first stage is an entry
            if first or stage != person.lifecycle_stage:
                start = "UNSPECIFIED" if first else person.lifecycle_stage
                history.append({"profile_id": pid, "from_stage": start, "to_stage": stage, "at_us": now, "rule": rule})
            if stage == person.lifecycle_stage:
                kept[pid] = stage
            else:
                person.lifecycle_stage, person.lifecycle_since_us = stage, now
                updates.append({"profile_id": pid, "lifecycle_stage": stage, "lifecycle_since_us": now})
        self.store.update_persons(conn, updates, ("lifecycle_stage", "lifecycle_since_us"))
        self.store.add_transitions(conn, history)
        return len(history)

    def _tags(
        self,
        conn: Connection,
        people: dict[str, Person],
        now: int,
        rules: list[TagRule],
        plan: dict | None,
        stages: dict[str, str] | None = None,
    ) -> int:
        writes, deletes = [], []
        stored = self._local.tag_rows
        track = getattr(self._local, "tracked", None) is not None
        sealer = self.store.tag_sealer
        # Each rule's persons, in the order of ``people``: one pass over the persons' planned rules, not one over
        # every person for each rule.
        chosen: dict[str, list[tuple[str, Person]]] | None = None
        if plan is not None:
            chosen = {rule.name: [] for rule in rules}
            for pid, person in people.items():
                for name in plan[pid][1]:
                    persons = chosen.get(name)
                    if persons is not None:
                        persons.append((pid, person))
        # A batch's values repeat (scores, tiers, True): each distinct one encoded once, its list shared by the tag
        # rows (read-only, as ``tag_rows`` shares them). Not floats: 0.0 and -0.0 are one key, two texts.
        texts: dict[tuple[type, object], tuple[list[Any], str]] = {}
        for rule in rules:
            writer, version = f"tag:{rule.name}", str(rule.version)
            seal = rule.sensitive  # level 3+: sealed at rest (store/_tagsql.py)
            # The lifecycle_stage tag: its parameters are the stage's (set_tags), so a stage just evaluated and kept
            # is its answer (finance.lifecycle reads nothing a tag writes).
            known = stages if rule.name == "lifecycle_stage" and rule.formula == "lifecycle_stage" else None
            name = rule.name
            for pid, person in people.items() if chosen is None else chosen[name]:
                stage = known.get(pid) if known else None
                value = stage.lower() if stage is not None else self.tag_value(rule, person)
                mine = stored.get(pid)
                old = mine.get(name) if mine is not None else None
                if old is not None and old.source not in ("RULE",):
                    continue  # a manual or imported value wins over the rule until removed
                if value is None or value is False:
                    if old is not None:
                        deletes.append((pid, name))
                        person.tags.pop(name, None)
                        if track:
                            del stored[pid][name]
                    continue
                person.tags[name] = value
                kind = type(value)
                if kind is int or kind is str or kind is bool:
                    shared = texts.get((kind, value))
                    if shared is None:
                        encoded = encode(value)
                        shared = texts[(kind, value)] = (encoded, value_text(encoded))
                    encoded, text = shared
                else:
                    encoded = encode(value)
                    text = value_text(encoded)  # a short list: the same text as JsonText writes
                if old is not None and old.tag_value == encoded and old.writer_version == version:
                    continue
                sealed = sealer.seal(pid, name, text) if seal else None
                writes.append(
                    (pid, name, SEALED_TEXT if seal else text, sealed, "RULE", writer, version, now, None, "")
                )
                if track:
                    if mine is None:
                        mine = stored[pid] = {}
                    mine[name] = TagRow(encoded, "RULE", version, None)
        self.store.upsert_tags(conn, writes, value_text=True, columns=TAG_WRITE_COLUMNS)
        self.store.delete_tags(conn, deletes)
        return len(writes) + len(deletes)

    def tag_value(self, rule: TagRule, person: Person) -> object:
        if rule.kind == "condition":
            assert rule.node is not None
            return True if evaluate(rule.node, person) else None
        if rule.kind == "bands":
            for value, node in rule.bands:
                if evaluate(node, person):
                    return value
            return rule.default
        if rule.kind == "builtin":
            return finance.FORMULAS[rule.formula](person, rule.params, self.context)
        return None

    def evaluate_segments(
        self,
        conn: Connection,
        people: dict[str, Person],
        segments: Sequence[SegmentRule],
        now: int,
        cause: str,
        triggers: dict[str, str],
        plan: dict | None = None,
    ) -> tuple[int, int]:
        changes: list[tuple[str, str, bool]] = []
        for rule in segments:
            if rule.node is None:
                continue
            node, sid = rule.node, rule.segment_id
            for pid, person in people.items():
                if plan is not None and sid not in plan[pid][2]:
                    continue
                now_in = evaluate(node, person)
                was_in = sid in person.segments
                if now_in != was_in:
                    changes.append((pid, sid, now_in))
                    if now_in:
                        person.segments.add(sid)
                    else:
                        person.segments.discard(sid)
        return self.write_changes(conn, changes, now, cause, triggers)

    def write_changes(
        self,
        conn: Connection,
        changes: list[tuple[str, str, bool]],
        now: int,
        cause: str,
        triggers: dict[str, str],
        members: dict[str, dict[str, Any]] | None = None,
    ) -> tuple[int, int]:
        """Membership rows and their outbox events for (profile, segment, member now) changes."""
        if not changes:
            return 0, 0
        track = members is None and getattr(self._local, "tracked", None) is not None
        members = members if members is not None else self._local.member_rows
        versions = {s.segment_id: s.version for s in self.segments.values()}
        pids = sorted({p for p, _, _ in changes})
        ids = self.store.event_ids_of(conn, pids)
        rows, outbox = [], []
        entered = 0
        for pid, sid, member in changes:
            old = members.get(pid, {}).get(sid)
            seq = (old.seq if old is not None else 0) + 1
            entered_us = now if member else (old.entered_us if old is not None else now)
            rows.append(
                {
                    "segment_id": sid,
                    "profile_id": pid,
                    "is_member": member,
                    "seq": seq,
                    "entered_us": entered_us,
                    "changed_us": now,
                }
            )
            entered += member
            if track:
                mine = members.get(pid)
                if mine is None:
                    mine = members[pid] = {}
                mine[sid] = MemberRow(member, seq, entered_us)
            event = segment_event(
                pid,
                sid,
                versions.get(sid, 0),
                seq,
                member,
                now,
                cause,
                triggers.get(pid, ""),
                ids.get(pid, ("", "")),
            )  # unsigned: the outbox signs every row as it sends it (signing here too was a fifth of a recompute)
            outbox.append(outbox_row(event, pid, now))
        self.store.upsert_members(conn, rows)
        self.store.add_outbox(conn, outbox)
        return entered, len(changes) - entered


def _hit(deps: frozenset[str] | None, types: frozenset[str] | set[str]) -> bool:
    return deps is None or bool(deps & types)


__all__ = [
    "ENTERED",
    "EXITED",
    "SEGMENT_EVENT_NAMESPACE",
    "Context",
    "Engine",
    "Money",
    "SegmentRule",
    "TagRule",
    "expiry_type",
    "references",
    "segment_event",
    "tag_rule_from_proto",
]
