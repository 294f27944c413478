"""The hot persons of the log consumer, kept in memory by the single writer (docs/profile.md, "Consuming
the log"): which profile holds an id, each profile's customer id, and its person row (features, attributes,
lifecycle). A batch reads only the persons it has not seen recently.

Valid because one process writes the profile tables and every write holds ``Core.write_lock``: a write
other than a log batch (RPC writes, merges by RPC, recompute, sweep) clears the cache when it takes the
lock; a batch that fails, or that merged profiles, clears it too; a batch that commits stores what it wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

IdKey = tuple[int, str]
_NONE = ""
_FIELDS = (
    "profile_id",
    "created_us",
    "updated_us",
    "attributes",
    "sealed_attributes",
    "features",
    "lifecycle_stage",
    "lifecycle_since_us",
)


class HotPersons:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.owner: dict[IdKey, str] = {}
        self.customer: dict[str, str] = {}
        """Profile → its customer id; "" when it has none."""
        self.rows: dict[str, tuple[Any, ...]] = {}
        """Person rows as tuples of plain values (JSON documents as text): objects the garbage collector does
        not track, so a large cache does not make every collection of the process slower."""
        self.hits = self.misses = 0

    def clear(self) -> None:
        self.owner.clear()
        self.customer.clear()
        self.rows.clear()

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

    def person_rows(self, pids: Iterable[str]) -> tuple[dict[str, SimpleNamespace], list[str]]:
        found, missing = {}, []
        rows = self.rows
        loads = json.loads
        for pid in pids:
            row = rows.get(pid)
            if row is None:
                missing.append(pid)
            else:
                values = dict(zip(_FIELDS, row, strict=True))
                values["attributes"], values["features"] = loads(values["attributes"]), loads(values["features"])
                found[pid] = SimpleNamespace(**values)
        self.hits += len(found)
        self.misses += len(missing)
        return found, missing

    # -- after a committed batch -----------------------------------------------------------------------
    def store(
        self,
        owner: dict[IdKey, str],
        customers: dict[str, str],
        rows: dict[str, SimpleNamespace],
    ) -> None:
        """What a committed batch read and wrote: every id it resolved, the customer (or none) of every
        person it touched, their rows as written."""
        if self.limit == 0:
            return
        if len(self.rows) + len(rows) > self.limit or len(self.owner) + len(owner) > 4 * self.limit:
            self.clear()  # the simplest bound: start over (a batch refills its own persons)
        self.owner.update(owner)
        dumps = json.dumps
        for pid, row in rows.items():
            self.customer[pid] = customers.get(pid) or _NONE
            values = {**vars(row), "attributes": dumps(row.attributes), "features": dumps(row.features)}
            self.rows[pid] = tuple(values[f] for f in _FIELDS)


def as_row(row: Any) -> SimpleNamespace:
    """A person row from the database as a mutable namespace (what the cache keeps)."""
    return SimpleNamespace(**row._mapping)


__all__ = ["HotPersons", "as_row"]
