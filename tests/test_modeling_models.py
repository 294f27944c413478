"""Propensity models on Hillstrom: calibrated gradient boosting with held-out metrics, a versioned registry
with lineage and stages, online prediction, batch scoring into a stored score table, cancel mid-fit, and a
precise refusal for each bad input (leaky feature, non-binary label, constant column, unknown model)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from modeling_helpers import finished, modeling_settings, running_service, upload_frame

from svc_common.errors import InvalidArgument, NotFound, Unavailable
from svc_common.pb.qiming.common.v1 import job_pb2, types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_modeling.datasets import load_hillstrom

FEATURES = ["recency", "history", "mens", "womens", "zip_code", "newbie", "channel", "segment"]


@pytest.fixture(scope="module")
def hillstrom(tmp_path_factory):
    data = load_hillstrom()
    data.insert(0, "customer_id", [f"h{i:05d}" for i in range(len(data))])
    with running_service(modeling_settings(tmp_path_factory.mktemp("models"))) as service:
        dataset = upload_frame(service, "hillstrom", data, customer_id_column="customer_id")
        yield service, dataset, data


def _train(service, dataset_id: str, **overrides) -> job_pb2.Job:
    values = {
        "model_name": "visit_propensity",
        "dataset_id": dataset_id,
        "label_column": "visit",
        "feature_columns": FEATURES,
        "hyperparameters": {"n_estimators": "60", "num_leaves": "15"},
        "random_seed": 3,
        **overrides,
    }
    return service.models.train(pb.TrainModelRequest(**values), "analyst")


def test_propensity_model_is_calibrated_evaluated_versioned_and_scores(hillstrom) -> None:
    service, dataset, data = hillstrom
    job = finished(service, _train(service, dataset.dataset_id))
    assert job.result_name == "visit_propensity/1"
    model = service.models.get("visit_propensity", 1)
    m = model.metrics
    assert 0.6 < m.auc < 0.8, m.auc
    assert m.calibration_error < 0.02 and abs(m.base_rate - data["visit"].mean()) < 0.01
    assert (m.train_rows, m.test_rows) == (48_000, 16_000)
    assert len(m.lift_by_decile) == 10 and m.lift_by_decile[0] > 2 * m.lift_by_decile[-1]
    assert np.mean(m.lift_by_decile) == pytest.approx(1.0, abs=0.01)
    assert len(m.calibration) == 10 and sum(b.count for b in m.calibration) == 16_000
    assert sum(f.importance for f in model.feature_importance) == pytest.approx(1.0)
    assert {f.feature for f in model.feature_importance} == set(FEATURES)
    assert model.lineage["dataset_digest"] == dataset.content_digest and model.lineage["training_job"] == job.job_id
    assert model.lineage["parent_version"] == "" and model.created_by == "analyst"
    assert model.stage == pb.MODEL_STAGE_CANDIDATE and model.hyperparameters["calibration"] == "isotonic"

    # A second version, with lineage to the first; stages pick what version 0 means.
    finished(service, _train(service, dataset.dataset_id, algorithm="sklearn_hist_gbm"))
    second = service.models.get("visit_propensity", 0)
    assert (second.version, second.lineage["parent_version"], second.algorithm) == (2, "1", "sklearn_hist_gbm")
    assert second.metrics.auc > 0.6
    service.models.set_stage("visit_propensity", 1, pb.MODEL_STAGE_PRODUCTION)
    assert service.models.get("visit_propensity", 0).version == 1
    service.models.set_stage("visit_propensity", 2, pb.MODEL_STAGE_PRODUCTION)
    assert service.models.get("visit_propensity", 1).stage == pb.MODEL_STAGE_ARCHIVED
    assert [v.version for v in service.models.list("visit_propensity", None, 10)] == [2, 1]

    # Online prediction of a few rows equals the batch scores of the same customers.
    head = data.head(5)
    rows = []
    for _, r in head.iterrows():
        values = []
        for name in FEATURES:
            v = r[name]
            values.append(
                types_pb2.Value(string_value=v) if isinstance(v, str) else types_pb2.Value(double_value=float(v))
            )
        rows.append(pb.Row(values=values))
    online = service.models.predict(
        pb.PredictRequest(model_name="visit_propensity", version=1, columns=FEATURES, rows=rows)
    )
    assert online.model_version == 1 and len(online.scores) == 5 and all(0 <= s <= 1 for s in online.scores)

    done = finished(
        service,
        service.models.score_customers(
            pb.ScoreCustomersRequest(model_name="visit_propensity", version=1, dataset_id=dataset.dataset_id)
        ),
    )
    table, scores = service.catalog.load(done.result_name)
    assert table.origin == "model_scores" and table.row_count == 64_000
    assert table.lineage["model_version"] == "1" and table.lineage["profile_writeback"] == "not connected"
    assert table.name == "score_visit_propensity_v1"
    assert scores.data["customer_id"].tolist()[:5] == head["customer_id"].tolist()
    assert scores.data["score"].to_numpy()[:5] == pytest.approx(list(online.scores))
    # Higher scores visit more: the top decile of the stored scores against the bottom one.
    ranked = data["visit"].to_numpy()[np.argsort(-scores.data["score"].to_numpy())]
    assert ranked[:6400].mean() > 2 * ranked[-6400:].mean()


def test_regression_models_report_rmse_and_r2(hillstrom) -> None:
    service, dataset, _ = hillstrom
    job = _train(
        service,
        dataset.dataset_id,
        model_name="history_regression",
        task=pb.MODEL_TASK_REGRESSION,
        label_column="history",
        feature_columns=["recency", "mens", "womens", "zip_code", "newbie", "channel"],
    )
    model = service.models.get(finished(service, job).result_name.split("/")[0])
    assert model.task == pb.MODEL_TASK_REGRESSION and model.metrics.rmse > 0 and model.metrics.r2 > 0.0


def test_a_training_job_can_be_cancelled_mid_fit(hillstrom) -> None:
    service, dataset, _ = hillstrom
    job = _train(
        service,
        dataset.dataset_id,
        model_name="slow_model",
        hyperparameters={"n_estimators": "5000", "learning_rate": "0.001"},
    )
    deadline = time.monotonic() + 60
    while service.jobs.get(job.job_id).progress_percent <= 10 and time.monotonic() < deadline:
        time.sleep(0.01)  # wait until it is boosting
    service.jobs.cancel(job.job_id)
    ended = service.jobs.wait(job.job_id, 120)
    assert ended.state == job_pb2.JOB_STATE_CANCELLED
    assert ended.progress_percent < 70  # stopped while boosting, not after the fit
    with pytest.raises(NotFound):
        service.models.get("slow_model")


def test_bad_training_inputs_are_refused_naming_the_problem(hillstrom) -> None:
    service, dataset, data = hillstrom
    cases = [
        (
            {"label_column": "conversion", "feature_columns": ["recency", "spend"]},
            "feature_columns",
            "'spend' looks like the outcome in disguise",
        ),
        ({"label_column": "spend"}, "label_column", "not binary"),
        ({"label_column": "nope"}, "label_column", "'nope' is not in the dataset"),
        ({"feature_columns": ["recency", "nope"]}, "feature_columns[1]", "'nope' is not in the dataset"),
        ({"model_name": "Bad Name"}, "model_name", "not valid"),
        ({"algorithm": "xgboost"}, "algorithm", "unknown algorithm"),
        ({"hyperparameters": {"n_estimators": "many"}}, "hyperparameters[n_estimators]", "not an integer"),
        ({"hyperparameters": {"depth": "3"}}, "hyperparameters[depth]", "unknown hyperparameter"),
        ({"test_fraction": 0.9}, "test_fraction", "out of range"),
        ({"task": pb.MODEL_TASK_UPLIFT}, "task", "PROPENSITY or REGRESSION"),
    ]
    for overrides, field, text in cases:
        with pytest.raises(InvalidArgument) as raised:
            _train(service, dataset.dataset_id, **overrides)
        assert text in raised.value.message, raised.value.message
        assert raised.value.violations[0].field == field
    constant = data.head(500).assign(flat=1.0)
    flat = upload_frame(service, "flat", constant)
    with pytest.raises(InvalidArgument, match="'flat' is constant"):
        _train(service, flat.dataset_id, feature_columns=["recency", "flat"])
    with pytest.raises(NotFound):
        service.models.get("no_such_model")
    with pytest.raises(NotFound):
        _train(service, "no-such-dataset")
    finished(service, _train(service, dataset.dataset_id, model_name="m2"))
    with pytest.raises(Unavailable, match="set profile_address"):  # scoring everyone: a snapshot of profiles
        service.models.score_customers(pb.ScoreCustomersRequest(model_name="m2"))
    infinite = [types_pb2.Value(double_value=float("inf")), types_pb2.Value(double_value=1.0)]
    with pytest.raises(InvalidArgument, match="'recency' holds an infinite value"):
        service.models.predict(
            pb.PredictRequest(model_name="m2", columns=["recency", "history"], rows=[pb.Row(values=infinite)])
        )
    with pytest.raises(InvalidArgument, match="rows\\[0\\] has 1 values"):
        service.models.predict(
            pb.PredictRequest(
                model_name="m2", columns=FEATURES[:2], rows=[pb.Row(values=[types_pb2.Value(int_value=1)])]
            )
        )


class RecordingWriter:
    """A stand-in for the svc_profile writer a later issue connects."""

    connected = True

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int, list]] = []

    def write_scores(self, tag_name, model_name, model_version, batches) -> int:
        scores = [(c, float(v)) for batch in batches for c, v in zip(batch.customer_ids, batch.values, strict=True)]
        self.calls.append((tag_name, model_name, model_version, scores))
        return len(scores)


def test_a_connected_writer_gets_every_score_as_a_tag_with_the_model_version(hillstrom) -> None:
    from svc_modeling.models import ModelRegistry

    service, dataset, data = hillstrom
    writer = RecordingWriter()
    registry = ModelRegistry(service.settings, service.store, service.catalog, service.jobs, writer)
    finished(
        service,
        registry.train(
            pb.TrainModelRequest(
                model_name="tagged",
                dataset_id=dataset.dataset_id,
                label_column="visit",
                feature_columns=["recency", "history"],
                hyperparameters={"n_estimators": "10"},
            )
        ),
    )
    job = finished(
        service,
        registry.score_customers(
            pb.ScoreCustomersRequest(model_name="tagged", dataset_id=dataset.dataset_id, tag_name="visit_score")
        ),
    )
    [(tag, name, version, scores)] = writer.calls
    assert (tag, name, version, len(scores)) == ("visit_score", "tagged", 1, 64_000)
    assert scores[0][0] == data["customer_id"].iloc[0] and 0 <= scores[0][1] <= 1
    table = service.catalog.get(job.result_name)
    assert table.lineage["profile_writeback"] == "written 64000" and table.name == "visit_score_v1"


def test_an_all_missing_feature_is_refused(hillstrom) -> None:
    service, _, data = hillstrom
    empty = upload_frame(service, "empty_col", data.head(300).assign(blank=np.nan))
    with pytest.raises(InvalidArgument, match="'blank' has no values"):
        _train(service, empty.dataset_id, feature_columns=["recency", "blank"])


def test_fused_survey_answers_are_features_and_free_text_is_refused(tmp_path) -> None:
    rng = np.random.default_rng(2)
    n = 800
    nps = rng.integers(0, 11, n)
    survey = pd.DataFrame(
        {
            "customer_id": [f"s{i}" for i in range(n)],
            "nps": nps,
            "comment": [f"free text answer number {i}" for i in range(n)],
        }
    )
    assets = rng.normal(size=n)
    renewed = (rng.random(n) < 1 / (1 + np.exp(-(nps - 5) / 2 - assets))).astype(int)
    operations = pd.DataFrame({"customer_id": [f"s{i}" for i in range(n)], "assets": assets, "renewed": renewed})
    with running_service(modeling_settings(tmp_path)) as service:
        survey_roles = [
            pb.Column(name="nps", role=pb.COLUMN_ROLE_SURVEY),
            pb.Column(name="comment", role=pb.COLUMN_ROLE_SURVEY),
        ]
        x = upload_frame(service, "x", survey, customer_id_column="customer_id", columns=survey_roles)
        o = upload_frame(service, "o", operations, customer_id_column="customer_id")
        fused = finished(
            service,
            service.fuse_survey(
                pb.FuseSurveyRequest(name="xo", survey_dataset_id=x.dataset_id, operations_dataset_id=o.dataset_id)
            ),
        ).result_name
        request = pb.TrainModelRequest(
            model_name="renewal_xo", dataset_id=fused, label_column="renewed", hyperparameters={"n_estimators": "20"}
        )
        model = service.models.get(finished(service, service.models.train(request)).result_name.split("/")[0])
        assert set(model.feature_columns) == {"nps", "assets"}  # the numeric answer joins the O-data; text does not
        assert {f.feature for f in model.feature_importance if f.importance > 0.1} == {"nps", "assets"}
        with pytest.raises(InvalidArgument, match="'comment' looks like free text"):
            request.feature_columns.extend(["nps", "comment"])
            service.models.train(request)


def test_the_registry_versions_and_stages_on_every_database(database_url: str, tmp_path) -> None:
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    data["y"] = (data["a"] + rng.normal(size=400) > 0).astype(int)
    with running_service(modeling_settings(tmp_path, database_url)) as service:
        dataset = upload_frame(service, "small", data)
        request = pb.TrainModelRequest(
            model_name="small", dataset_id=dataset.dataset_id, label_column="y", hyperparameters={"n_estimators": "5"}
        )
        for _ in range(3):
            finished(service, service.models.train(request))
        assert service.models.get("small").version == 3  # no production version: the latest
        service.models.set_stage("small", 2, pb.MODEL_STAGE_PRODUCTION)
        assert service.models.get("small").version == 2
        assert [m.version for m in service.models.list("small", None, 2)] == [3, 2]
        assert [m.version for m in service.models.list("small", ("small", 2), 10)] == [1]
        version, artifact = service.models.artifact("small", 1)
        assert version.version == 1 and artifact.encoder.features == ["a", "b"]
