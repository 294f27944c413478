"""The log consumer: one transaction per batch of svc_collect's log (docs/profile.md, "Consuming the log").

Per batch: resolve every event's person (new profiles, links, merges), fold the events into each touched
person's features in memory, write them back with one bulk statement per table, re-evaluate lifecycle,
tags and the segments the batch can affect for the touched persons, queue membership changes in the
outbox, and store the batch's cursor — all in one transaction. A crash anywhere rolls the batch back and
the follower resumes from the stored cursor, so features are exact after any replay.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace

from svc_common.pb.qiming.common.v1 import event_pb2
from svc_common.telemetry import batch_span
from svc_profile.core import Core
from svc_profile.features import FeatureUpdater
from svc_profile.hot import PersonRow, settled
from svc_profile.identity import BatchResolver, fold_lifecycle, person_row
from svc_profile.model import document_json, now_us
from svc_profile.retained import SKIPPED_EVENTS

log = logging.getLogger("qiming.profile")
LOG_BATCH_SPAN = "profile log batch"
_tracer = trace.get_tracer("qiming.profile")


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused for one batch. A batch allocates some 10^5 objects that reference
    counting frees; each of the dozens of collections they would trigger walks every tracked object of the
    process (measured: ~10-25 % of a batch). Cycles made meanwhile are collected once the batch is done."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class BatchConsumer:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.resolver = BatchResolver(core.settings, core.policy, core.store)
        self.updater = FeatureUpdater(core.settings)
        self.name = core.settings.consumer_name
        self.refused_merges = 0
        self.fail_after_features = False
        """Tests: raise after the features are written, before the cursor (a crash in mid-batch)."""

    def load_cursor(self) -> str:
        """The stored cursor, once the commit in flight is done; a failed commit's batches are replayed from it."""
        with self.core.write_lock:
            self._settle()
        with self.core.database.connection() as conn:
            return self.core.store.load_cursor(conn, self.name)

    def handle(self, events: list[event_pb2.Event], cursor: str) -> dict[str, Any]:
        """Apply one batch and store ``cursor`` with it, committed when this returns (synchronous: run it on a
        worker thread)."""
        counts = self.submit(events, cursor)
        self.drain()
        return counts

    def submit(self, events: list[event_pb2.Event], cursor: str) -> dict[str, Any]:
        """``handle`` whose commit runs on the pipeline's thread (``svc_profile.pipeline``) while the caller hands
        over the next batch; that batch, ``drain`` or ``load_cursor`` raises a failed commit's error."""
        # One span (a trace) per batch: its statements, its commit on the pipeline's thread and its log lines share
        # it, instead of a trace per statement.
        span = batch_span(_tracer, LOG_BATCH_SPAN, {"qiming.events": len(events)})
        with span, _collector_paused():
            return self._handle(events, cursor)  # its objects are freed before the collector runs again

    def drain(self) -> None:
        """Wait for the commit in flight; raise its failure (the cache of hot persons emptied)."""
        with self.core.write_lock:
            failure = self._settle()
        if failure is not None:
            raise failure

    def _settle(self) -> BaseException | None:
        pipeline = self.core.pipeline
        pipeline.wait()
        failure = pipeline.take_failure()
        if failure is not None:
            self.core.hot.clear()  # it holds what the failed batches would have written
        return failure

    def _handle(self, events: list[event_pb2.Event], cursor: str) -> dict[str, Any]:
        core, store, hot = self.core, self.core.store, self.core.hot
        mine = [e for e in events if not e.event_type.startswith(SKIPPED_EVENTS)]  # not the customer's behaviour
        # The writer lock is held until the cache holds this batch's rows. The cache takes them before the commit
        # (done on the pipeline's thread): every other writer waits for that commit (``Core.writing``), and a failed
        # commit empties the cache and fails the next batch before it writes anything (``BatchConnection.now``).
        with core.write_lock:
            # The time once the writer is ours: a batch that waited behind a sweep's or recompute's transaction
            # evaluated at its time before the wait, and could undo what that transaction did at a later time.
            now = now_us()
            conn = core.pipeline.begin()
            try:
                if core.pipeline.failed:
                    self.drain()
                res = self.resolver.resolve(conn, mine, now, hot)
                store.insert_persons(conn, [person_row(pid, now) for pid in res.created])
                store.insert_links(conn, res.links)
                if res.gained:  # a profile that now has a customer number: its queued events too
                    store.rekey_outbox(conn, {p: res.customers[p] for p in res.gained if res.customers.get(p)})
                entered = set(res.created)  # persons whose first stage is an entry (from UNSPECIFIED)
                # A customer's own first_seen_at before a merge brings a device's browsing in: where their account dates
                # from if the batch is the first to give them first_customer_event_at (seed_customer_since).
                winners = sorted({w for _, w in res.merges} - entered)
                seen_before = {
                    p: item[1] if (item := r.features.get("first_seen_at")) else None
                    for p, r in (store.load_persons(conn, winners).items() if winners else ())
                }
                for loser, winner in res.merges:
                    if fold_lifecycle(conn, store, loser, winner):  # a new winner takes the loser's stage and story
                        entered.discard(winner)
                    core.merge(conn, loser, winner, now)
                touched = sorted({p for p in res.pids if p})
                merged = {winner for _, winner in res.merges}
                rows, missing = hot.person_rows(p for p in touched if p not in merged)
                loaded = store.load_persons(conn, missing + sorted(merged & set(touched)))
                for p, r in loaded.items():
                    row = rows[p] = PersonRow.of(r)
                    row.features = settled(row.features)  # as the cache keeps them (the fold folds into them)
                docs = {p: r.features for p, r in rows.items()}
                deltas, event_rows = self.updater.apply(docs, res.pids, mine, res.customers)
                if self.updater.first_customer or res.gained_us:  # a person's first event as a customer: rare
                    new_customers = {p for p in (*res.created, *res.gained) if res.customers.get(p)}
                    self.updater.seed_customer_since(rows, new_customers, seen_before, res.gained_us)
                store.write_features(conn, [(p, document_json(r.features), now) for p, r in rows.items()])
                for row in rows.values():
                    row.updated_us = now
                store.add_days(conn, deltas)
                if merged:
                    hot.forget_merged(merged)  # a merge moved the loser's buckets and kept tags to them
                hot.add_days(deltas)
                store.insert_events(conn, event_rows)
                if self.fail_after_features:
                    raise RuntimeError("injected crash in the middle of a batch")
                triggers, person_types = self.updater.triggers, self.updater.types
                fresh = set(res.created) | merged | res.gained  # evaluated in full: new, merged, now a customer
                counts = core.engine.refresh(
                    conn,
                    touched,
                    now,
                    cause="event",
                    triggers=triggers,
                    person_types=person_types,
                    fresh=fresh,
                    created=entered,
                    rows=rows,
                    customers=res.customers,  # the customer of every touched person, known from resolving
                    hot=hot,
                )
                self.updater.forget()  # freed now, not walked by the collection after the batch
                evaluated = core.engine.last_people()
                rules = core.engine.last_rows()  # their tag and membership rows, this batch's writes applied
                days = core.engine.last_days()  # the buckets read for those the cache did not hold
                for pid, person in evaluated.items():  # lifecycle as the refresh left it
                    row = rows.get(pid)
                    if row is not None:
                        row.lifecycle_stage = person.lifecycle_stage
                        row.lifecycle_since_us = person.lifecycle_since_us
                store.save_cursor(conn, self.name, cursor, len(events), now)
                conn.commit_later(self._committed)
            except BaseException as exc:
                conn.abort(exc)
                hot.clear()  # rolled back: what the cache holds may be what this batch changed
                raise
            if res.merges:
                hot.clear()  # ids and rows moved between profiles
            else:
                tags, members = rules if rules is not None else (None, None)
                owner = res.owner  # only the ids the cache did not hold are new to it
                fresh = {k: owner[k] for k in res.looked_up if k in owner} if res.looked_up is not None else owner
                hot.store(fresh, res.customers, rows, evaluated, tags, members, days)
        if res.refused:
            self.refused_merges += res.refused
        counts.update(events=len(events), created=len(res.created), merges=len(res.merges), refused=res.refused)
        return counts

    def _committed(self) -> None:
        for notify in self.core.on_commit:
            notify()
