"""Loading persons for evaluation: what the definitions read, bulk-loaded per table (part of ``Engine``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from svc_common.conditions import EventAbsence, EventCount, Source, walk
from svc_profile.features import VIEWS_CHANGED, LazyFeatures, decoded_features
from svc_profile.model import Person, StoredEvent, decode, decode_map, window_days
from svc_profile.timewindows import formula_windows

if TYPE_CHECKING:
    from svc_profile.engine import SegmentRule


class Loading:
    """The loading half of ``Engine`` (its attributes: settings, store, sealer, clock, context, tags,
    segments, lifecycle_params, _local)."""

    tags: dict[str, Any]
    segments: dict[str, Any]
    tag_deps: dict[str, frozenset[str] | None]
    lifecycle_params: dict[str, Any]
    fund_params: dict[str, Any]
    context: Any
    clock: Any
    store: Any
    sealer: Any
    _local: Any

    def needs(
        self,
        segments: Sequence[SegmentRule] | None = None,
        with_tags: bool = True,
        tag_rules: Sequence[Any] | None = None,
        lifecycle: bool = True,
    ) -> tuple[set[str], int, set[str], int]:
        """Day-bucket types and horizon, filtered-event types and horizon, for the definitions evaluated
        (``tag_rules``: only those of the tags; ``lifecycle`` false: the stage is not evaluated)."""
        segments = list(segments) if segments is not None else list(self.segments.values())
        tag_rules = (list(tag_rules) if tag_rules is not None else list(self.tags.values())) if with_tags else []
        refs = [r for t in tag_rules for r in t.refs] + [s.refs for s in segments if s.refs]
        days: set[str] = set()
        horizon = 0
        if with_tags and lifecycle:
            days = {*self.context.login_types, *self.context.trade_types, *self.context.active_types, "quote_view"}
            days |= {"fund_view", "deposit_attempt"}
            horizon = max(self.lifecycle_params["churned_days"], 90) * 86_400
        if with_tags:
            # The builtin formulas read the event types and windows their parameters name (quote_event,
            # window_days ...): the same lists the sweep uses (tag_deps, timewindows.formula_windows).
            for rule in tag_rules:
                if rule.kind != "builtin":
                    continue
                days |= (self.tag_deps.get(rule.name) or frozenset()) - {VIEWS_CHANGED}
                horizon = max([horizon, *(d * 86_400 for d in formula_windows(rule.formula, rule.params))])
        event_types: set[str] = set()
        event_horizon = 0
        edges: dict[str, set[int]] = {}
        for ref in refs:
            days.update(ref.event_windows)
            horizon = max([horizon, *ref.event_windows.values()])
            for source, name in ref.fields:
                if source is Source.FEATURE and name.startswith(("count.", "turnover_fen.")):
                    days_back = window_days(name.rpartition(".")[2])
                    if days_back is not None:
                        horizon = max(horizon, days_back * 86_400)
                        if name.startswith("count."):
                            days.add(name[6:].rpartition(".")[0])
                        else:
                            days.update(self.context.trade_types)
        for rule in [*tag_rules, *segments]:
            nodes = [rule.node] if getattr(rule, "node", None) is not None else []
            nodes += [n for _, n in getattr(rule, "bands", ())]
            for node in nodes:
                for n in walk(node):
                    if not isinstance(n, EventCount | EventAbsence):
                        continue
                    if n.filter is None and n.window_seconds % 86_400 == 0:
                        # Rolling whole days: the buckets, and the retained events of the window's first day only.
                        edges.setdefault(n.event_type, set()).add(n.window_seconds)
                    else:
                        event_types.add(n.event_type)
                        event_horizon = max(event_horizon, n.window_seconds)
        return days, horizon, event_types, event_horizon, edges

    def _edge_events(
        self,
        conn: Connection,
        ids: Sequence[str] | None,
        now: int,
        edges: dict[str, set[int]],
        exact: set[str],
        exact_horizon: int,
        events: dict[str, list[Any]],
    ) -> dict[str, list[Any]]:
        """``events`` with the retained events of each whole-day window's first, partial day (what a rolling
        whole-day window adds to its buckets): one narrow range per window, not the whole window; the ranges of
        different windows are different days, and those ``exact`` already loaded are skipped."""
        out = {pid: list(rows) for pid, rows in events.items()}
        for event_type, windows in sorted(edges.items()):
            for seconds in sorted(windows):
                start = now - seconds * 1_000_000
                if event_type in exact and seconds <= exact_horizon:
                    continue  # inside what the exact conditions loaded
                end = self.clock.start_of(self.clock.first_of_window(now, seconds))
                if event_type in exact:
                    end = min(end, now - exact_horizon * 1_000_000)
                for pid, rows in self.store.load_events(conn, ids, [event_type], start, end).items():
                    out.setdefault(pid, []).extend(rows)
        return out

    # -- loading -------------------------------------------------------------------------------------
    def people(
        self,
        conn: Connection,
        pids: Sequence[str] | None,
        now: int,
        *,
        segments: Sequence[SegmentRule] | None = None,
        all_day_types: bool = False,
        with_tags: bool = True,
        rows: dict[str, Any] | None = None,
        customers: dict[str, str] | None = None,
        preloaded: tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None = None,
        lean_tags: bool = False,
        hot: Any = None,
        narrow: dict[str, Any] | None = None,
    ) -> dict[str, Person]:
        """Persons ready for evaluation, bulk-loaded (one query per table and chunk of ids), loading only
        what the definitions evaluated read. ``preloaded``: (days, tags, memberships) read already (one
        person's profile, ``store.load_bundle``; retained events are then not read). ``lean_tags``: tag rows
        with only what evaluation reads (``store.tag_rows``: the log consumer). ``hot``: the consumer's
        ``HotPersons``, whose tag and membership rows are used for the persons it holds (only the others read).
        ``narrow``: ``tag_rules`` and ``lifecycle`` for ``needs`` (the time sweep: only what its plan evaluates)."""
        segments = list(segments) if segments is not None else list(self.segments.values())
        day_types, horizon, event_types, event_horizon, edges = self.needs(segments, with_tags, **(narrow or {}))
        if all_day_types:
            horizon = max(horizon, 90 * 86_400)
        first_day = self.clock.first_of_window(now, horizon or 86_400)
        store = self.store
        reads = [r for s in segments if s.refs for r in [s.refs]]
        reads_tags = with_tags or any(
            r.tags or any(src in (Source.TAG, Source.SCORE) for src, _ in r.fields) for r in reads
        )
        reads_features = (
            with_tags or all_day_types or any(any(src is Source.FEATURE for src, _ in r.fields) for r in reads)
        )
        if rows is None:
            columns = ["attributes", "sealed_attributes", "lifecycle_stage", "lifecycle_since_us", "created_us"]
            columns = [*columns, "features"] if reads_features else columns
            if pids is None:  # everyone: one scan per table, no IN lists
                rows = {r.profile_id: r for r in store.scan_persons(conn, ["profile_id", *columns])}
            else:
                rows = store.load_persons(conn, pids, columns)
        ids = list(rows) if pids is not None else None
        sums: dict[tuple[str, int, int], dict[str, int]] | None = None
        if preloaded is not None:
            days, tags, members = preloaded
            event_types = set()
        elif all_day_types:
            days = store.load_days(conn, ids, None, first_day)
        elif not with_tags:
            # A recompute: window totals come aggregated from the database, not as day rows.
            days, sums = {}, {}
            for event_type, window_seconds, column in self._windows(segments):
                first = self.clock.first_of_window(now, window_seconds)
                if (event_type, first, column) not in sums:
                    name = "n" if column == 0 else "amount_fen"
                    sums[(event_type, first, column)] = store.window_sums(conn, ids, event_type, first, name)
        elif hot is not None and ids is not None and day_types:
            # The consumer: buckets of the persons its cache holds from there (this batch's deltas added), the others
            # read; those are kept for the cache (``last_days``).
            days, ask = hot.day_rows(ids, day_types, first_day)
            loaded = store.load_days(conn, ask, day_types, first_day) if ask else {}
            days.update(loaded)
            self._local.day_rows = {pid: loaded.get(pid, {}) for pid in ask}
        else:
            days = store.load_days(conn, ids, day_types, first_day) if day_types else {}
        events = store.load_events(conn, ids, event_types, now - event_horizon * 1_000_000) if event_types else {}
        if edges and preloaded is None:
            events = self._edge_events(conn, ids, now, edges, event_types, event_horizon, events)
        if preloaded is None:
            if not reads_tags:
                tags = {}
            elif lean_tags and ids is not None:
                if hot is not None:
                    tags, ask = hot.tag_rows(ids)
                    if ask:
                        tags.update(store.tag_rows(conn, ask))
                else:
                    tags = store.tag_rows(conn, ids)
            else:
                tags = store.load_tags(conn, ids)
            wanted_segments = None
            if not with_tags:
                wanted_segments = sorted({s.segment_id for s in segments} | {d for r in reads for d in r.segments})
            if hot is not None and ids is not None and wanted_segments is None:
                members, ask = hot.member_rows(ids)
                if ask:
                    members.update(store.load_members(conn, ask))
            else:
                members = store.load_members(conn, ids, wanted_segments)
        if customers is None:
            customers = {}
            if with_tags:
                customers = store.customers_of(conn, ids) if ids is not None else store.all_customers(conn)
        out: dict[str, Person] = {}
        trade_types = self.context.trade_types
        # The log consumer's and the time sweep's persons (evaluated for the few rules their event types can change,
        # then dropped): features decoded as they are read.
        consumer, lazy = hot is not None or lean_tags, LazyFeatures
        clock, fund_params = self.clock, self.fund_params
        for pid, row in rows.items():
            attributes = decode_map(row.attributes)
            if row.sealed_attributes is not None:
                attributes.update(decode_map(json.loads(self.sealer.open(row.sealed_attributes, pid.encode()))))
            person = Person(
                pid,
                attributes=attributes,
                features=(lazy(row.features) if consumer else decoded_features(row.features)) if reads_features else {},
                days=days.get(pid, {}),
                segments={s for s, m in members.get(pid, {}).items() if m.is_member},
                has_customer=pid in customers,
                lifecycle_stage=row.lifecycle_stage,
                lifecycle_since_us=row.lifecycle_since_us,
                clock=clock,
                now=now,
                trade_types=trade_types,
                fund_params=fund_params,
                created_us=row.created_us,
            )
            if sums is not None:
                person.sums = {key: totals.get(pid, 0) for key, totals in sums.items()}
            stored = events.get(pid)
            if stored:
                person.events = [StoredEvent.of(e) for e in stored]
            for name, tag in tags.get(pid, {}).items():
                if tag.expires_us is not None and tag.expires_us <= now:
                    continue
                value = decode(tag.tag_value)
                person.tags[name] = value
                if tag.source == "MODEL":
                    person.scores[name] = value
            out[pid] = person
        # Per thread: RPC reads and the consumer's writes evaluate concurrently.
        self._local.tag_rows, self._local.member_rows = tags, members
        return out

    def profile_first_day(self, now: int) -> int:
        """The first day bucket a profile's features read (every window in use, and at least 90 days)."""
        # Cached for the definitions in force, held (not their ids: a freed dict's id may be the next one's).
        cached = getattr(self, "_horizon", None)
        if cached is None or cached[0] is not self.tags or cached[1] is not self.segments:
            cached = self._horizon = (self.tags, self.segments, self.needs()[1])
        return self.clock.first_of_window(now, max(cached[2], 90 * 86_400))

    def _windows(self, segments: Sequence[SegmentRule]) -> set[tuple[str, int, int]]:
        """(event_type, window_seconds, column) of every day-bucket window the segments read."""
        out: set[tuple[str, int, int]] = set()
        for rule in segments:
            if rule.node is None:
                continue
            for n in walk(rule.node):
                if isinstance(n, EventCount | EventAbsence) and n.filter is None and n.window_seconds % 86_400 == 0:
                    out.add((n.event_type, n.window_seconds, 0))
            for source, name in rule.refs.fields if rule.refs else ():
                head, _, window = name.rpartition(".")
                span_days = window_days(window)
                if source is not Source.FEATURE or span_days is None:
                    continue
                if head.startswith("count."):
                    out.add((head[6:], span_days * 86_400, 0))
                elif head == "turnover_fen":
                    out.update((t, span_days * 86_400, 1) for t in self.context.trade_types)
        return out


__all__ = ["Loading"]
