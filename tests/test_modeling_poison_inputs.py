"""Inputs svc_modeling accepted and then mishandled (walk of session 26): erasing customer "01000" (or "1e3",
"1000.0") deleted customer 1000's rows from a numeric id column; ImportRows rounded integers past 2**53 (two ids
became one); a stored number its column type cannot hold made every preview of the dataset INTERNAL; an Arrow file
with a date past microseconds' range or strings that are not UTF-8 was INTERNAL instead of INVALID_ARGUMENT."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from collect_helpers import KEYRING
from modeling_helpers import modeling_settings, running_service, upload_frame

from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.common.v1 import errors_pb2, types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_common.protection import JsonKeyProvider, SystemEventSigner
from svc_modeling.catalog import rows_of
from svc_modeling.frame import Frame
from svc_profile.erasure import erasure_events

VT = types_pb2
SIGNER = SystemEventSigner(JsonKeyProvider(KEYRING))


def test_erasing_a_customer_removes_only_the_rows_whose_number_is_its_id(tmp_path: Path) -> None:
    now = time.time_ns() // 1000
    with running_service(modeling_settings(tmp_path, keyring_json=KEYRING)) as service:
        data = pd.DataFrame({"customer_no": [1000, 2000, 0], "y": [0.1, 0.2, 0.3]})
        column = pb.Column(name="customer_no", type=VT.VALUE_TYPE_INT)
        dataset = upload_frame(service, "numbers", data, customer_id_column="customer_no", columns=[column])
        for other in ("01000", "1e3", "+1000", "1000.0", "1_000", " 1000", "1000.000000000000001", "-0", "00"):
            (event,) = erasure_events(f"p-{other}", [other], now, SIGNER)
            assert service.erasures.eraser.handle([event], "c") == 0, other
        (event,) = erasure_events("p-1000", ["1000"], now, SIGNER)
        assert service.erasures.eraser.handle([event], "c") == 1
        assert list(service.catalog.load(dataset.dataset_id)[1].data["customer_no"]) == [2000, 0]


def _import(service, column_type: int, value: types_pb2.Value) -> pb.ImportRowsResponse:
    columns = [
        pb.Column(name="cid", type=VT.VALUE_TYPE_STRING, role=pb.COLUMN_ROLE_ID),
        pb.Column(name="x", type=column_type),
    ]
    dataset = pb.Dataset(name=f"d{time.time_ns()}", columns=columns, customer_id_column="cid")
    rows = [pb.Row(values=[types_pb2.Value(string_value="c1"), value])]
    rows.append(pb.Row(values=[types_pb2.Value(string_value="c2"), types_pb2.Value()]))
    return service.import_rows([pb.ImportRowsRequest(dataset=dataset, rows=rows)])


def test_import_rows_refuses_integers_a_number_column_cannot_keep(tmp_path: Path) -> None:
    with running_service(modeling_settings(tmp_path)) as service:
        for column_type, value in (
            (VT.VALUE_TYPE_INT, types_pb2.Value(int_value=(1 << 53) + 1)),
            (VT.VALUE_TYPE_INT, types_pb2.Value(int_value=-(1 << 63))),
            (VT.VALUE_TYPE_MONEY_FEN, types_pb2.Value(money_fen_value=(1 << 63) - 1)),
        ):
            response = _import(service, column_type, value)
            (problem,) = response.problems
            reason = errors_pb2.ErrorReason.Name(problem.reason)
            assert (problem.row_index, reason) == (0, "ERROR_REASON_VALUE_NOT_ALLOWED") and "±2^53" in problem.message
        exact = _import(service, VT.VALUE_TYPE_INT, types_pb2.Value(int_value=1 << 53))
        assert not exact.problems


def test_the_last_moment_of_9999_is_stored_and_read_back(tmp_path: Path) -> None:
    last = types_pb2.Value()
    last.timestamp_value.seconds, last.timestamp_value.nanos = 253_402_300_799, 999_999_999
    with running_service(modeling_settings(tmp_path)) as service:
        response = _import(service, VT.VALUE_TYPE_TIMESTAMP, last)
        frame = service.catalog.load(response.dataset.dataset_id)[1]
        (row, _) = rows_of(frame, 0, 2)
        assert row.values[1].timestamp_value.seconds == 253_402_300_799


def test_a_stored_number_its_type_cannot_hold_reads_as_missing() -> None:
    """As stored before 0.2.9 (an INT cell of 1e300 from a file, 2**63 - 1 rounded up as a float64)."""
    columns = [pb.Column(name="x", type=VT.VALUE_TYPE_INT), pb.Column(name="t", type=VT.VALUE_TYPE_TIMESTAMP)]
    frame = Frame(pd.DataFrame({"x": [1e300, float(1 << 63), 7.0], "t": [2.6e17, -1e300, 1.0]}), columns)
    rows = rows_of(frame, 0, 3)
    assert [r.values[0].WhichOneof("kind") for r in rows] == [None, None, "int_value"]
    assert [r.values[1].WhichOneof("kind") for r in rows] == [None, None, "timestamp_value"]


def _arrow_file(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


@pytest.mark.parametrize(
    "table",
    [
        pa.table({"cid": ["a"], "d": pa.array([2_147_483_647], pa.date32())}),
        pa.table(
            {
                "cid": pa.Array.from_buffers(
                    pa.string(),
                    1,
                    [None, pa.py_buffer(b"\x00\x00\x00\x00\x03\x00\x00\x00"), pa.py_buffer(b"\xff\xfeA")],
                )
            }
        ),
    ],
    ids=["date-past-microseconds", "not-utf8"],
)
def test_an_arrow_file_it_cannot_read_is_invalid_argument(tmp_path: Path, table: pa.Table) -> None:
    with running_service(modeling_settings(tmp_path)) as service, pytest.raises(InvalidArgument):
        service.upload_file(pb.Dataset(name="arrow"), pb.FILE_FORMAT_ARROW_IPC, _arrow_file(table))
