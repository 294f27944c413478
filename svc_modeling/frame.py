"""Datasets in memory and at rest.

In memory a dataset is a pandas ``DataFrame`` plus its column specs (``modeling_pb2.Column``). Every
non-string type (INT, DOUBLE, BOOL, MONEY_FEN in fen, TIMESTAMP in epoch microseconds) is a float64 column
with NaN for missing; STRING is an object column with None for missing.

At rest it is an ``.npz`` archive (numpy, no pickle: strings are fixed-width unicode arrays with a missing
mask), compressed, and its SM3 digest identifies the rows.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from cryptography.hazmat.primitives import hashes

from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2

VT = types_pb2.ValueType
ROLE = modeling_pb2.ColumnRole
STRING_TYPES = (VT.VALUE_TYPE_STRING,)
NUMERIC_TYPES = (
    VT.VALUE_TYPE_INT,
    VT.VALUE_TYPE_DOUBLE,
    VT.VALUE_TYPE_BOOL,
    VT.VALUE_TYPE_MONEY_FEN,
    VT.VALUE_TYPE_TIMESTAMP,
)
SUPPORTED_TYPES = STRING_TYPES + NUMERIC_TYPES


@dataclass
class Frame:
    """A dataset's rows and column specs (same order)."""

    data: pd.DataFrame
    columns: list[modeling_pb2.Column]

    def spec(self, name: str) -> modeling_pb2.Column | None:
        for column in self.columns:
            if column.name == name:
                return column
        return None

    def names(self, role: int) -> list[str]:
        return [c.name for c in self.columns if c.role == role]

    def default_features(self) -> list[str]:
        """Columns used when a request names none: FEATURE columns, and numeric SURVEY answers (NPS, CSAT, CES;
        text answers are not features unless named)."""
        return [
            c.name
            for c in self.columns
            if c.role == ROLE.COLUMN_ROLE_FEATURE or (c.role == ROLE.COLUMN_ROLE_SURVEY and c.type not in STRING_TYPES)
        ]

    def is_string(self, name: str) -> bool:
        spec = self.spec(name)
        return spec is not None and spec.type in STRING_TYPES


def encode(frame: Frame) -> bytes:
    arrays: dict[str, np.ndarray] = {}
    for i, spec in enumerate(frame.columns):
        values = frame.data[spec.name]
        if spec.type in STRING_TYPES:
            missing = values.isna().to_numpy()
            arrays[f"m{i}"] = missing
            arrays[f"c{i}"] = np.where(missing, "", values.astype(object).to_numpy()).astype(str)
        else:
            arrays[f"c{i}"] = values.to_numpy(dtype=np.float64)
    out = io.BytesIO()
    np.savez_compressed(out, allow_pickle=False, **arrays)
    return out.getvalue()


def decode(data: bytes, columns: Sequence[modeling_pb2.Column]) -> Frame:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        series: dict[str, object] = {}
        for i, spec in enumerate(columns):
            values = archive[f"c{i}"]
            if spec.type in STRING_TYPES:
                obj = values.astype(object)
                obj[archive[f"m{i}"]] = None
                series[spec.name] = pd.Series(obj, dtype=object)
            else:
                series[spec.name] = pd.Series(values, dtype=np.float64)
    return Frame(pd.DataFrame(series), list(columns))


def digest(data: bytes) -> str:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize().hex()


def infer_type(values: pd.Series) -> int:
    """The ValueType of a column read from CSV."""
    if pd.api.types.is_bool_dtype(values):
        return VT.VALUE_TYPE_BOOL
    if pd.api.types.is_integer_dtype(values):
        return VT.VALUE_TYPE_INT
    if pd.api.types.is_float_dtype(values):
        return VT.VALUE_TYPE_DOUBLE
    return VT.VALUE_TYPE_STRING


def to_storage(values: pd.Series, value_type: int) -> pd.Series:
    if value_type in STRING_TYPES:
        text = values.astype(object).to_numpy(copy=True)
        missing = values.isna().to_numpy()
        text[missing] = None
        for i in np.flatnonzero(~missing):
            if not isinstance(text[i], str):
                text[i] = str(text[i])
        return pd.Series(text, dtype=object, index=values.index)
    return pd.Series(pd.to_numeric(values, errors="coerce"), dtype=np.float64, index=values.index)
