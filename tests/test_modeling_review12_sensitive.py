"""Review 2 of svc_modeling, F8: dataset columns of sensitivity level 3+ (phones, ID numbers, amounts) are withheld
from PreviewDataset and ReadRows for callers without an unmask role, and never appear in refusal messages."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from svc_common.errors import FailedPrecondition, InvalidArgument
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_common.server._call import CallInfo, Principal, _current
from svc_modeling import server
from tests.modeling_helpers import modeling_settings, running_service, upload_frame

LEVEL_3 = types_pb2.SENSITIVITY_LEVEL_3
PHONES = [f"1390000{i:04d}" for i in range(200)]


@pytest.fixture
def service(tmp_path, database_url):
    with running_service(modeling_settings(tmp_path, database_url)) as service:
        yield service


@pytest.fixture
def phones(service) -> pb.Dataset:
    data = pd.DataFrame(
        {
            "cid": [f"c{i}" for i in range(200)],
            "phone": PHONES,
            "amount_fen": [1000 + 7 * i for i in range(200)],
            "y": [i % 2 for i in range(200)],
            "arm": ["a" if i % 3 else "b" for i in range(200)],
            "one": [1] * 200,
        }
    )
    columns = [
        pb.Column(name="phone", type=types_pb2.VALUE_TYPE_STRING, sensitivity=LEVEL_3),
        pb.Column(name="amount_fen", type=types_pb2.VALUE_TYPE_MONEY_FEN, sensitivity=types_pb2.SENSITIVITY_LEVEL_4),
        pb.Column(name="one", sensitivity=LEVEL_3),
    ]
    return upload_frame(service, "phones", data, columns=columns, customer_id_column="cid")


def _as(roles: set[str], coroutine_function):
    async def scenario():
        _current.set(CallInfo("/m", "peer", {}, principal=Principal("tester", frozenset(roles))))
        return await coroutine_function()

    return asyncio.run(scenario())


def _read_all(service, dataset_id: str, roles: set[str]) -> list[pb.ReadRowsResponse]:
    servicer = server.DatasetServicer(service)

    async def read():
        return [
            page async for page in servicer.ReadRows(pb.ReadRowsRequest(dataset_id=dataset_id, batch_rows=150), None)
        ]

    return _as(roles, read)


def test_level_3_columns_are_withheld_unless_the_caller_may_unmask(service, phones) -> None:
    servicer = server.DatasetServicer(service)
    request = pb.PreviewDatasetRequest(dataset_id=phones.dataset_id, row_limit=50)
    preview = _as(set(), lambda: servicer.PreviewDataset(request, None))
    assert list(preview.masked_columns) == ["phone", "amount_fen", "one"]
    assert "1390000" not in str(preview) and "1007" not in str(preview)
    by_name = {s.column: s for s in preview.summaries}
    assert by_name["phone"].distinct == 200 and not by_name["phone"].top_values
    assert by_name["amount_fen"].max == 0 and by_name["amount_fen"].min == 0
    assert preview.rows[1].values[0].string_value == "c1" and not preview.rows[1].values[1].HasField("kind")
    assert by_name["y"].max == 1  # other columns as before

    pages = _read_all(service, phones.dataset_id, {"analyst"})
    assert [len(p.rows) for p in pages] == [150, 50]
    assert list(pages[0].masked_columns) == ["phone", "amount_fen", "one"] and not pages[1].masked_columns
    assert all(not r.values[1].HasField("kind") and not r.values[2].HasField("kind") for p in pages for r in p.rows)

    clear = _read_all(service, phones.dataset_id, {"unmask"})
    assert not clear[0].masked_columns and clear[0].rows[3].values[1].string_value == PHONES[3]
    assert _as({"admin"}, lambda: servicer.PreviewDataset(request, None)).rows[0].values[2].money_fen_value == 1000


def test_refusals_never_echo_level_3_values(service, phones) -> None:
    def refused(**fields) -> str:
        fields.setdefault("outcome_columns", ["y"])
        request = pb.EstimateAverageEffectsRequest(dataset_id=phones.dataset_id, **fields)
        with pytest.raises((InvalidArgument, FailedPrecondition)) as caught:
            service.average_effects(request)
        return str(caught.value) + str([v.description for v in getattr(caught.value, "violations", [])])

    message = refused(treatment_column="phone", control_value="x")
    assert "1390000" not in message and "not shown" in message
    message = refused(treatment_column="phone", control_value=PHONES[0])
    assert all(p not in message for p in PHONES)  # not even the caller's own (session 14: it confirmed presence)
    message = refused(treatment_column="arm", control_value="a", outcome_columns=["one"])
    assert "a level 3+ value, not shown" in message and "(1 in every row)" not in message
    train = pb.TrainModelRequest(
        model_name="m", dataset_id=phones.dataset_id, label_column="y", feature_columns=["one"]
    )
    with pytest.raises(InvalidArgument) as caught:
        service.models.train(train)
    assert "not shown" in str(caught.value)


def test_constant_columns_are_named_with_plain_values(service) -> None:
    data = pd.DataFrame({"c": [0.0] * 40, "x": range(40), "y": [0, 1] * 20})
    dataset = upload_frame(service, "const", data)
    request = pb.TrainModelRequest(
        model_name="m", dataset_id=dataset.dataset_id, label_column="y", feature_columns=["c"]
    )
    with pytest.raises(InvalidArgument) as caught:
        service.models.train(request)
    assert "is constant (0 in every row)" in str(caught.value) and "np.float64" not in str(caught.value)


def test_level_3_columns_are_sealed_at_rest(tmp_path, database_url) -> None:
    import io

    import numpy as np

    settings = modeling_settings(tmp_path, database_url)
    data = pd.DataFrame({"cid": ["c1", "c2", "c3"], "phone": PHONES[:3], "amount_fen": [100, 200, 300], "y": [0, 1, 0]})
    secret = [
        pb.Column(name="phone", type=types_pb2.VALUE_TYPE_STRING, sensitivity=LEVEL_3),
        pb.Column(name="amount_fen", type=types_pb2.VALUE_TYPE_MONEY_FEN, sensitivity=types_pb2.SENSITIVITY_LEVEL_4),
    ]
    with running_service(settings) as service:
        sealed = upload_frame(service, "sealed", data, columns=secret)
        plain = upload_frame(
            service, "plain", data, columns=[pb.Column(name="phone", type=types_pb2.VALUE_TYPE_STRING)]
        )
        assert sealed.content_digest == plain.content_digest  # the digest is of the rows, not of their sealing
        row = service.store.get_dataset(sealed.dataset_id)
        with np.load(io.BytesIO(service.store.get_blob(row["blob_id"])), allow_pickle=False) as archive:
            stored = {name: archive[name] for name in archive.files}
    assert {"s1", "s2"} <= set(stored) and "c1" not in stored and "c2" not in stored
    assert not any(PHONES[0] in str(values.tolist()) for values in stored.values())
    assert list(stored["c0"]) == ["c1", "c2", "c3"]  # other columns as they were
    with running_service(settings) as again:  # a fresh process (no cache), the same keyring
        _, frame = again.catalog.load(sealed.dataset_id)
        assert list(frame.data["phone"]) == PHONES[:3] and list(frame.data["amount_fen"]) == [100.0, 200.0, 300.0]


def test_fusion_does_not_echo_a_level_3_customer_id(service) -> None:
    from svc_modeling.fusion import fuse

    phone_id = [pb.Column(name="phone", type=types_pb2.VALUE_TYPE_STRING, sensitivity=LEVEL_3, role=pb.COLUMN_ROLE_ID)]
    survey = upload_frame(service, "x", pd.DataFrame({"phone": PHONES[:3], "nps": [1, 5, 9]}), columns=phone_id)
    ops = upload_frame(
        service, "o", pd.DataFrame({"phone": [PHONES[0]] * 2 + [PHONES[1]], "a": [1, 2, 3]}), columns=phone_id
    )
    with pytest.raises(FailedPrecondition) as caught:
        fuse(
            service.catalog.load(survey.dataset_id)[1],
            "phone",
            service.catalog.load(ops.dataset_id)[1],
            "phone",
            "inner",
        )
    assert "1 repeated customer ids (e.g. a level 3+ value, not shown)" in str(caught.value)
    assert PHONES[0] not in str(caught.value)
