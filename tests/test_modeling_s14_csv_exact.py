"""Session 14 (walk-sec F4): CSV type inference never loses digits. A column of integers beyond ±2^53 (18-digit ID
numbers) or written with leading zeros (account numbers) is read as text, exactly as written; a column declared a
number that holds integers beyond ±2^53 is refused."""

from __future__ import annotations

import pytest

from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_modeling.files import FileLimits, read_file

CSV = pb.FILE_FORMAT_CSV
LIMITS = FileLimits(max_rows=1000)
STRING, INT = types_pb2.VALUE_TYPE_STRING, types_pb2.VALUE_TYPE_INT


def _read(content: bytes, *columns: pb.Column):
    frame, problems, _ = read_file(
        pb.Dataset(name="t", customer_id_column="cid", columns=columns), CSV, content, LIMITS
    )
    return frame, problems


def test_integers_beyond_2_to_the_53_are_read_as_text_exactly() -> None:
    frame, problems = _read(b"cid,idn,n\nc1,110101199003071234,1\nc2,110101199003071235,2\nc3,,3\n")
    assert frame.spec("idn").type == STRING and not problems
    assert list(frame.data["idn"]) == ["110101199003071234", "110101199003071235", None]
    assert frame.spec("n").type == INT and list(frame.data["n"]) == [1.0, 2.0, 3.0]  # small integers stay numbers


def test_integers_with_leading_zeros_are_read_as_text() -> None:
    frame, _ = _read(b"cid,account,share,day\nc1,000123,0.5,2024-05-06\nc2,004560,1.05,2024-05-07\n")
    assert frame.spec("account").type == STRING and list(frame.data["account"]) == ["000123", "004560"]
    assert frame.spec("share").type == types_pb2.VALUE_TYPE_DOUBLE  # 0.5 is a number, not a code


def test_a_column_declared_a_number_keeps_its_type_and_refuses_lost_digits() -> None:
    frame, _ = _read(b"cid,account\nc1,000123\nc2,7\n", pb.Column(name="account", type=INT))
    assert frame.spec("account").type == INT and list(frame.data["account"]) == [123.0, 7.0]
    with pytest.raises(InvalidArgument, match=r"'idn' holds integers beyond ±2\^53.*declare it STRING"):
        _read(b"cid,idn\nc1,110101199003071234\n", pb.Column(name="idn", type=types_pb2.VALUE_TYPE_DOUBLE))
