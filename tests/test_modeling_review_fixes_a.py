"""Fixes of the svc_modeling review (findings F3-F20 of revmod): each test reproduces a defect on simulated
data with a known answer, or a bad input that must be refused with a status naming the field or column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from modeling_helpers import finished, modeling_settings, running_service, upload_frame

from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with running_service(modeling_settings(tmp_path_factory.mktemp("fixes_a"))) as running:
        yield running


# -- F3, F4: survey fusion ---------------------------------------------------------------------------------


def _fuse(service, survey: pd.DataFrame, ops: pd.DataFrame, join: str = "inner") -> pd.DataFrame:
    x = upload_frame(service, "survey", survey, customer_id_column="customer_id")
    o = upload_frame(service, "ops", ops, customer_id_column="cid")
    job = service.fuse_survey(
        pb.FuseSurveyRequest(
            name="fused", survey_dataset_id=x.dataset_id, operations_dataset_id=o.dataset_id, join=join
        )
    )
    return service.catalog.load(finished(service, job).result_name)[1].data


def test_a_missing_customer_id_joins_nothing(service) -> None:
    survey = pd.DataFrame({"customer_id": ["c1", "c2", None], "nps": [9, 3, 7]})
    ops = pd.DataFrame({"cid": ["c1", "c2", None, None], "assets": [100.0, 200.0, 555.0, 777.0]})
    inner = _fuse(service, survey, ops)
    assert inner.to_dict("records") == [
        {"customer_id": "c1", "nps": 9.0, "assets": 100.0},
        {"customer_id": "c2", "nps": 3.0, "assets": 200.0},
    ]
    left = _fuse(service, survey, ops, "left")
    assert len(left) == 3
    assert left["customer_id"].iloc[2] is None and np.isnan(left["assets"].iloc[2]) and left["nps"].iloc[2] == 7


def test_an_ops_column_whose_suffixed_name_is_taken_gets_a_free_name(service) -> None:
    survey = pd.DataFrame({"customer_id": ["c1", "c2"], "x": [1.0, 2.0], "x_ops": [3.0, 4.0]})
    ops = pd.DataFrame({"cid": ["c1", "c2"], "x": [5.0, 6.0]})
    fused = _fuse(service, survey, ops)
    assert fused.to_dict("list") == {
        "customer_id": ["c1", "c2"],
        "x": [1.0, 2.0],
        "x_ops": [3.0, 4.0],
        "x_ops2": [5.0, 6.0],
    }
