"""Datasets in memory and at rest.

In memory a dataset is a pandas ``DataFrame`` plus its column specs (``modeling_pb2.Column``). Every
non-string type (INT, DOUBLE, BOOL, MONEY_FEN in fen, TIMESTAMP in epoch microseconds) is a float64 column
with NaN for missing; STRING is an object column with None for missing.

At rest it is an ``.npz`` archive (numpy, no pickle: strings are fixed-width unicode arrays with a missing
mask), compressed, and its SM3 digest identifies the rows. Columns of sensitivity level 3 or 4 are sealed
(SM4-GCM with the service keyring's active key) inside that archive, one sealed archive per column; the digest
is taken over the unsealed encoding, so the same rows keep the same digest.
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
from svc_common.protection import Sealer

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


def _column_arrays(spec: modeling_pb2.Column, values: pd.Series) -> dict[str, np.ndarray]:
    if spec.type in STRING_TYPES:
        missing = values.isna().to_numpy()
        return {"m": missing, "c": np.where(missing, "", values.astype(object).to_numpy()).astype(str)}
    return {"c": values.to_numpy(dtype=np.float64)}


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    out = io.BytesIO()
    np.savez_compressed(out, allow_pickle=False, **arrays)
    return out.getvalue()


def _sealing_context(context: str, index: int, spec: modeling_pb2.Column) -> bytes:
    """What a sealed column is bound to: its dataset, position and name (a copy elsewhere does not open)."""
    return f"qiming.modeling.dataset/{context}/{index}/{spec.name}".encode()


def is_sensitive(spec: modeling_pb2.Column) -> bool:
    """Level 3 or 4 (JR/T 0158): sealed at rest, masked on read, never in messages."""
    return spec.sensitivity >= types_pb2.SENSITIVITY_LEVEL_3


def encode(frame: Frame, sealer: Sealer | None = None, context: str = "") -> bytes:
    """The archive; with a ``sealer``, each level 3+ column is its own compressed archive sealed with SM4-GCM
    (``s<i>``), bound to ``context`` (the dataset id), the column's position and name."""
    arrays: dict[str, np.ndarray] = {}
    for i, spec in enumerate(frame.columns):
        parts = _column_arrays(spec, frame.data[spec.name])
        if sealer is not None and is_sensitive(spec):
            sealed = sealer.seal(_npz(parts), _sealing_context(context, i, spec))
            arrays[f"s{i}"] = np.frombuffer(sealed, dtype=np.uint8)
        else:
            arrays.update({f"{k}{i}": v for k, v in parts.items()})
    return _npz(arrays)


def decode(
    data: bytes, columns: Sequence[modeling_pb2.Column], sealer: Sealer | None = None, context: str = ""
) -> Frame:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        series: dict[str, object] = {}
        for i, spec in enumerate(columns):
            if f"s{i}" in archive.files:
                if sealer is None:
                    raise ValueError(f"column {spec.name!r} is sealed and no keyring was given")
                clear = sealer.open(archive[f"s{i}"].tobytes(), _sealing_context(context, i, spec))
                with np.load(io.BytesIO(clear), allow_pickle=False) as inner:
                    parts = {k: inner[k] for k in inner.files}
            else:
                parts = {k: archive[f"{k}{i}"] for k in ("c", "m") if f"{k}{i}" in archive.files}
            values = parts["c"]
            if spec.type in STRING_TYPES:
                obj = values.astype(object)
                obj[parts["m"]] = None
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


def customer_text(ids: pd.Series) -> np.ndarray:
    """Customer ids as text (integral floats of a numeric column without their ``.0``; missing: None)."""
    return (
        ids.astype(object)
        .map(
            lambda v: (
                None if v is None or v != v else (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
            )
        )
        .to_numpy()
    )
