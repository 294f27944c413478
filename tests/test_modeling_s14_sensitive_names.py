"""Session 14 (walk-sec F3): a dataset column named like a level-3 property (``phone``, ``id_number``, ``balance_fen``
— svc_collect's and svc_profile's default sensitive names) is level 3 unless the upload or import declares its
sensitivity: sealed at rest, withheld from ReadRows and PreviewDataset."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pandas as pd
import pytest

from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_common.server._call import CallInfo, Principal, _current
from svc_modeling import server
from tests.modeling_helpers import modeling_settings, running_service, upload_frame

LEVEL_1, LEVEL_3 = types_pb2.SENSITIVITY_LEVEL_1, types_pb2.SENSITIVITY_LEVEL_3
PHONES = ["13912345678", "13800000001", "13700000002"]


@pytest.fixture
def service(tmp_path, database_url):
    with running_service(modeling_settings(tmp_path, database_url)) as service:
        yield service


def _anonymous(coroutine_function):
    async def scenario():
        _current.set(CallInfo("/m", "peer", {}, principal=Principal("anonymous", frozenset())))
        return await coroutine_function()

    return asyncio.run(scenario())


def _stored_arrays(service, dataset_id: str) -> dict[str, np.ndarray]:
    row = service.store.get_dataset(dataset_id)
    with np.load(io.BytesIO(service.store.get_blob(row["blob_id"])), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def test_undeclared_columns_named_like_level_3_properties_are_level_3(service) -> None:
    data = pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3"],
            "Phone": PHONES,
            "id_number": ["110101199003071234", "110101199003071235", "110101199003071236"],
            "balance_fen": [987654321, 5, 7],
            "score": [1.5, 2.5, 3.5],
        }
    )
    dataset = upload_frame(service, "crm extract", data, customer_id_column="customer_id")
    levels = {c.name: c.sensitivity for c in dataset.columns}
    assert levels == {"customer_id": 0, "Phone": LEVEL_3, "id_number": LEVEL_3, "balance_fen": LEVEL_3, "score": 0}

    stored = _stored_arrays(service, dataset.dataset_id)
    assert {"s1", "s2", "s3"} <= set(stored) and "c1" not in stored and "c3" not in stored
    assert not any(PHONES[0] in str(values.tolist()) for values in stored.values())

    servicer = server.DatasetServicer(service)
    preview = _anonymous(lambda: servicer.PreviewDataset(pb.PreviewDatasetRequest(dataset_id=dataset.dataset_id), None))
    assert list(preview.masked_columns) == ["Phone", "id_number", "balance_fen"]
    assert PHONES[0] not in str(preview) and "110101199003071234" not in str(preview)

    async def read():
        request = pb.ReadRowsRequest(dataset_id=dataset.dataset_id)
        return [page async for page in servicer.ReadRows(request, None)]

    pages = _anonymous(read)
    assert list(pages[0].masked_columns) == ["Phone", "id_number", "balance_fen"]
    assert "13912345678" not in str(pages) and "987654321" not in str(pages)
    assert pages[0].rows[0].values[4].double_value == 1.5


def test_a_declared_sensitivity_wins_over_the_name(service) -> None:
    data = pd.DataFrame({"customer_id": ["c1", "c2"], "phone": PHONES[:2], "amount": [1, 2]})
    declared = [pb.Column(name="phone", sensitivity=LEVEL_1)]
    dataset = upload_frame(service, "declared", data, customer_id_column="customer_id", columns=declared)
    assert {c.name: c.sensitivity for c in dataset.columns} == {"customer_id": 0, "phone": LEVEL_1, "amount": LEVEL_3}


def test_imported_rows_get_the_same_default(service) -> None:
    columns = [
        pb.Column(name="cust", type=types_pb2.VALUE_TYPE_STRING, role=pb.COLUMN_ROLE_ID),
        pb.Column(name="mobile", type=types_pb2.VALUE_TYPE_STRING),
        pb.Column(name="email", type=types_pb2.VALUE_TYPE_STRING, sensitivity=types_pb2.SENSITIVITY_LEVEL_2),
    ]
    rows = [
        pb.Row(values=[types_pb2.Value(string_value=v) for v in (f"c{i}", PHONES[i], f"u{i}@example.com")])
        for i in range(3)
    ]
    definition = pb.Dataset(name="import", customer_id_column="cust", columns=columns)
    dataset = service.import_rows(iter([pb.ImportRowsRequest(dataset=definition, rows=rows)])).dataset
    assert [c.sensitivity for c in dataset.columns] == [0, LEVEL_3, types_pb2.SENSITIVITY_LEVEL_2]
    assert "s1" in _stored_arrays(service, dataset.dataset_id)
