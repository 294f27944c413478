"""What every part of svc_profile shares: the store, the engine, id rules, sealing, and the one writer lock.

Writes that change identities, features, tags or memberships hold ``write_lock`` (one process writes the
profile tables; scale-out shards persons over processes), so a merge never races a batch of the consumer.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Connection

from svc_common.db import Database
from svc_common.errors import NotFound
from svc_common.protection import KeyProvider, Sealer, SystemEventSigner
from svc_profile.config import ProfileSettings
from svc_profile.engine import Engine
from svc_profile.features import merge_features
from svc_profile.hot import HotPersons
from svc_profile.identity import IdKey, IdPolicy
from svc_profile.model import decode_map, encode
from svc_profile.pipeline import Pipeline
from svc_profile.store._sql import ProfileStore
from svc_profile.store._tagsql import TAG_UPDATES


class Core:
    def __init__(self, settings: ProfileSettings, database: Database, tables: dict[str, Any], keys: KeyProvider):
        self.settings = settings
        self.database = database
        self.sealer = Sealer(keys)
        self.store = ProfileStore(database, tables, self.sealer)
        self.policy = IdPolicy(settings, keys)
        self.signer = SystemEventSigner(keys)
        """Signs the system events this service publishes ($profile_erased, $segment_*)."""
        self.engine = Engine(settings, self.store, self.sealer)
        self.write_lock = threading.RLock()
        self.hot = HotPersons(settings.hot_persons, settings.hot_day_buckets)
        self.pipeline = Pipeline(
            database,
            stage=settings.consumer_stage_writes,
            switch_interval_micros=settings.consumer_switch_interval_micros,
        )
        """The log consumer's commits, on a thread of their own (``svc_profile.pipeline``)."""
        self._sensitive = frozenset(settings.sensitive_attributes)
        self.sensitive_tags: frozenset[str] = frozenset()
        """Tags defined at sensitivity level 3 or 4: their values are masked on read (Definitions.load)."""
        self.on_commit: list[Any] = []
        """Called (no arguments) after a write transaction that may have queued outbox events."""

    @contextmanager
    def writing(self, keep_hot: bool = False) -> Iterator[Connection]:
        """The writer's transaction. Every writer but the log consumer (``keep_hot``) empties the consumer's
        cache of hot persons: what it writes may change them. A writer takes its time (``now_us()``) inside: one taken
        before may be as old as the recompute or sweep it waited behind, whose work it could then undo."""
        with self.write_lock:
            self.pipeline.wait()  # the log consumer's commit in flight (a failure is the consumer's to raise)
            if not keep_hot or self.pipeline.failed:
                self.hot.clear()
            with self.database.connection(write=True) as conn:
                yield conn
        for notify in self.on_commit:
            notify()

    def is_sensitive(self, name: str) -> bool:
        return name.endswith("_fen") or "_fen." in name or name in self._sensitive

    # -- attributes at rest ------------------------------------------------------------------------------
    def split_attributes(self, pid: str, values: dict[str, list[Any]]) -> tuple[dict[str, list[Any]], bytes | None]:
        """(clear part, sealed part) of a profile's encoded attributes: level 3 goes under SM4-GCM."""
        clear = {k: v for k, v in values.items() if not self.is_sensitive(k)}
        secret = {k: v for k, v in values.items() if self.is_sensitive(k)}
        sealed = self.sealer.seal(json.dumps(secret).encode(), pid.encode()) if secret else None
        return clear, sealed

    def all_attributes(self, pid: str, row: Any) -> dict[str, list[Any]]:
        """The encoded attributes of a person row, sealed ones opened."""
        values = dict(row.attributes)
        if row.sealed_attributes is not None:
            values.update(json.loads(self.sealer.open(row.sealed_attributes, pid.encode())))
        return values

    # -- lookups ---------------------------------------------------------------------------------------------
    def find(self, conn: Connection, key: IdKey, field: str = "user") -> str:
        pid = self.store.lookup_ids(conn, [key]).get(key)
        if pid is None:
            raise NotFound(f"no profile has the id given in {field}", reason="PROFILE_NOT_FOUND")
        return pid

    # -- merges -------------------------------------------------------------------------------------------
    def merge(self, conn: Connection, loser: str, winner: str, now: int) -> None:
        """Fold ``loser`` into ``winner``: ids, events, day counts, features, attributes, tags; the loser's
        memberships end (``$segment_exited``), the winner enters the static lists the loser was on and is
        re-evaluated by the caller for the others."""
        store = self.store
        rows = store.load_persons(conn, [loser, winner])
        if loser not in rows or winner not in rows:
            return
        lose, win = rows[loser], rows[winner]
        attributes = {**self.all_attributes(loser, lose), **self.all_attributes(winner, win)}
        clear, sealed = self.split_attributes(winner, attributes)
        store.update_persons(
            conn,
            [
                {
                    "profile_id": winner,
                    "features": merge_features(win.features, lose.features),
                    "attributes": clear,
                    "sealed_attributes": sealed,
                    "updated_us": now,
                }
            ],
            ("features", "attributes", "sealed_attributes", "updated_us"),
        )
        # The loser's memberships end first, while it still holds its ids: its $segment_exited names the
        # device or customer its $segment_entered named.
        members = store.load_members(conn, [loser])
        changes = [(loser, sid, False) for sid, m in members.get(loser, {}).items() if m.is_member]
        self.engine.write_changes(conn, changes, now, "event", {}, members)
        store.move_rows(conn, loser, winner)
        # A static list has no condition to bring the winner back in: it enters each list the loser was on (review
        # 2026-12-07: a prospect's device on an uplift list left it at signup, and the customer was not on it).
        static = {sid for sid, rule in self.engine.segments.items() if rule.node is None}
        was_on = {sid for _, sid, _ in changes if sid in static}
        if was_on:
            held = store.load_members(conn, [winner])
            mine = held.get(winner, {})
            entering = [(winner, sid, True) for sid in sorted(was_on) if not (sid in mine and mine[sid].is_member)]
            self.engine.write_changes(conn, entering, now, "static", {}, held)
        tags = store.load_tags(conn, [loser, winner])
        theirs = tags.get(winner, {})

        def live(row: Any) -> bool:
            return row.expires_us is None or row.expires_us > now

        # A written tag (another service's, an import) carries over unless the winner has a live value of its own.
        kept = [
            {
                **{c: getattr(r, c) for c in ("name", *TAG_UPDATES) if c != "sealed_value"},  # re-sealed below
                "profile_id": winner,
            }
            for name, r in tags.get(loser, {}).items()
            if r.source != "RULE" and live(r) and (name not in theirs or not live(theirs[name]))
        ]
        store.upsert_tags(conn, kept, sensitive=self.sensitive_tags)  # sealed again, bound to the winner
        store.delete_person(conn, loser)


def attribute_values(values: dict[str, object]) -> dict[str, list[Any]]:
    return {k: encode(v) for k, v in values.items()}


__all__ = ["Core", "attribute_values", "decode_map"]
