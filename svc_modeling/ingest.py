"""Turning imports into a :class:`~svc_modeling.frame.Frame`: streamed typed rows, or a CSV file.

A bad row (wrong number of values, a value of the wrong type, NaN or infinity) is left out and reported
as a :class:`RowProblem`; a bad dataset definition fails the whole import with INVALID_ARGUMENT naming the
field.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from svc_common.errors import FieldViolation, InvalidArgument, ResourceExhausted
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2
from svc_modeling.frame import NUMERIC_TYPES, ROLE, STRING_TYPES, SUPPORTED_TYPES, VT, Frame, infer_type, to_storage
from svc_modeling.guard import enum_label, enum_violation, timestamp_problem

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")
MAX_REPORTED_PROBLEMS = 1000
# Free text a caller may store with a dataset (docs/modeling.md "Limits"): every listed dataset is sent whole, so
# what one caller writes must not make a page of ListDatasets too large for the others.
MAX_DATASET_NAME_CHARS = 256
MAX_DESCRIPTION_CHARS = 4096
MAX_COLUMN_DESCRIPTION_CHARS = 1024
MAX_LINEAGE_ENTRIES, MAX_LINEAGE_KEY_CHARS, MAX_LINEAGE_VALUE_CHARS = 32, 128, 1024
CALLER_LINEAGE_PREFIX = "caller."

# Which Value kinds a column of each type accepts.
_ACCEPTS = {
    VT.VALUE_TYPE_STRING: ("string_value",),
    VT.VALUE_TYPE_INT: ("int_value",),
    VT.VALUE_TYPE_DOUBLE: ("double_value", "int_value"),
    VT.VALUE_TYPE_BOOL: ("bool_value",),
    VT.VALUE_TYPE_MONEY_FEN: ("money_fen_value", "int_value"),
    VT.VALUE_TYPE_TIMESTAMP: ("timestamp_value",),
}


@dataclass(frozen=True)
class RowProblem:
    row_index: int
    column: str
    reason: str
    message: str


def check_definition(dataset: modeling_pb2.Dataset, *, max_columns: int, need_types: bool = True) -> None:
    """The dataset's name and columns make sense; raises INVALID_ARGUMENT naming the field otherwise."""
    violations: list[FieldViolation] = []
    if not dataset.name.strip():
        violations.append(FieldViolation("dataset.name", "give the dataset a name", "MISSING_FIELD"))
    else:
        violations.extend(name_violations(dataset.name, "dataset.name"))
    if len(dataset.description) > MAX_DESCRIPTION_CHARS:
        violations.append(
            FieldViolation(
                "dataset.description",
                f"{len(dataset.description)} characters: at most {MAX_DESCRIPTION_CHARS}",
                "VALUE_NOT_ALLOWED",
            )
        )
    violations.extend(_lineage_violations(dataset.lineage))
    if need_types and not dataset.columns:
        violations.append(FieldViolation("dataset.columns", "declare at least one column", "MISSING_FIELD"))
    if len(dataset.columns) > max_columns:
        violations.append(FieldViolation("dataset.columns", f"at most {max_columns} columns"))
    seen: set[str] = set()
    for i, column in enumerate(dataset.columns):
        where = f"dataset.columns[{i}]"
        if not _NAME.match(column.name):
            violations.append(
                FieldViolation(
                    f"{where}.name",
                    f"{column.name!r} is not a column name: letters, digits, _ . - (start with a letter or _)",
                    "INVALID_NAME",
                )
            )
        if column.name in seen:
            violations.append(FieldViolation(f"{where}.name", f"column {column.name!r} is declared twice"))
        if len(column.description) > MAX_COLUMN_DESCRIPTION_CHARS:
            violations.append(
                FieldViolation(
                    f"{where}.description",
                    f"{len(column.description)} characters: at most {MAX_COLUMN_DESCRIPTION_CHARS}",
                    "VALUE_NOT_ALLOWED",
                )
            )
        if column.role == modeling_pb2.COLUMN_ROLE_WEIGHT:
            # No estimate uses sample weights yet: accepting the role would give unweighted results silently.
            violations.append(
                FieldViolation(
                    f"{where}.role",
                    f"column {column.name!r}: role WEIGHT is not supported yet (no estimate applies sample "
                    "weights); give it role FEATURE or IGNORED",
                )
            )
        seen.add(column.name)
        for attribute, enum_type in (("role", modeling_pb2.ColumnRole), ("sensitivity", types_pb2.SensitivityLevel)):
            violation = enum_violation(f"{where}.{attribute}", enum_type, getattr(column, attribute))
            if violation is not None:
                violations.append(violation)
        if need_types and column.type not in SUPPORTED_TYPES:
            violations.append(
                FieldViolation(
                    f"{where}.type",
                    f"column {column.name!r}: type {enum_label(types_pb2.ValueType, column.type)} is not supported "
                    "in datasets (use STRING, INT, DOUBLE, BOOL, MONEY_FEN or TIMESTAMP)",
                    "PROPERTY_TYPE_MISMATCH",
                )
            )
    if dataset.customer_id_column and need_types and dataset.customer_id_column not in seen:
        violations.append(
            FieldViolation(
                "dataset.customer_id_column", f"{dataset.customer_id_column!r} is not one of the declared columns"
            )
        )
    if violations:
        first = violations[0]
        raise InvalidArgument(f"bad dataset definition: {first.field}: {first.description}", violations=violations)


def name_violations(name: str, field: str) -> list[FieldViolation]:
    """A dataset name: at most 256 characters of printable text (no control characters)."""
    if len(name) > MAX_DATASET_NAME_CHARS:
        return [FieldViolation(field, f"{len(name)} characters: at most {MAX_DATASET_NAME_CHARS}", "INVALID_NAME")]
    if any(not ch.isprintable() for ch in name):
        return [FieldViolation(field, "no control characters (tabs, new lines)", "INVALID_NAME")]
    return []


def check_dataset_name(name: str, field: str = "name") -> None:
    """INVALID_ARGUMENT for a missing or over-long name of a dataset a job will create (checked before the job)."""
    if not name.strip():
        raise InvalidArgument("name the dataset", violations=[FieldViolation(field, "", "MISSING_FIELD")])
    violations = name_violations(name, field)
    if violations:
        raise InvalidArgument(f"{field}: {violations[0].description}", violations=violations)


def _lineage_violations(lineage: Mapping[str, str]) -> list[FieldViolation]:
    if len(lineage) > MAX_LINEAGE_ENTRIES:
        return [FieldViolation("dataset.lineage", f"{len(lineage)} entries: at most {MAX_LINEAGE_ENTRIES}")]
    out = []
    for key, value in lineage.items():
        if not key or len(key) > MAX_LINEAGE_KEY_CHARS:
            out.append(FieldViolation("dataset.lineage", f"keys of 1 to {MAX_LINEAGE_KEY_CHARS} characters"))
        elif len(value) > MAX_LINEAGE_VALUE_CHARS:
            out.append(FieldViolation(f"dataset.lineage[{key}]", f"at most {MAX_LINEAGE_VALUE_CHARS} characters"))
    return out


def caller_lineage(lineage: Mapping[str, str]) -> dict[str, str]:
    """The caller's own lineage entries, kept under ``caller.`` so that they never pass for the service's."""
    return {f"{CALLER_LINEAGE_PREFIX}{key}": value for key, value in lineage.items()}


def _cell(value: types_pb2.Value, column: modeling_pb2.Column) -> tuple[object, str]:
    """The stored value of one cell, or an error message."""
    kind = value.WhichOneof("kind")
    if kind is None:
        return None, ""
    if kind not in _ACCEPTS[column.type]:
        return None, f"{kind} given for a {types_pb2.ValueType.Name(column.type)} column"
    if kind == "string_value":
        if "\x00" in value.string_value:
            return None, "text must not contain the NUL character"
        return value.string_value, ""
    if kind == "double_value":
        if not math.isfinite(value.double_value):
            return None, f"{value.double_value} is not a finite number (send an unset Value for missing)"
        return value.double_value, ""
    if kind == "int_value":
        return float(value.int_value), ""
    if kind == "money_fen_value":
        return float(value.money_fen_value), ""
    if kind == "bool_value":
        return 1.0 if value.bool_value else 0.0, ""
    stamp = value.timestamp_value
    problem = timestamp_problem(stamp.seconds, stamp.nanos)
    if problem:
        return None, f"timestamp_value is not a valid moment: {problem}"
    return float(stamp.seconds * 1_000_000 + stamp.nanos // 1000), ""


class RowCollector:
    """Collects streamed rows of a declared dataset into columns."""

    def __init__(self, dataset: modeling_pb2.Dataset, max_rows: int) -> None:
        self.columns = list(dataset.columns)
        self._values: list[list[object]] = [[] for _ in self.columns]
        self.problems: list[RowProblem] = []
        self.rejected = 0
        self._seen = 0
        self._max_rows = max_rows

    def add(self, rows: Iterable[modeling_pb2.Row]) -> None:
        width = len(self.columns)
        for row in rows:
            index = self._seen
            self._seen += 1
            if len(row.values) != width:
                self._problem(index, "", "MALFORMED_REQUEST", f"{len(row.values)} values for {width} columns")
                continue
            cells: list[object] = []
            for value, column in zip(row.values, self.columns, strict=True):
                cell, error = _cell(value, column)
                if error:
                    reason = "PROPERTY_TYPE_MISMATCH" if " given for a " in error else "VALUE_NOT_ALLOWED"
                    self._problem(index, column.name, reason, f"column {column.name!r}: {error}")
                    break
                cells.append(cell)
            else:
                if self._seen - self.rejected > self._max_rows:
                    raise ResourceExhausted(f"more than {self._max_rows} rows: split the dataset")
                for target, cell in zip(self._values, cells, strict=True):
                    target.append(cell)

    def _problem(self, index: int, column: str, reason: str, message: str) -> None:
        self.rejected += 1
        if len(self.problems) < MAX_REPORTED_PROBLEMS:
            self.problems.append(RowProblem(index, column, reason, message))

    def frame(self) -> Frame:
        data = {}
        for column, values in zip(self.columns, self._values, strict=True):
            if column.type in STRING_TYPES:
                data[column.name] = pd.Series(values, dtype=object)
            else:
                data[column.name] = pd.Series(np.array([np.nan if v is None else v for v in values], dtype=np.float64))
        return Frame(pd.DataFrame(data), self.columns)


def _read_csv(content: bytes, text: set[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """``text`` columns (declared STRING, and the customer id) are read as written: "000123" stays "000123"."""
    _check_header(content)
    try:
        header = pd.read_csv(io.BytesIO(content), nrows=0).columns
        dtype = {name: str for name in header if name in text}
        return pd.read_csv(io.BytesIO(content), low_memory=False, dtype=dtype), {n: VT.VALUE_TYPE_STRING for n in dtype}
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InvalidArgument(
            f"not a readable CSV file: {str(exc).splitlines()[0]}",
            reason="MALFORMED_REQUEST",
            violations=[FieldViolation("chunk", "send a UTF-8 CSV file with a header row")],
        ) from None


def _check_header(content: bytes) -> None:
    """Every header cell names a column, once (pandas would invent 'Unnamed: 1' or rename a repeat to 'a.1')."""
    first = content.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").rstrip("\r")
    cells = next(csv.reader([first]), [])
    for i, cell in enumerate(cells):
        if not cell.strip():
            raise InvalidArgument(
                f"column {i + 1} of the CSV header has no name: name every column",
                violations=[FieldViolation("chunk", f"header cell {i + 1} is empty")],
            )
        if cell in cells[:i]:
            raise InvalidArgument(
                f"column {cell!r} appears twice in the CSV header",
                violations=[FieldViolation("chunk", f"header cells {cells.index(cell) + 1} and {i + 1}")],
            )


def _read_arrow(content: bytes, file_format: int, text: set[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """An Arrow IPC (file or stream) or Parquet file; timestamps and dates become epoch microseconds, ``text``
    columns (declared STRING, and the customer id) keep integers exactly as text."""
    import pyarrow as pa
    import pyarrow.ipc
    import pyarrow.parquet as pq

    _FLAT_ARROW_TYPES = (
        pa.types.is_string,
        pa.types.is_large_string,
        pa.types.is_null,
    )

    name = modeling_pb2.FileFormat.Name(file_format).removeprefix("FILE_FORMAT_")
    try:
        if file_format == modeling_pb2.FILE_FORMAT_PARQUET:
            table = pq.read_table(pa.BufferReader(content))
        else:
            try:
                table = pyarrow.ipc.open_file(pa.BufferReader(content)).read_all()
            except pa.ArrowInvalid:
                table = pyarrow.ipc.open_stream(pa.BufferReader(content)).read_all()
    except (pa.ArrowException, OSError) as exc:
        raise InvalidArgument(
            f"not a readable {name} file: {str(exc).splitlines()[0]}",
            reason="MALFORMED_REQUEST",
            violations=[FieldViolation("chunk", f"send one {name} file")],
        ) from None
    types: dict[str, int] = {}
    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        kind = field.type
        if pa.types.is_dictionary(kind):
            column, kind = column.cast(kind.value_type), kind.value_type
        if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
            column = column.cast(pa.timestamp("us", tz=getattr(kind, "tz", None) or "UTC")).cast(pa.int64())
            types[field.name] = VT.VALUE_TYPE_TIMESTAMP
        elif pa.types.is_decimal(kind) or pa.types.is_floating(kind):
            column = column.cast(pa.float64())
            types[field.name] = VT.VALUE_TYPE_DOUBLE
        elif pa.types.is_integer(kind) and field.name in text:
            column = column.cast(pa.string())
            types[field.name] = VT.VALUE_TYPE_STRING
        elif pa.types.is_integer(kind):
            # The file's type, not pandas' guess: a nullable int column arrives as float64.
            try:
                column = column.cast(pa.float64())
            except pa.ArrowInvalid:
                raise InvalidArgument(
                    f"column {field.name!r} holds integers beyond ±2^53, which a number column cannot keep exactly: "
                    "declare it STRING (an id) or scale it",
                    violations=[FieldViolation("dataset.columns", f"declare {field.name!r} with type STRING")],
                ) from None
            types[field.name] = VT.VALUE_TYPE_INT
        elif pa.types.is_boolean(kind):
            column = column.cast(pa.float64())
            types[field.name] = VT.VALUE_TYPE_BOOL
        elif not any(check(kind) for check in _FLAT_ARROW_TYPES):
            raise InvalidArgument(
                f"column {field.name!r} is {kind}: only numbers, booleans, strings, dates and timestamps",
                violations=[FieldViolation("chunk", f"convert column {field.name!r} to a flat type")],
            )
        columns.append(column)
    frame = pa.table(columns, names=table.column_names).to_pandas()
    return frame, types


def read_file(
    dataset: modeling_pb2.Dataset, file_format: int, content: bytes, max_rows: int, max_columns: int = 1000
) -> tuple[Frame, list[RowProblem], int]:
    """A CSV, Arrow IPC or Parquet file as a Frame; declared columns (by name) fix the type, role and
    sensitivity of those columns."""
    if not content:
        raise InvalidArgument("the uploaded file is empty", violations=[FieldViolation("chunk", "send the file")])
    # Ids are text unless declared otherwise: read as numbers they lose leading zeros and, past 2^53, digits.
    text = {c.name for c in dataset.columns if c.type in STRING_TYPES}
    if dataset.customer_id_column and not any(c.name == dataset.customer_id_column and c.type for c in dataset.columns):
        text.add(dataset.customer_id_column)
    if file_format in (modeling_pb2.FILE_FORMAT_CSV, modeling_pb2.FILE_FORMAT_UNSPECIFIED):
        table, inferred = _read_csv(content, text)
    elif file_format in (modeling_pb2.FILE_FORMAT_ARROW_IPC, modeling_pb2.FILE_FORMAT_PARQUET):
        table, inferred = _read_arrow(content, file_format, text)
    else:
        raise InvalidArgument(
            f"unknown file format {file_format}", violations=[FieldViolation("format", "CSV, ARROW_IPC or PARQUET")]
        )
    if len(table) > max_rows:
        raise ResourceExhausted(f"{len(table)} rows: more than {max_rows}, split the dataset")
    if len(table.columns) > max_columns:
        raise InvalidArgument(
            f"the file has {len(table.columns)} columns: at most {max_columns} (the max_dataset_columns setting)",
            violations=[FieldViolation("chunk", f"at most {max_columns} columns: split the file or drop columns")],
        )
    declared = {c.name: c for c in dataset.columns}
    unknown = [name for name in declared if name not in table.columns]
    if unknown:
        raise InvalidArgument(
            f"declared column {unknown[0]!r} is not in the file's header",
            violations=[FieldViolation("dataset.columns", f"{name!r} is not in the file") for name in unknown],
        )
    columns: list[modeling_pb2.Column] = []
    data: dict[str, pd.Series] = {}
    for name in table.columns:
        spec = modeling_pb2.Column()
        if name in declared:
            spec.CopyFrom(declared[name])
        spec.name = str(name)
        if not spec.type:
            spec.type = inferred.get(str(name)) or infer_type(table[name])
        if not spec.role:
            spec.role = ROLE.COLUMN_ROLE_ID if name == dataset.customer_id_column else ROLE.COLUMN_ROLE_FEATURE
        columns.append(spec)
        data[spec.name] = to_storage(table[name], spec.type)
        if spec.role == ROLE.COLUMN_ROLE_ID and spec.type in NUMERIC_TYPES:
            _exact_ids(spec.name, data[spec.name])
    check_definition(
        modeling_pb2.Dataset(name=dataset.name, columns=columns, customer_id_column=dataset.customer_id_column),
        max_columns=max_columns,
    )
    frame = pd.DataFrame(data)
    problems: list[RowProblem] = []
    bad = np.zeros(len(frame), dtype=bool)
    maybe_nul = b"\x00" in content if file_format in (modeling_pb2.FILE_FORMAT_CSV, 0) else True
    for spec in columns:
        if spec.type in STRING_TYPES and maybe_nul:
            # NUL is refused in every request string; a file's cell with one is a bad row, as in ImportRows.
            nul = frame[spec.name].map(lambda v: isinstance(v, str) and "\x00" in v).to_numpy(dtype=bool)
            for index in np.flatnonzero(nul & ~bad)[: MAX_REPORTED_PROBLEMS - len(problems)]:
                message = f"column {spec.name!r}: text must not contain the NUL character"
                problems.append(RowProblem(int(index), spec.name, "VALUE_NOT_ALLOWED", message))
            bad |= nul
        if spec.type in NUMERIC_TYPES:
            raw = table[spec.name]
            values = frame[spec.name].to_numpy()
            not_number = raw.notna().to_numpy() & np.isnan(values)
            infinite = np.isinf(values)
            for index in np.flatnonzero((not_number | infinite) & ~bad)[: MAX_REPORTED_PROBLEMS - len(problems)]:
                secret = spec.sensitivity >= types_pb2.SENSITIVITY_LEVEL_3
                shown = "a level 3+ value" if secret else repr(raw.iloc[index])
                what = "not a finite number" if infinite[index] else f"{shown} is not a number"
                problems.append(RowProblem(int(index), spec.name, "VALUE_NOT_ALLOWED", f"column {spec.name!r}: {what}"))
            bad |= not_number | infinite
    rejected = int(bad.sum())
    if rejected:
        frame = frame.loc[~bad].reset_index(drop=True)
    return Frame(frame, columns), problems, rejected


def _exact_ids(name: str, values: pd.Series) -> None:
    """A numeric id column must hold integers a float64 keeps exactly (ids are keys: a rounded one is
    somebody else)."""
    numbers = values.to_numpy(dtype=np.float64)
    known = numbers[np.isfinite(numbers)]
    if (np.abs(known) >= 2**53).any() or (known != np.round(known)).any():
        raise InvalidArgument(
            f"id column {name!r} holds numbers that are not exact integers below 2^53: declare it STRING",
            violations=[FieldViolation("dataset.columns", f"declare {name!r} with type STRING")],
        )


def problem_messages(problems: Sequence[RowProblem]) -> list[modeling_pb2.RowProblem]:
    from svc_common.pb.qiming.common.v1 import errors_pb2

    return [
        modeling_pb2.RowProblem(
            row_index=p.row_index,
            column=p.column,
            reason=errors_pb2.ErrorReason.Value(f"ERROR_REASON_{p.reason}"),
            message=p.message,
        )
        for p in problems
    ]
