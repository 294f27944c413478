"""Walk walkmod (session 17), minor findings of svc_modeling:

- EstimateDrivers with no factors named ranks the numeric and 0/1 FEATURE columns only: a text FEATURE column is
  adjusted for (no confounders named) or left out, not refused (it failed INVALID_ARGUMENT on Hillstrom's
  ``history_segment``); naming a text column as a factor stays INVALID_ARGUMENT naming it.
- A factor with two distinct values (0/1) is linear by definition: not ``nonlinear``, no threshold, and its
  response curve has its two values only (it was evaluated at 0.25 and 0.75 with a "threshold" at 0.125).
- A column name over 128 characters is refused saying its length and the limit (not "not letters, digits").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from modeling_helpers import finished, modeling_settings, running_service, upload_frame

from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_modeling.ingest import check_definition
from svc_modeling.methods import drivers as methods


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with running_service(modeling_settings(tmp_path_factory.mktemp("fixmod17"))) as running:
        yield running


def _estimate(service, **fields) -> pb.DriverAnalysis:
    job = finished(service, service.drivers.estimate(pb.EstimateDriversRequest(random_seed=1, **fields)))
    return service.drivers.get(job.result_name)


def mixed_features(n: int = 600, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    segment = rng.choice(["mens", "womens", "none"], size=n)
    x1 = rng.normal(size=n) + (segment == "mens")
    flag = rng.random(n) < 0.5
    y = 1.0 * x1 + 0.5 * flag + 0.8 * (segment == "womens") + rng.normal(0, 0.5, n)
    return pd.DataFrame({"segment": segment, "x1": x1, "flag": flag, "y": y})


def test_default_factors_are_the_numeric_and_boolean_feature_columns(service) -> None:
    dataset = upload_frame(service, "mixed", mixed_features())
    types = {c.name: c.type for c in dataset.columns}
    assert types["segment"] == types_pb2.VALUE_TYPE_STRING and types["flag"] == types_pb2.VALUE_TYPE_BOOL
    analysis = _estimate(service, dataset_id=dataset.dataset_id, outcome_column="y")
    assert {d.factor for d in analysis.drivers} == {"x1", "flag"}
    edges = {(e.cause, e.effect) for e in analysis.graph}
    # No confounders named: the text FEATURE column is adjusted for, and the graph says so.
    assert {("segment", "x1"), ("segment", "flag"), ("segment", "y")} <= edges
    by_factor = {d.factor: d for d in analysis.drivers}
    assert abs(by_factor["x1"].effect.value - 1.0) < 0.2
    # Confounders named: the text column is neither ranked nor used.
    named = _estimate(service, dataset_id=dataset.dataset_id, outcome_column="y", confounders=["x1"])
    assert [d.factor for d in named.drivers] == ["flag"]
    assert not any("segment" in (e.cause, e.effect) for e in named.graph)
    # Named explicitly, a text column stays refused, naming it.
    with pytest.raises(InvalidArgument, match="'segment' holds text") as raised:
        service.drivers.estimate(
            pb.EstimateDriversRequest(dataset_id=dataset.dataset_id, outcome_column="y", factors=["x1", "segment"])
        )
    assert raised.value.violations[0].field == "factors[1]"


def test_only_text_feature_columns_is_refused_listing_them(service) -> None:
    data = mixed_features(200)[["segment", "y"]].assign(channel=lambda d: np.where(d["y"] > 0, "web", "app"))
    dataset = upload_frame(service, "text_only", data)
    with pytest.raises(InvalidArgument, match=r"no numeric or 0/1 FEATURE column .*\(segment, channel\)") as raised:
        service.drivers.estimate(pb.EstimateDriversRequest(dataset_id=dataset.dataset_id, outcome_column="y"))
    assert raised.value.violations[0].field == "factors"


def test_a_binary_factor_is_linear_with_a_two_point_curve(service) -> None:
    rng = np.random.default_rng(11)
    n = 800
    w = rng.normal(size=n)
    coupon = (rng.random(n) < 0.5).astype(float)
    data = pd.DataFrame({"w": w, "coupon": coupon, "y": 1.0 * coupon + w + rng.normal(0, 0.3, n)})
    dataset = upload_frame(service, "binary", data)
    analysis = _estimate(
        service, dataset_id=dataset.dataset_id, outcome_column="y", factors=["coupon"], confounders=["w"]
    )
    (driver,) = analysis.drivers
    assert abs(driver.effect.value - 1.0) < 0.2
    assert not driver.nonlinear
    curve = service.drivers.response_curve(
        pb.ResponseCurveRequest(analysis_id=analysis.analysis_id, factor="coupon", points=5)
    )
    assert [p.factor_value for p in curve.points] == [0.0, 1.0]
    assert not curve.has_threshold and curve.threshold == 0.0
    assert curve.points[1].outcome.value - curve.points[0].outcome.value == pytest.approx(1.0, abs=0.2)
    # A continuous input keeps its evenly spaced points.
    spread = service.drivers.response_curve(pb.ResponseCurveRequest(analysis_id=analysis.analysis_id, factor="w"))
    assert len(spread.points) == 20


def test_factor_grid_takes_a_two_valued_factor_at_its_values() -> None:
    assert methods.factor_grid(np.array([0.0, 1.0, 1.0, 0.0, np.nan]), 12).tolist() == [0.0, 1.0]
    assert methods.factor_grid(np.array([2.0, 5.0, 5.0]), 20).tolist() == [2.0, 5.0]
    assert methods.factor_grid(np.array([0.0, 1.0, 2.0]), 5).tolist() == [0.0, 0.5, 1.0, 1.5, 2.0]


def _definition(name: str) -> pb.Dataset:
    return pb.Dataset(name="d", columns=[pb.Column(name=name, type=types_pb2.VALUE_TYPE_DOUBLE)])


def test_a_column_name_over_128_characters_is_refused_naming_the_limit(service) -> None:
    check_definition(_definition("c" * 128), max_columns=10)
    with pytest.raises(InvalidArgument, match="200 characters: at most 128") as raised:
        check_definition(_definition("c" * 200), max_columns=10)
    violation = raised.value.violations[0]
    assert violation.field == "dataset.columns[0].name" and violation.reason == "INVALID_NAME"
    assert "not a column name" not in raised.value.message
    for bad in ("1abc", "abc\n"):  # a trailing new line passed the old pattern's "$"
        with pytest.raises(InvalidArgument, match="not a column name: letters, digits"):
            check_definition(_definition(bad), max_columns=10)
    # The same through an upload, whose header names the columns.
    content = ("c" * 200 + ",b\n1,2\n").encode()
    with pytest.raises(InvalidArgument, match="200 characters: at most 128"):
        service.upload_file(pb.Dataset(name="long"), pb.FILE_FORMAT_CSV, content)
