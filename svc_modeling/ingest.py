"""Turning imports into a :class:`~svc_modeling.frame.Frame`: streamed typed rows (files: ``svc_modeling.files``).

A bad row (wrong number of values, a value of the wrong type, NaN or infinity) is left out and reported
as a :class:`RowProblem`; a bad dataset definition fails the whole import with INVALID_ARGUMENT naming the
field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from svc_common.errors import FieldViolation, InvalidArgument, ResourceExhausted
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2
from svc_modeling.frame import STRING_TYPES, SUPPORTED_TYPES, VT, Frame
from svc_modeling.guard import enum_label, enum_violation, timestamp_problem

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")  # fullmatch: "$" would let a trailing new line through
MAX_COLUMN_NAME_CHARS = 128
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
        if len(column.name) > MAX_COLUMN_NAME_CHARS:
            violations.append(
                FieldViolation(
                    f"{where}.name",
                    f"column name {column.name[:32]!r}… has {len(column.name)} characters: at most "
                    f"{MAX_COLUMN_NAME_CHARS}",
                    "INVALID_NAME",
                )
            )
        elif not _NAME.fullmatch(column.name):
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


_EXACT_INTEGERS = 1 << 53
_LAST_EXACT_US = 253_402_300_799_999_968
"""The last float64 at or before 9999-12-31T23:59:59.999999 (floats are 32 µs apart there)."""


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
    if kind in ("int_value", "money_fen_value"):
        number = getattr(value, kind)
        if abs(number) > _EXACT_INTEGERS:
            # Numbers are stored as float64: past 2**53 two ids became one, silently (before 0.2.9), as an upload's
            # file refuses them.
            return None, (
                f"{number} is beyond ±2^53, which a number column cannot keep exactly: send ids as a STRING column"
            )
        return float(number), ""
    if kind == "bool_value":
        return 1.0 if value.bool_value else 0.0, ""
    stamp = value.timestamp_value
    problem = timestamp_problem(stamp.seconds, stamp.nanos)
    if problem:
        return None, f"timestamp_value is not a valid moment: {problem}"
    # Microseconds as a float64, not past 9999-12-31 once rounded (23:59:59.999999 rounded up to year 10000).
    return float(min(stamp.seconds * 1_000_000 + stamp.nanos // 1000, _LAST_EXACT_US)), ""


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
