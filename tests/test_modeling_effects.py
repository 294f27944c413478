"""Average effects of each Hillstrom e-mail arm on visit, conversion and spend: the group-mean differences
of the data's README table must lie inside the service's confidence intervals (difference in means and AIPW);
and every bad input gets a status naming the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from modeling_helpers import modeling_settings, running_service, upload_frame

from svc_common.errors import FailedPrecondition, InvalidArgument, NotFound
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_modeling.datasets import (
    HILLSTROM_ARMS,
    HILLSTROM_CONTROL,
    HILLSTROM_GROUP_MEANS,
    HILLSTROM_OUTCOMES,
    hillstrom_bytes,
)

README_EFFECTS = {
    (arm, outcome): HILLSTROM_GROUP_MEANS[arm][1 + i] - HILLSTROM_GROUP_MEANS[HILLSTROM_CONTROL][1 + i]
    for arm in HILLSTROM_ARMS
    for i, outcome in enumerate(HILLSTROM_OUTCOMES)
}


@pytest.fixture(scope="module")
def hillstrom_service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hillstrom")
    with running_service(modeling_settings(tmp)) as service:
        dataset = service.upload_file(pb.Dataset(name="hillstrom"), pb.FILE_FORMAT_CSV, hillstrom_bytes()).dataset
        yield service, dataset.dataset_id


def _request(dataset_id: str, **overrides) -> pb.EstimateAverageEffectsRequest:
    values = {
        "dataset_id": dataset_id,
        "treatment_column": "segment",
        "control_value": HILLSTROM_CONTROL,
        "outcome_columns": list(HILLSTROM_OUTCOMES),
        **overrides,
    }
    return pb.EstimateAverageEffectsRequest(**values)


@pytest.mark.parametrize("method", ["difference_in_means", "aipw"])
def test_hillstrom_arm_effects_match_the_readme_within_intervals(hillstrom_service, method: str) -> None:
    service, dataset_id = hillstrom_service
    covariates = ["recency", "history", "mens", "womens", "zip_code", "newbie", "channel"]
    response = service.average_effects(_request(dataset_id, method=method, covariates=covariates, random_seed=7))
    assert response.method == method
    found = {(e.arm, e.outcome): e for e in response.effects}
    assert set(found) == set(README_EFFECTS)
    for key, expected in README_EFFECTS.items():
        e = found[key]
        assert e.effect.ci_low <= expected <= e.effect.ci_high, (key, expected, e.effect)
        assert e.effect.ci_low > 0, f"{key}: every e-mail arm lifts every outcome significantly"
        assert e.effect.confidence == 0.95 and 0 <= e.effect.p_value < 0.05
        assert (e.arm_rows, e.control_rows) == (HILLSTROM_GROUP_MEANS[e.arm][0], 21_306)
    mens_visit = found[("Mens E-Mail", "visit")]
    assert mens_visit.arm_mean == pytest.approx(0.1828, abs=5e-5)
    assert mens_visit.effect.value == pytest.approx(0.0766, abs=0.004 if method == "aipw" else 1e-4)


def test_a_wider_confidence_gives_a_wider_interval(hillstrom_service) -> None:
    service, dataset_id = hillstrom_service
    narrow = service.average_effects(_request(dataset_id, outcome_columns=["visit"], confidence=0.8)).effects[0].effect
    wide = service.average_effects(_request(dataset_id, outcome_columns=["visit"], confidence=0.99)).effects[0].effect
    assert wide.ci_high - wide.ci_low > narrow.ci_high - narrow.ci_low
    assert narrow.value == wide.value


def test_bad_experiment_inputs_name_the_problem(hillstrom_service, tmp_path: Path) -> None:
    service, dataset_id = hillstrom_service
    cases = [
        ({"treatment_column": "nope"}, InvalidArgument, "treatment_column", "'nope' is not in the dataset"),
        ({"control_value": "Nobody"}, InvalidArgument, "control_value", "'Nobody' is not in column"),
        ({"control_value": ""}, InvalidArgument, "control_value", "no intervention"),
        ({"outcome_columns": []}, InvalidArgument, "outcome_columns", "at least one outcome"),
        ({"outcome_columns": ["zip_code"]}, InvalidArgument, "outcome_columns[0]", "holds text"),
        ({"method": "magic"}, InvalidArgument, "method", "unknown method"),
        ({"confidence": 1.5}, InvalidArgument, "confidence", "confidence"),
    ]
    for overrides, error, field, text in cases:
        with pytest.raises(error) as raised:
            service.average_effects(_request(dataset_id, **overrides))
        assert text in raised.value.message
        assert raised.value.violations[0].field == field
    with pytest.raises(NotFound):
        service.average_effects(_request("no-such-dataset"))

    rng = np.random.default_rng(0)
    small = pd.DataFrame({"arm": ["a"] * 100 + ["b"] * 5, "y": rng.normal(size=105), "c": [1.0] * 105})
    one_arm = pd.DataFrame({"arm": ["a"] * 50, "y": rng.normal(size=50)})
    ds_small = upload_frame(service, "small", small).dataset_id
    ds_one = upload_frame(service, "one", one_arm).dataset_id
    constant = pd.DataFrame({"arm": ["a", "b"] * 50, "y": rng.normal(size=100), "c": [1.0] * 100})
    ds_constant = upload_frame(service, "constant", constant).dataset_id
    with pytest.raises(FailedPrecondition, match="too few rows in arm 'b'"):
        service.average_effects(
            pb.EstimateAverageEffectsRequest(
                dataset_id=ds_small, treatment_column="arm", control_value="a", outcome_columns=["y"]
            )
        )
    with pytest.raises(InvalidArgument, match="single value"):
        service.average_effects(
            pb.EstimateAverageEffectsRequest(
                dataset_id=ds_one, treatment_column="arm", control_value="a", outcome_columns=["y"]
            )
        )
    with pytest.raises(InvalidArgument, match="'c' is constant"):
        service.average_effects(
            pb.EstimateAverageEffectsRequest(
                dataset_id=ds_constant,
                treatment_column="arm",
                control_value="a",
                outcome_columns=["y"],
                method="aipw",
                covariates=["c"],
            )
        )
