"""Erasure in svc_modeling's store: the datasets keyed by customer, one dataset's rows replaced without the erased
customers, and the cursor of the log follower that reads svc_profile's erasures (``svc_modeling.erasure``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Table, delete, insert, select, update


class ErasureRows:
    """Mixed into :class:`SqlModelingStore` (which sets the tables, the database and ``_put_blob``)."""

    _db: Any
    _blob: Table
    _dataset: Table
    _log_cursor: Table

    def keyed_datasets(self) -> list[dict[str, Any]]:
        """Every dataset that names its customer id column (imported, uploaded, fused, built, scores and plans)."""
        c = self._dataset.c
        query = select(self._dataset).where(c.customer_id_column != "").order_by(c.created_at, c.dataset_id)
        with self._db.connection() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def replace_dataset_rows(
        self, dataset_id: str, old_blob_id: str, data: bytes, row_count: int, content_digest: str
    ) -> bool:
        """Store ``data`` as the dataset's rows in place of the blob ``old_blob_id``, which is deleted. False (nothing
        written) when the dataset was deleted or its rows replaced meanwhile (another replica erased them first)."""
        c = self._dataset.c
        with self._db.connection(write=True) as conn:
            blob_id = self._put_blob(conn, data)  # type: ignore[attr-defined]
            replaced = conn.execute(
                update(self._dataset)
                .where(c.dataset_id == dataset_id, c.blob_id == old_blob_id)
                .values(blob_id=blob_id, row_count=row_count, content_digest=content_digest)
            ).rowcount
            if replaced != 1:
                conn.execute(delete(self._blob).where(self._blob.c.blob_id == blob_id))
                return False
            conn.execute(delete(self._blob).where(self._blob.c.blob_id == old_blob_id))
        return True

    def load_log_cursor(self, consumer_name: str) -> str:
        c = self._log_cursor.c
        with self._db.connection() as conn:
            found = conn.execute(select(c.log_cursor).where(c.consumer_name == consumer_name)).scalar_one_or_none()
        return found or ""

    def save_log_cursor(self, consumer_name: str, cursor: str) -> None:
        c = self._log_cursor.c
        now = dt.datetime.now(dt.UTC)
        with self._db.connection(write=True) as conn:
            stored = conn.execute(
                update(self._log_cursor)
                .where(c.consumer_name == consumer_name)
                .values(log_cursor=cursor, updated_at=now)
            ).rowcount
            if stored == 0:
                conn.execute(
                    insert(self._log_cursor).values(consumer_name=consumer_name, log_cursor=cursor, updated_at=now)
                )
