"""The dataset catalog: store, describe, load (cached), preview, page through and delete datasets.

A dataset's rows change once stored only when customers in them are erased (``erase_customers``: stored again
under a new blob), so decoded ones are kept in a small LRU cache by dataset and blob.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
from google.protobuf import json_format

from svc_common.errors import FieldViolation, InvalidArgument, NotFound
from svc_common.paging import PAGE_BYTES
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2
from svc_common.protection import Sealer
from svc_common.timestamps import MAX_SECONDS, MIN_SECONDS
from svc_modeling import frame as frames
from svc_modeling.frame import STRING_TYPES, VT, Frame, customer_text
from svc_modeling.in_use import refuse_if_in_use
from svc_modeling.store import SqlModelingStore, utcnow

#: Rows built at a time while a page fills (the most built and dropped when a page ends early).
_PAGE_CHUNK_ROWS = 64


def _column_json(column: modeling_pb2.Column) -> dict:
    return json_format.MessageToDict(column, preserving_proto_field_name=True)


def dataset_message(row: Mapping) -> modeling_pb2.Dataset:
    dataset = modeling_pb2.Dataset(
        dataset_id=row["dataset_id"],
        name=row["name"],
        description=row["description"],
        row_count=row["row_count"],
        origin=row["origin"],
        lineage=row["lineage"],
        customer_id_column=row["customer_id_column"],
        content_digest=row["content_digest"],
    )
    for spec in row["column_specs"]:
        json_format.ParseDict(spec, dataset.columns.add())
    dataset.created_at.FromDatetime(row["created_at"])
    return dataset


class DatasetCatalog:
    def __init__(self, store: SqlModelingStore, cache_entries: int, sealer: Sealer | None = None) -> None:
        self._store = store
        self._sealer = sealer  # level 3+ columns are sealed at rest with it (none: kept as they are, tests only)
        self._cache: OrderedDict[str, tuple[str, Frame]] = OrderedDict()
        """dataset id → (the blob its rows were decoded from, the rows)."""
        self._cache_entries = cache_entries
        self._lock = threading.Lock()

    def create(
        self,
        frame: Frame,
        *,
        held_by_job: str = "",
        name: str,
        origin: str,
        description: str = "",
        lineage: Mapping[str, str] | None = None,
        customer_id_column: str = "",
        created_by: str = "",
    ) -> modeling_pb2.Dataset:
        dataset_id = str(uuid.uuid4())
        data, content_digest = self._at_rest(frame, dataset_id)
        record = {
            "dataset_id": dataset_id,
            "name": name,
            "description": description,
            "column_specs": [_column_json(c) for c in frame.columns],
            "row_count": len(frame.data),
            "origin": origin,
            "lineage": dict(lineage or {}),
            "customer_id_column": customer_id_column,
            "content_digest": content_digest,
            "created_at": utcnow(),
            "created_by": created_by,
        }
        blob_id = self._store.add_dataset(record, data, held_by_job)
        # Cache what a later load would decode (same dtypes, None for missing text).
        self._remember(dataset_id, blob_id, frames.decode(data, frame.columns, self._sealer, dataset_id))
        return dataset_message(record)

    def _at_rest(self, frame: Frame, dataset_id: str) -> tuple[bytes, str]:
        """The dataset's stored form (level 3+ columns sealed) and the digest of its rows in clear (the same rows,
        the same digest)."""
        data = frames.encode(frame)
        content_digest = frames.digest(data)
        if self._sealer is not None and any(frames.is_sensitive(c) for c in frame.columns):
            data = frames.encode(frame, self._sealer, dataset_id)
        return data, content_digest

    def _row(self, dataset_id: str) -> dict:
        row = self._store.get_dataset(dataset_id) if dataset_id else None
        if row is None:
            raise NotFound(f"no dataset {dataset_id!r}", metadata={"dataset_id": dataset_id})
        return row

    def get(self, dataset_id: str) -> modeling_pb2.Dataset:
        return dataset_message(self._row(dataset_id))

    def load_keyed(self, dataset_id: str, features: Sequence[str], purpose: str) -> tuple[modeling_pb2.Dataset, Frame]:
        """A dataset to score or plan for: it must name its customer id column and hold every model feature."""
        dataset, frame = self.load(dataset_id)
        if not dataset.customer_id_column:
            raise InvalidArgument(
                f"dataset {dataset.name!r} has no customer id column to key the {purpose} by",
                violations=[FieldViolation("dataset_id", "import it with customer_id_column set")],
            )
        missing = [f for f in features if frame.spec(f) is None]
        if missing:
            raise InvalidArgument(
                f"dataset {dataset.name!r} lacks feature {missing[0]!r} that the model needs",
                violations=[FieldViolation("dataset_id", f"missing columns: {', '.join(missing)}")],
            )
        return dataset, frame

    def load(self, dataset_id: str) -> tuple[modeling_pb2.Dataset, Frame]:
        row = self._row(dataset_id)
        with self._lock:
            cached = self._cache.get(dataset_id)
            if cached is not None and cached[0] == row["blob_id"]:
                self._cache.move_to_end(dataset_id)
                return dataset_message(row), cached[1]
        data = self._store.get_blob(row["blob_id"])
        if not data:  # its rows were stored again (an erasure) between reading its record and its blob
            row = self._row(dataset_id)
            data = self._store.get_blob(row["blob_id"])
        dataset = dataset_message(row)
        frame = frames.decode(data, list(dataset.columns), self._sealer, dataset_id)
        self._remember(dataset_id, row["blob_id"], frame)
        return dataset, frame

    def _remember(self, dataset_id: str, blob_id: str, frame: Frame) -> None:
        if not self._cache_entries:
            return
        with self._lock:
            self._cache[dataset_id] = (blob_id, frame)
            while len(self._cache) > self._cache_entries:
                self._cache.popitem(last=False)

    def list(self, after: tuple[dt.datetime, str] | None, limit: int) -> list[modeling_pb2.Dataset]:
        return [dataset_message(r) for r in self._store.list_datasets(after, limit)]

    def delete(self, dataset_id: str) -> None:
        """NOT_FOUND, or FAILED_PRECONDITION (``DATASET_IN_USE``) naming what uses the dataset (models, driver
        analyses, review schedules, pending or running jobs) so that the caller knows what to delete or wait for."""
        users = self._store.delete_dataset(dataset_id) if dataset_id else None
        if users is None:
            raise NotFound(f"no dataset {dataset_id!r}", metadata={"dataset_id": dataset_id})
        refuse_if_in_use(f"dataset {dataset_id!r}", users, "DATASET_IN_USE", {"dataset_id": dataset_id})
        with self._lock:
            self._cache.pop(dataset_id, None)

    def erase_customers(self, row: Mapping, customers: set[str]) -> int:
        """Remove the rows of ``customers`` from the dataset of ``row`` (a stored dataset's record, naming its
        customer id column): its rows are stored again without them, in place (same id, new digest), level 3+
        columns sealed again. The number of rows removed (0: none of them was there, nothing written)."""
        dataset_id, column = row["dataset_id"], row["customer_id_column"]
        specs = list(dataset_message(row).columns)
        data = self._store.get_blob(row["blob_id"])
        if not data:  # deleted, or stored again, since ``row`` was read
            return 0
        frame = frames.decode(data, specs, self._sealer, dataset_id)
        spec = frame.spec(column)
        if spec is None or not customers:
            return 0
        values = frame.data[column]
        if spec.type in STRING_TYPES:
            erased = values.isin(set(customers)).to_numpy()
        else:  # a number column: the rows whose number, as text, is the customer's id (as scores are written back)
            erased = pd.Series(customer_text(values), dtype=object).isin(set(customers)).to_numpy()
        removed = int(erased.sum())
        if not removed:
            return 0
        kept = Frame(frame.data.loc[~erased].reset_index(drop=True), frame.columns)
        data, content_digest = self._at_rest(kept, dataset_id)
        if not self._store.replace_dataset_rows(dataset_id, row["blob_id"], data, len(kept.data), content_digest):
            return 0  # deleted, or erased by another replica meanwhile
        with self._lock:
            self._cache.pop(dataset_id, None)
        return removed

    def preview(self, dataset_id: str, row_limit: int, unmask: bool = False) -> modeling_pb2.PreviewDatasetResponse:
        """The first rows and a summary per column; level 3+ columns withheld unless ``unmask``."""
        _dataset, frame = self.load(dataset_id)
        hidden = set() if unmask else sensitive_columns(frame.columns)
        response = modeling_pb2.PreviewDatasetResponse(
            rows=rows_of(frame, 0, row_limit or 20, hidden),
            masked_columns=[c.name for c in frame.columns if c.name in hidden],
        )
        for spec in frame.columns:
            values = frame.data[spec.name]
            summary = response.summaries.add(
                column=spec.name, missing=int(values.isna().sum()), distinct=int(values.nunique(dropna=True))
            )
            if spec.name in hidden:
                continue  # counts only: top values, minimum and maximum are one customer's values
            if spec.type in STRING_TYPES:
                summary.top_values.extend(str(v) for v in values.value_counts().index[:5])
            elif values.notna().any():
                summary.mean = float(values.mean())
                summary.stddev = float(values.std(ddof=0))
                summary.min = float(values.min())
                summary.max = float(values.max())
        return response

    def read(
        self,
        dataset_id: str,
        offset: int,
        limit: int,
        batch_rows: int,
        unmask: bool = False,
        page_bytes: int = PAGE_BYTES,
    ) -> Iterator[modeling_pb2.ReadRowsResponse]:
        """Rows in pages of at most ``batch_rows`` rows and, past its first row, ``page_bytes`` of rows: wide rows
        (long strings, hundreds of columns) would otherwise pass the 4 MiB a default client accepts, or the server's
        own send limit, in the middle of the stream. Level 3+ columns' cells unset (named in the first page) unless
        ``unmask``."""
        _dataset, frame = self.load(dataset_id)
        hidden = set() if unmask else sensitive_columns(frame.columns)
        end = len(frame.data) if not limit else min(len(frame.data), offset + limit)
        first = True
        start = offset
        while first or start < end:
            rows = _page_of(frame, start, min(end, start + batch_rows), hidden, page_bytes)
            stop = start + len(rows)
            response = modeling_pb2.ReadRowsResponse(rows=rows)
            if first:
                response.columns.extend(frame.columns)
                response.masked_columns.extend(c.name for c in frame.columns if c.name in hidden)
                first = False
            yield response
            start = stop


def sensitive_columns(columns: Sequence[modeling_pb2.Column]) -> set[str]:
    """Columns declared level 3 or 4 (JR/T 0158): never shown to a caller without an unmask role."""
    return {c.name for c in columns if c.sensitivity >= types_pb2.SENSITIVITY_LEVEL_3}


def _withheld(target: types_pb2.Value, value: object) -> None:
    """A masked cell: left unset."""


def _page_of(frame: Frame, start: int, stop: int, hidden: set[str], page_bytes: int) -> list[modeling_pb2.Row]:
    """Rows from ``start`` up to ``stop``, ending early once they pass ``page_bytes`` (always one row at least)."""
    rows: list[modeling_pb2.Row] = []
    size = 0
    at = start
    while at < stop:
        for row in rows_of(frame, at, min(_PAGE_CHUNK_ROWS, stop - at), hidden):
            size += row.ByteSize() + 6  # the field's tag and length prefix
            if rows and size > page_bytes:
                return rows
            rows.append(row)
        at += _PAGE_CHUNK_ROWS
    return rows


def rows_of(
    frame: Frame, start: int, count: int, hidden: set[str] | frozenset[str] = frozenset()
) -> list[modeling_pb2.Row]:
    part = frame.data.iloc[start : start + count]
    converters = [_withheld if spec.name in hidden else _to_value(spec) for spec in frame.columns]
    columns = [part[spec.name].to_numpy() for spec in frame.columns]
    rows = []
    for i in range(len(part)):
        row = modeling_pb2.Row()
        for convert, values in zip(converters, columns, strict=True):
            convert(row.values.add(), values[i])
        rows.append(row)
    return rows


_INT64 = (-(1 << 63), (1 << 63) - 1)
_TIMESTAMP_US = (MIN_SECONDS * 1_000_000, MAX_SECONDS * 1_000_000 + 999_999)


def _to_value(spec: modeling_pb2.Column):
    """A stored cell as a ``Value`` of its column's type. A number its type cannot hold (stored before 0.2.9: an INT
    cell of 1e300 from a file, 2**63 - 1 rounded up to 2**63 as a float64, a time past 9999-12-31 after that rounding)
    is left unset, as missing: it made every preview and read of the whole dataset INTERNAL."""
    kind = spec.type
    bounds = _TIMESTAMP_US if kind == VT.VALUE_TYPE_TIMESTAMP else _INT64

    def convert(target: types_pb2.Value, value: object) -> None:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return
        if kind == VT.VALUE_TYPE_STRING:
            target.string_value = str(value)
        elif kind == VT.VALUE_TYPE_BOOL:
            target.bool_value = bool(value)
        elif kind in (VT.VALUE_TYPE_INT, VT.VALUE_TYPE_MONEY_FEN, VT.VALUE_TYPE_TIMESTAMP):
            number = float(value)  # type: ignore[arg-type]
            if not (math.isfinite(number) and bounds[0] <= number <= bounds[1]):
                return
            whole = int(number)
            if kind == VT.VALUE_TYPE_INT:
                target.int_value = whole
            elif kind == VT.VALUE_TYPE_MONEY_FEN:
                target.money_fen_value = whole
            else:
                target.timestamp_value.FromMicroseconds(whole)
        else:
            target.double_value = float(value)  # type: ignore[arg-type]

    return convert


def numeric_frame(columns: Mapping[str, np.ndarray | pd.Series], specs: list[modeling_pb2.Column]) -> Frame:
    """A frame from computed columns (scores, plans)."""
    return Frame(pd.DataFrame({k: pd.Series(v) for k, v in columns.items()}), specs)
