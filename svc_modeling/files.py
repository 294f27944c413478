"""Reading an uploaded file (CSV, Arrow IPC, Parquet) into a :class:`~svc_modeling.frame.Frame`, within the limits
on rows, columns and decoded size, with each column's type inferred exactly (no id rounded, no leading zero lost)
and its sensitivity defaulted by name."""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from svc_common.errors import FieldViolation, InvalidArgument, ResourceExhausted
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2
from svc_modeling.frame import NUMERIC_TYPES, ROLE, STRING_TYPES, VT, Frame, infer_type, to_storage
from svc_modeling.ingest import MAX_REPORTED_PROBLEMS, RowProblem, check_definition


def _read_csv(content: bytes, text: set[str], numeric: set[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """``text`` columns (declared STRING, and the customer id) are read as written: "000123" stays "000123".
    Of the others, a column pandas reads as numbers but that holds codes (an integer written with leading zeros)
    or integers beyond ±2^53 (18-digit ID numbers, 19-digit accounts: a float64 would round them, two ids becoming
    one) is text as written too, unless declared a number (``numeric``): then integers beyond ±2^53 are refused."""
    _check_header(content)
    try:
        header = pd.read_csv(io.BytesIO(content), nrows=0).columns
        dtype = {name: str for name in header if name in text}
        table = pd.read_csv(io.BytesIO(content), low_memory=False, dtype=dtype)
        inferred = {n: VT.VALUE_TYPE_STRING for n in dtype}
        numbers = [name for name in table.columns if name not in dtype and _maybe_integers(table[name])]
        if numbers:  # a second reading of those columns only, as text (cheap: the others are skipped)
            written = pd.read_csv(io.BytesIO(content), low_memory=False, dtype=str, usecols=numbers)
            for name in numbers:
                codes, beyond = _integer_text(written[name])
                if beyond and name in numeric:
                    raise InvalidArgument(
                        f"column {name!r} holds integers beyond ±2^53, which a number column cannot keep exactly: "
                        "declare it STRING (an id) or scale it",
                        violations=[FieldViolation("dataset.columns", f"declare {name!r} with type STRING")],
                    )
                if (codes or beyond) and name not in numeric:
                    table[name] = written[name]
                    inferred[name] = VT.VALUE_TYPE_STRING
        return table, inferred
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InvalidArgument(
            f"not a readable CSV file: {str(exc).splitlines()[0]}",
            reason="MALFORMED_REQUEST",
            violations=[FieldViolation("chunk", "send a UTF-8 CSV file with a header row")],
        ) from None


def _maybe_integers(values: pd.Series) -> bool:
    """A column read as numbers whose cells may all be integers as written (a float column is one with missing)."""
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return False
    if pd.api.types.is_integer_dtype(values):
        return True
    known = values.to_numpy(dtype=np.float64)
    known = known[np.isfinite(known)]
    return bool(len(known)) and bool((known == np.round(known)).all())


def _integer_text(written: pd.Series) -> tuple[bool, bool]:
    """Whether a column's cells, as written, hold integers with leading zeros, and integers beyond ±2^53."""
    cells = written.dropna().str.strip()
    integers = cells[cells.str.fullmatch(r"[+-]?\d+")]
    codes = bool(integers.str.fullmatch(r"[+-]?0\d+").any())
    beyond = any(abs(int(cell)) > 2**53 for cell in integers[integers.str.len() >= 16])
    return codes, beyond


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


@dataclass(frozen=True)
class FileLimits:
    """What one uploaded file may hold (settings ``max_dataset_rows``, ``max_dataset_columns``,
    ``max_decoded_bytes``)."""

    max_rows: int
    max_columns: int = 1000
    max_decoded_bytes: int = 2 * 1024**3

    def check_rows(self, rows: int) -> None:
        if rows > self.max_rows:
            raise ResourceExhausted(
                f"the file has more than {self.max_rows} rows (max_dataset_rows): split the dataset",
                metadata={"limit": "max_dataset_rows"},
            )

    def check_columns(self, columns: int) -> None:
        if columns > self.max_columns:
            raise InvalidArgument(
                f"the file has {columns} columns: at most {self.max_columns} (the max_dataset_columns setting)",
                violations=[
                    FieldViolation("chunk", f"at most {self.max_columns} columns: split the file or drop columns")
                ],
            )

    def check_decoded(self, size: int, what: str) -> None:
        if size > self.max_decoded_bytes:
            raise ResourceExhausted(
                f"{what} takes more than {self.max_decoded_bytes} bytes (max_decoded_bytes): split the "
                "dataset or drop columns",
                metadata={"limit": "max_decoded_bytes"},
            )


# Rows decoded at a time from an Arrow or Parquet file: what the file decodes to is counted before it all is.
_BATCH_ROWS = 65_536


def _arrow_batches(content: bytes, file_format: int, limits: FileLimits):
    """The file's record batches, dictionaries cast to plain values, refused over the limits before decoding
    further: Parquet's metadata gives rows, columns and the encoded size up front; then every batch counts."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.ipc
    import pyarrow.parquet as pq

    if file_format == modeling_pb2.FILE_FORMAT_PARQUET:
        source = pq.ParquetFile(pa.BufferReader(content))
        schema, metadata = source.schema_arrow, source.metadata
        limits.check_columns(len(schema))
        limits.check_rows(metadata.num_rows)
        encoded = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
        limits.check_decoded(encoded, "the file decoded")
        batches = source.iter_batches(batch_size=_BATCH_ROWS)
    else:
        try:
            reader = pyarrow.ipc.open_file(pa.BufferReader(content))
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        except pa.ArrowInvalid:
            reader = pyarrow.ipc.open_stream(pa.BufferReader(content))
            batches = iter(reader)
        schema = reader.schema
        limits.check_columns(len(schema))
    plain = pa.schema(
        [f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in schema], schema.metadata
    )
    rows = decoded = 0
    longest = [0] * len(plain)  # characters of each text column's longest value: its stored width
    out = []
    for batch in batches:
        rows += batch.num_rows
        limits.check_rows(rows)
        decoded += batch.nbytes
        limits.check_decoded(decoded, "the file decoded")
        if plain != schema:
            batch = pa.RecordBatch.from_arrays(
                [column.cast(field.type) for column, field in zip(batch.columns, plain, strict=True)], schema=plain
            )
            decoded += batch.nbytes
            limits.check_decoded(decoded, "the file decoded")
        for i, (column, field) in enumerate(zip(batch.columns, plain, strict=True)):
            if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
                longest[i] = max(longest[i], pc.max(pc.utf8_length(column)).as_py() or 0)
        limits.check_decoded(
            rows * sum(4 * chars + 8 for chars in longest),
            "the dataset as stored (text columns as wide as their longest value)",
        )
        out.append(batch)
    return pa.Table.from_batches(out, schema=plain)


def _read_arrow(
    content: bytes, file_format: int, text: set[str], limits: FileLimits
) -> tuple[pd.DataFrame, dict[str, int]]:
    """An Arrow IPC (file or stream) or Parquet file; timestamps and dates become epoch microseconds, ``text``
    columns (declared STRING, and the customer id) keep integers exactly as text."""
    import pyarrow as pa

    _FLAT_ARROW_TYPES = (
        pa.types.is_string,
        pa.types.is_large_string,
        pa.types.is_null,
    )

    name = modeling_pb2.FileFormat.Name(file_format).removeprefix("FILE_FORMAT_")
    try:
        table = _arrow_batches(content, file_format, limits)
        table.validate(full=True)  # strings that are not UTF-8 failed later, as INTERNAL (before 0.2.9)
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
        if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
            try:
                column = column.cast(pa.timestamp("us", tz=getattr(kind, "tz", None) or "UTC")).cast(pa.int64())
            except pa.ArrowInvalid:  # a date or time past what microseconds since 1970 hold (INTERNAL before 0.2.9)
                raise InvalidArgument(
                    f"column {field.name!r} holds a time outside years 1 to 9999",
                    reason="VALUE_NOT_ALLOWED",
                    violations=[FieldViolation("chunk", f"column {field.name!r}: times within years 1 to 9999")],
                ) from None
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
    dataset: modeling_pb2.Dataset,
    file_format: int,
    content: bytes,
    limits: FileLimits,
    sensitive_names: Collection[str] = (),
) -> tuple[Frame, list[RowProblem], int]:
    """A CSV, Arrow IPC or Parquet file as a Frame; declared columns (by name) fix the type, role and
    sensitivity of those columns; an undeclared sensitivity is level 3 for ``sensitive_names``."""
    if not content:
        raise InvalidArgument("the uploaded file is empty", violations=[FieldViolation("chunk", "send the file")])
    # Ids are text unless declared otherwise: read as numbers they lose leading zeros and, past 2^53, digits.
    text = {c.name for c in dataset.columns if c.type in STRING_TYPES}
    if dataset.customer_id_column and not any(c.name == dataset.customer_id_column and c.type for c in dataset.columns):
        text.add(dataset.customer_id_column)
    if file_format in (modeling_pb2.FILE_FORMAT_CSV, modeling_pb2.FILE_FORMAT_UNSPECIFIED):
        numeric = {c.name for c in dataset.columns if c.type in NUMERIC_TYPES}
        table, inferred = _read_csv(content, text, numeric)
    elif file_format in (modeling_pb2.FILE_FORMAT_ARROW_IPC, modeling_pb2.FILE_FORMAT_PARQUET):
        table, inferred = _read_arrow(content, file_format, text, limits)
    else:
        raise InvalidArgument(
            f"unknown file format {file_format}", violations=[FieldViolation("format", "CSV, ARROW_IPC or PARQUET")]
        )
    limits.check_rows(len(table))
    limits.check_columns(len(table.columns))
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
        default_sensitivity([spec], sensitive_names)
        data[spec.name] = to_storage(table[name], spec.type)
        if spec.role == ROLE.COLUMN_ROLE_ID and spec.type in NUMERIC_TYPES:
            _exact_ids(spec.name, data[spec.name])
    check_definition(
        modeling_pb2.Dataset(name=dataset.name, columns=columns, customer_id_column=dataset.customer_id_column),
        max_columns=limits.max_columns,
    )
    frame = pd.DataFrame(data)
    check_stored_size(frame, columns, limits.max_decoded_bytes)
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


def default_sensitivity(columns: Iterable[modeling_pb2.Column], sensitive_names: Collection[str]) -> None:
    """A column whose sensitivity is not declared is level 3 when named like a level-3 property (``phone``,
    ``id_number``, ``balance_fen``; setting ``sensitive_columns``), as svc_collect and svc_profile treat such names."""
    names = {name.lower() for name in sensitive_names}
    for column in columns:
        if not column.sensitivity and column.name.lower() in names:
            column.sensitivity = types_pb2.SENSITIVITY_LEVEL_3


def check_stored_size(frame: pd.DataFrame, columns: Sequence[modeling_pb2.Column], limit: int) -> None:
    """RESOURCE_EXHAUSTED (``max_decoded_bytes``) for a dataset whose stored form would be too large: a text column
    is stored as wide as its longest value (4 bytes a character), so one long cell among millions of rows takes
    gigabytes."""
    rows = len(frame)
    size = 0
    widest, widest_chars = "", 0
    for spec in columns:
        if spec.type in STRING_TYPES:
            chars = max((len(v) for v in frame[spec.name].to_numpy() if isinstance(v, str)), default=0)
            size += rows * (4 * chars + 1)
            if chars > widest_chars:
                widest, widest_chars = spec.name, chars
        else:
            size += rows * 8
    if size > limit:
        hint = f"; text column {widest!r} has a value of {widest_chars} characters" if widest else ""
        raise ResourceExhausted(
            f"the dataset would take {size} bytes stored, more than {limit} (max_decoded_bytes): every cell of a text "
            f"column is stored as wide as its longest value{hint}; shorten it, or split the dataset",
            metadata={"limit": "max_decoded_bytes"},
        )


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
