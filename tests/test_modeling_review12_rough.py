"""Review 2 of svc_modeling, rough edges: NUL in a file's cell is a row problem (F11), a treatment used as its own
outcome (F16), cyclic graphs and a factor named as its own confounder (F12), messages that say what is allowed
(F13), and a dataset whose default features include constant columns trains (F14)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_modeling.snapshot import check_window_names
from tests.modeling_helpers import finished, modeling_settings, running_service, upload_frame


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with running_service(modeling_settings(tmp_path_factory.mktemp("rough"))) as service:
        yield service


def _refused(call, field: str) -> str:
    with pytest.raises(InvalidArgument) as caught:
        call()
    assert caught.value.violations[0].field == field, caught.value.violations
    return str(caught.value)


def _upload(service, content: bytes, **dataset) -> pb.UploadFileResponse:
    return service.upload_file(pb.Dataset(name="f", **dataset), pb.FILE_FORMAT_CSV, content)


def test_nul_in_a_cell_is_a_row_problem_in_files_and_imports(service) -> None:
    response = _upload(service, b"cid,x,y\n1,a\x00b,1\n2,c,0\n3,d,1\n")
    assert response.dataset.row_count == 2
    assert [(p.row_index, p.column) for p in response.problems] == [(0, "x")]
    assert "NUL" in response.problems[0].message
    columns = [pb.Column(name="s", type=types_pb2.VALUE_TYPE_STRING)]
    rows = [pb.Row(values=[types_pb2.Value(string_value=v)]) for v in ("a", "e\x00f", "g")]
    imported = service.import_rows(
        iter([pb.ImportRowsRequest(dataset=pb.Dataset(name="i", columns=columns), rows=rows)])
    )
    assert imported.dataset.row_count == 2 and [p.row_index for p in imported.problems] == [1]


def test_csv_headers_are_taken_as_written(service) -> None:
    message = _refused(lambda: _upload(service, b"a,,b\n1,2,3\n"), "chunk")
    assert "column 2 of the CSV header has no name" in message and "Unnamed" not in message
    assert "'a' appears twice" in _refused(lambda: _upload(service, b"a,b,a\n1,2,3\n"), "chunk")


def test_the_treatment_is_not_an_outcome(service) -> None:
    data = pd.DataFrame({"visit": [0, 1] * 50, "y": np.arange(100.0)})
    dataset = upload_frame(service, "t", data)
    request = pb.EstimateAverageEffectsRequest(
        dataset_id=dataset.dataset_id, treatment_column="visit", control_value="0", outcome_columns=["y", "visit"]
    )
    assert "is the treatment" in _refused(lambda: service.average_effects(request), "outcome_columns[1]")


@pytest.fixture(scope="module")
def drivers_data(service) -> pb.Dataset:
    rng = np.random.default_rng(2)
    n = 600
    assets, age, coupon = rng.normal(size=n), rng.normal(size=n), rng.integers(0, 2, n)
    outcome = coupon + 1.5 * assets + np.sin(age) + rng.normal(scale=0.5, size=n)
    data = pd.DataFrame({"assets": assets, "age": age, "coupon": coupon, "outcome": outcome})
    return upload_frame(service, "drivers", data)


def test_graphs_must_be_acyclic_and_factors_are_not_confounders(service, drivers_data) -> None:
    def estimate(**fields):
        request = pb.EstimateDriversRequest(dataset_id=drivers_data.dataset_id, outcome_column="outcome", **fields)
        return service.drivers.estimate(request)

    def edge(cause: str, effect: str) -> pb.GraphEdge:
        return pb.GraphEdge(cause=cause, effect=effect)

    assert "loop" in _refused(lambda: estimate(factors=["coupon"], graph=[edge("coupon", "coupon")]), "graph[0]")
    cycle = [edge("assets", "coupon"), edge("coupon", "outcome"), edge("outcome", "assets")]
    message = _refused(lambda: estimate(factors=["coupon"], confounders=["assets"], graph=cycle), "graph[2]")
    assert "cycle (assets → coupon → outcome → assets)" in message
    message = _refused(lambda: estimate(factors=["coupon"], confounders=["coupon", "assets"]), "confounders[0]")
    assert "its own confounder" in message
    job = finished(service, estimate(method="linear_dml", confounders=["assets", "age"]))
    analysis = service.drivers.get(job.result_name)
    assert [d.factor for d in analysis.drivers] == ["coupon"]  # the named confounders are adjusted for, not ranked


def test_messages_say_what_is_allowed(service, drivers_data) -> None:
    def train(**fields):
        request = pb.TrainModelRequest(model_name="m", dataset_id=drivers_data.dataset_id, label_column="coupon")
        for key, value in fields.items():
            if key == "hyperparameters":
                request.hyperparameters.update(value)
            else:
                setattr(request, key, value)
        return service.models.train(request)

    message = _refused(lambda: train(hyperparameters={"calibration": "foo"}), "hyperparameters[calibration]")
    assert "isotonic, sigmoid, none" in message
    assert "0.05 to 0.5" in _refused(lambda: train(test_fraction=1.5), "test_fraction")
    assert "lower-case letters" in _refused(lambda: train(model_name="../../etc"), "model_name")
    assert "0 (every version)" in _refused(lambda: service.models.delete("m", -3), "version")
    assert "job_id is required" in _refused(lambda: service.jobs.get(""), "job_id")
    assert "1 to 400" in _refused(lambda: check_window_names(["count.login.7d", "count.login.401d"]), "features[1]")
    _refused(lambda: check_window_names(["count.login.0d"]), "features[0]")


def test_constant_default_features_are_left_out_not_refused(service) -> None:
    rng = np.random.default_rng(1)
    n = 400
    x = rng.normal(size=n)
    data = pd.DataFrame({"x": x, "count.fund_view.1d": 0.0, "y": (x + rng.normal(size=n) > 0).astype(int)})
    dataset = upload_frame(service, "snap", data)
    request = pb.TrainModelRequest(
        model_name="defaults", dataset_id=dataset.dataset_id, label_column="y", hyperparameters={"n_estimators": "20"}
    )
    model = service.models.get(finished(service, service.models.train(request)).result_name.split("/")[0])
    assert list(model.feature_columns) == ["x"]
    request.feature_columns.append("count.fund_view.1d")  # named: still refused, with the reason
    assert "is constant (0 in every row)" in _refused(lambda: service.models.train(request), "feature_columns[0]")
