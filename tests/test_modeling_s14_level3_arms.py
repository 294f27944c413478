"""Session 14 (walk-sec F14): on a level 3+ treatment column, a control value or intervention that is absent and one
that is present with too few rows get the same refusal, and no refusal echoes the value (a caller could otherwise test
whether a phone number is in a dataset)."""

from __future__ import annotations

import pandas as pd
import pytest

from svc_common.errors import FailedPrecondition, InvalidArgument
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from tests.modeling_helpers import modeling_settings, running_service, upload_frame

PHONES = [f"1391111{i:04d}" for i in range(40)]


@pytest.fixture
def service(tmp_path, database_url):
    with running_service(modeling_settings(tmp_path, database_url)) as service:
        yield service


def _refusal(call) -> str:
    with pytest.raises((InvalidArgument, FailedPrecondition)) as caught:
        call()
    error = caught.value
    details = [v.description for v in getattr(error, "violations", [])]
    return f"{type(error).__name__}: {error} {details} {getattr(error, 'metadata', {})}"


def test_a_present_and_an_absent_level_3_value_are_refused_alike(service) -> None:
    data = pd.DataFrame({"cust": [f"c{i}" for i in range(40)], "mob": PHONES, "y": [i % 2 for i in range(40)]})
    level_3 = [pb.Column(name="mob", type=types_pb2.VALUE_TYPE_STRING, sensitivity=types_pb2.SENSITIVITY_LEVEL_3)]
    dataset = upload_frame(service, "l3", data, customer_id_column="cust", columns=level_3)

    def effects(control: str) -> str:
        request = pb.EstimateAverageEffectsRequest(
            dataset_id=dataset.dataset_id, treatment_column="mob", control_value=control, outcome_columns=["y"]
        )
        return _refusal(lambda: service.average_effects(request))

    present, absent = effects(PHONES[5]), effects("13900000000")
    assert present.replace(PHONES[5], "X") == absent.replace("13900000000", "X")
    assert PHONES[5] not in present and "13900000000" not in absent
    assert not any(phone in present for phone in PHONES)

    def uplift(*arms: str) -> str:
        request = pb.TrainUpliftRequest(
            model_name="u",
            dataset_id=dataset.dataset_id,
            treatment_column="mob",
            control_value=PHONES[0],
            outcome_column="y",
            interventions=[pb.Intervention(name=a) for a in arms],
        )
        return _refusal(lambda: service.uplift.train(request))

    assert PHONES[0] not in uplift(PHONES[0]) and PHONES[1] not in uplift(PHONES[1], PHONES[1])
