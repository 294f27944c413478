"""svc_profile's erasures reach svc_modeling's stored datasets.

svc_profile's ``DeleteProfile`` publishes a signed ``$profile_erased`` event to svc_collect's log. svc_modeling
follows the log for that event type only (``follow_erasures``) and removes the erased customers' rows from every
stored dataset that names its customer id column — imported, uploaded, fused and built datasets, score tables
and intervention plans — storing each such dataset's other rows again in place (same id, new digest). The
follower's cursor is stored after the batch's datasets are rewritten, so a crash repeats the batch (removing rows
that are gone already removes nothing). Only events svc_profile signed act: any producer may ingest an event of
that name (svc_collect refuses unsigned ones, a log written before it did may hold some).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from svc_common.logclient import CollectClient, LogFollower
from svc_common.pb.qiming.common.v1 import event_pb2
from svc_common.peers import peer_address
from svc_common.protection import KeyProvider, SystemEventSigner, is_signed
from svc_modeling.catalog import DatasetCatalog
from svc_modeling.config import ModelingSettings
from svc_modeling.snapshot import PROFILE_ERASED
from svc_modeling.store import SqlModelingStore

log = logging.getLogger("qiming.modeling")
CONSUMER_NAME = "modeling-erasures"
"""The follower's name at svc_collect and in ``modeling_log_cursor``."""


class DatasetEraser:
    """Applies batches of ``$profile_erased`` events to the stored datasets (synchronous: run on a thread)."""

    def __init__(self, store: SqlModelingStore, catalog: DatasetCatalog, keys: Callable[[], KeyProvider]) -> None:
        self._store = store
        self._catalog = catalog
        self._keys = keys
        self._signer: SystemEventSigner | None = None
        self.skipped = 0
        """Erasure events not acted on since start: unsigned, or signed with another keyring."""
        self.rows_removed = 0
        """Dataset rows removed since start."""

    def open(self) -> None:
        """Read the keyring (at start: a keyring that cannot be read fails the start, not the first erasure)."""
        if self._signer is None:
            self._signer = SystemEventSigner(self._keys())

    def load_cursor(self) -> str:
        return self._store.load_log_cursor(CONSUMER_NAME)

    def handle(self, events: list[event_pb2.Event], cursor: str) -> int:
        """Erase the customers of the batch's verified erasures from every keyed dataset, then store ``cursor``;
        the number of dataset rows removed."""
        customers = self._verified_customers(events)
        removed = self.erase(customers) if customers else 0
        self._store.save_log_cursor(CONSUMER_NAME, cursor)
        return removed

    def erase(self, customers: set[str]) -> int:
        removed = 0
        for row in self._store.keyed_datasets():
            count = self._catalog.erase_customers(row, customers)
            if count:
                removed += count
                # The dataset and the count only: which customer was erased is the log's and svc_profile's record.
                log.info(
                    "erased %d rows of dataset %s (%s): svc_profile erased %d customer(s)",
                    count,
                    row["dataset_id"],
                    row["name"],
                    len(customers),
                    extra={"dataset_id": row["dataset_id"], "rows_removed": count},
                )
        self.rows_removed += removed
        return removed

    def _verified_customers(self, events: list[Any]) -> set[str]:
        customers = set()
        for event in events:
            if event.event_type != PROFILE_ERASED or not event.user_id:
                continue
            self.open()
            assert self._signer is not None
            if not self._signer.verify(event):
                self.skipped += 1
                why = "its $signature does not verify with this keyring" if is_signed(event) else "it is unsigned"
                log.warning(
                    "erasure event %s skipped: %s; only svc_profile's signed erasures act (docs/modeling.md)",
                    event.event_id,
                    why,
                    extra={"event_id": event.event_id, "event_type": event.event_type},
                )
                continue
            customers.add(event.user_id)
        return customers


class ErasureFollowing:
    """The log follower that feeds a :class:`DatasetEraser`, started with the service (``follow_erasures``)."""

    def __init__(self, settings: ModelingSettings, eraser: DatasetEraser) -> None:
        self.settings = settings
        self.eraser = eraser
        self.client: CollectClient | None = None
        self.follower: LogFollower | None = None

    async def start(self) -> None:
        if not self.settings.follow_erasures:
            return
        address = peer_address("collect", self.settings.collect_address)
        if not address:
            log.warning(
                "collect_address is not set and this process does not serve svc_collect: svc_profile's erasures do "
                "not reach svc_modeling's datasets (an erased customer's rows stay in them); set [modeling] "
                "collect_address (QIMING_MODELING_COLLECT_ADDRESS), or follow_erasures = false to say so",
                extra={"setting": "collect_address"},
            )
            return
        await asyncio.to_thread(self.eraser.open)
        # Made here, on the server's event loop (a gRPC aio channel belongs to the loop it was made on).
        self.client = CollectClient(
            address,
            keepalive_time_seconds=self.settings.grpc_keepalive_time_seconds,
            keepalive_timeout_seconds=self.settings.grpc_keepalive_timeout_seconds,
        )

        async def handle(events: list[Any], cursor: str) -> None:
            await asyncio.to_thread(self.eraser.handle, events, cursor)

        self.follower = LogFollower(
            self.client,
            name=CONSUMER_NAME,
            load_cursor=lambda: asyncio.to_thread(self.eraser.load_cursor),
            handle=handle,
            event_types=(PROFILE_ERASED,),
            batch_size=self.settings.erasure_batch_events,
        )
        self.follower.start()

    async def stop(self) -> None:
        if self.follower is not None:
            await self.follower.stop()
            self.follower = None
        if self.client is not None:
            await self.client.close()
            self.client = None


__all__ = ["CONSUMER_NAME", "DatasetEraser", "ErasureFollowing"]
