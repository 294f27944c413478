"""svc_modeling over real gRPC, in a real process: uploads and imports as client streams, rows as a server
stream, average effects, jobs watched to the end, and a precise status for each bad request."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_status import rpc_status

from svc_common.pb.qiming.common.v1 import job_pb2, types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_common.pb.qiming.modeling.v1 import modeling_pb2_grpc as pb_grpc
from svc_common.process import ServerProcess
from svc_modeling.datasets import hillstrom_bytes

CHUNK = 256 * 1024


def upload(stub: pb_grpc.DatasetServiceStub, name: str, content: bytes, **dataset) -> pb.UploadFileResponse:
    def messages():
        yield pb.UploadFileRequest(dataset=pb.Dataset(name=name, **dataset), format=pb.FILE_FORMAT_CSV)
        for i in range(0, len(content), CHUNK):
            yield pb.UploadFileRequest(chunk=content[i : i + CHUNK])

    return stub.UploadFile(messages(), timeout=60)


def watch_to_end(jobs: pb_grpc.JobServiceStub, job: job_pb2.Job) -> job_pb2.Job:
    seen = [r.job for r in jobs.WatchJob(pb.WatchJobRequest(job_id=job.job_id), timeout=300)]
    assert seen, "WatchJob sent nothing"
    return seen[-1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServerProcess("modeling", work_dir=tmp_path_factory.mktemp("modeling")) as process:
        yield process


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(server.address) as ch:
        yield ch


@pytest.fixture(scope="module")
def hillstrom(channel) -> pb.Dataset:
    return upload(pb_grpc.DatasetServiceStub(channel), "hillstrom", hillstrom_bytes()).dataset


def test_datasets_and_effects_over_grpc(channel, hillstrom) -> None:
    datasets = pb_grpc.DatasetServiceStub(channel)
    causal = pb_grpc.CausalServiceStub(channel)
    assert hillstrom.row_count == 64_000
    assert datasets.GetDataset(pb.GetDatasetRequest(dataset_id=hillstrom.dataset_id), timeout=10).dataset == hillstrom
    pages = list(
        datasets.ReadRows(pb.ReadRowsRequest(dataset_id=hillstrom.dataset_id, batch_rows=400, limit=1000), timeout=30)
    )
    assert [len(p.rows) for p in pages] == [400, 400, 200]
    assert [c.name for c in pages[0].columns][:3] == ["recency", "history_segment", "history"]
    assert pages[0].rows[0].values[1].string_value == "2) $100 - $200"

    def rows():
        columns = [
            pb.Column(name="k", type=types_pb2.VALUE_TYPE_STRING),
            pb.Column(name="v", type=types_pb2.VALUE_TYPE_DOUBLE),
        ]
        yield pb.ImportRowsRequest(dataset=pb.Dataset(name="kv", columns=columns, customer_id_column="k"))
        for batch in range(3):
            yield pb.ImportRowsRequest(
                rows=[
                    pb.Row(values=[types_pb2.Value(string_value=f"c{batch}-{i}"), types_pb2.Value(double_value=i)])
                    for i in range(100)
                ]
            )

    imported = datasets.ImportRows(rows(), timeout=30)
    assert imported.dataset.row_count == 300 and not imported.problems
    listed = datasets.ListDatasets(pb.ListDatasetsRequest(page={"page_size": 1}), timeout=10)
    assert len(listed.datasets) == 1 and listed.next_page_token
    rest = datasets.ListDatasets(pb.ListDatasetsRequest(page={"page_token": listed.next_page_token}), timeout=10)
    assert {d.dataset_id for d in [*listed.datasets, *rest.datasets]} >= {
        hillstrom.dataset_id,
        imported.dataset.dataset_id,
    }

    effects = causal.EstimateAverageEffects(
        pb.EstimateAverageEffectsRequest(
            dataset_id=hillstrom.dataset_id,
            treatment_column="segment",
            control_value="No E-Mail",
            outcome_columns=["visit", "spend"],
        ),
        timeout=30,
    )
    mens_spend = next(e for e in effects.effects if (e.arm, e.outcome) == ("Mens E-Mail", "spend"))
    assert mens_spend.effect.ci_low < 1.4226 - 0.6528 < mens_spend.effect.ci_high


def test_wide_rows_come_in_pages_a_default_client_accepts(channel) -> None:
    """600 rows of 10,000 characters (~6 MB) asked as one 1,000-row page: a page ends once its rows pass 1 MiB, so
    the default client (4 MiB a message) reads them all; one page of them all failed the stream RESOURCE_EXHAUSTED."""
    datasets = pb_grpc.DatasetServiceStub(channel)
    content = "k,note\n" + "".join(f"c{i},{chr(97 + i % 26) * 10_000}\n" for i in range(600))
    wide = upload(datasets, "wide", content.encode(), customer_id_column="k").dataset
    pages = list(datasets.ReadRows(pb.ReadRowsRequest(dataset_id=wide.dataset_id, batch_rows=1000), timeout=60))
    assert [r.values[0].string_value for p in pages for r in p.rows] == [f"c{i}" for i in range(600)]
    assert pages[-1].rows[-1].values[1].string_value == "b" * 10_000  # row 599: 599 % 26 = 1
    assert len(pages) >= 6 and all(sum(r.ByteSize() for r in p.rows) <= 1024 * 1024 for p in pages)


def test_bad_requests_get_precise_statuses(channel, hillstrom) -> None:
    datasets = pb_grpc.DatasetServiceStub(channel)
    causal = pb_grpc.CausalServiceStub(channel)
    jobs = pb_grpc.JobServiceStub(channel)

    def status_of(call, *args):
        with pytest.raises(grpc.RpcError) as raised:
            result = call(*args, timeout=30)
            if hasattr(result, "__iter__") and not isinstance(result, pb.ReadRowsResponse):
                list(result)
        return raised.value

    error = status_of(datasets.GetDataset, pb.GetDatasetRequest(dataset_id="nope"))
    assert error.code() == grpc.StatusCode.NOT_FOUND and "nope" in error.details()
    error = status_of(
        causal.EstimateAverageEffects,
        pb.EstimateAverageEffectsRequest(
            dataset_id=hillstrom.dataset_id, treatment_column="segmnt", control_value="x", outcome_columns=["visit"]
        ),
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "'segmnt' is not in the dataset" in error.details()
    status = rpc_status.from_call(error)
    assert status is not None and status.details  # BadRequest naming the field
    error = status_of(datasets.UploadFile, iter([pb.UploadFileRequest(chunk=b"a,b\n1,2\n")]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "first message" in error.details()
    error = status_of(datasets.ImportRows, iter([pb.ImportRowsRequest(dataset=pb.Dataset(name="x"))]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "at least one column" in error.details()
    error = status_of(jobs.GetJob, pb.GetJobRequest(job_id="nope"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = status_of(datasets.ListDatasets, pb.ListDatasetsRequest(page={"page_token": "forged"}))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = status_of(datasets.BuildFromProfiles, pb.BuildFromProfilesRequest(name="x"))
    # a modeling process alone: svc_profile and svc_collect are neither configured nor served here
    assert error.code() == grpc.StatusCode.UNAVAILABLE and "profile_address" in error.details()
    error = status_of(datasets.ReadRows, pb.ReadRowsRequest(dataset_id="nope"))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_a_job_is_watched_to_its_end_over_grpc(channel, hillstrom) -> None:
    datasets = pb_grpc.DatasetServiceStub(channel)
    jobs = pb_grpc.JobServiceStub(channel)
    survey = upload(datasets, "survey", b"customer_id,nps\n1,9\n2,3\n", customer_id_column="customer_id").dataset
    ops = upload(datasets, "ops", b"customer_id,assets\n1,10.5\n2,20\n3,1\n", customer_id_column="customer_id").dataset
    started = datasets.FuseSurvey(
        pb.FuseSurveyRequest(name="xo", survey_dataset_id=survey.dataset_id, operations_dataset_id=ops.dataset_id),
        timeout=10,
    ).job
    end = watch_to_end(jobs, started)
    assert end.state == job_pb2.JOB_STATE_SUCCEEDED and end.progress_percent == 100
    fused = datasets.GetDataset(pb.GetDatasetRequest(dataset_id=end.result_name), timeout=10).dataset
    assert fused.row_count == 2 and fused.origin == "survey_fusion"
    again = jobs.CancelJob(pb.CancelJobRequest(job_id=end.job_id), timeout=10).job
    assert again.state == job_pb2.JOB_STATE_SUCCEEDED  # a finished job stays as it ended
    listed = jobs.ListJobs(pb.ListJobsRequest(kind="fuse_survey"), timeout=10).jobs
    assert [j.job_id for j in listed] == [end.job_id]


def test_models_over_grpc(channel, hillstrom) -> None:
    models = pb_grpc.ModelServiceStub(channel)
    jobs = pb_grpc.JobServiceStub(channel)
    started = models.TrainModel(
        pb.TrainModelRequest(
            model_name="visit",
            dataset_id=hillstrom.dataset_id,
            label_column="visit",
            feature_columns=["recency", "history", "channel", "segment"],
            hyperparameters={"n_estimators": "30"},
        ),
        timeout=30,
    ).job
    assert started.kind == "train_model"
    end = watch_to_end(jobs, started)
    assert end.state == job_pb2.JOB_STATE_SUCCEEDED, end.error_message
    model = models.GetModel(pb.GetModelRequest(model_name="visit"), timeout=10).model
    assert model.version == 1 and model.metrics.auc > 0.6
    reply = models.Predict(
        pb.PredictRequest(
            model_name="visit",
            columns=["recency", "history", "channel", "segment"],
            rows=[
                pb.Row(
                    values=[
                        types_pb2.Value(int_value=2),
                        types_pb2.Value(double_value=500.0),
                        types_pb2.Value(string_value="Web"),
                        types_pb2.Value(string_value="Mens E-Mail"),
                    ]
                )
            ],
        ),
        timeout=10,
    )
    assert reply.model_version == 1 and 0 < reply.scores[0] < 1
    with pytest.raises(grpc.RpcError) as raised:
        models.GetModel(pb.GetModelRequest(model_name="visit", version=9), timeout=10)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND and "version 9" in raised.value.details()
    with pytest.raises(grpc.RpcError) as raised:
        models.TrainModel(
            pb.TrainModelRequest(
                model_name="leak", dataset_id=hillstrom.dataset_id, label_column="conversion", feature_columns=["spend"]
            ),
            timeout=10,
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "'spend'" in raised.value.details()


def test_uplift_and_drivers_over_grpc(channel, hillstrom) -> None:
    uplift = pb_grpc.UpliftServiceStub(channel)
    causal = pb_grpc.CausalServiceStub(channel)
    jobs = pb_grpc.JobServiceStub(channel)
    started = uplift.TrainUplift(
        pb.TrainUpliftRequest(
            model_name="mail_visit",
            dataset_id=hillstrom.dataset_id,
            outcome_column="visit",
            treatment_column="segment",
            control_value="No E-Mail",
            interventions=[pb.Intervention(name="Mens E-Mail", cost_fen=5)],
            feature_columns=["recency", "history", "channel"],
            bootstrap_rounds=20,
        ),
        timeout=10,
    ).job
    assert watch_to_end(jobs, started).state == job_pb2.JOB_STATE_SUCCEEDED
    model = uplift.GetUpliftModel(pb.GetUpliftModelRequest(model_name="mail_visit"), timeout=10)
    assert [s.intervention for s in model.interventions] == ["Mens E-Mail"]
    assert (
        model.interventions[0].average_effect.ci_low < 0.1828 - 0.1062 < model.interventions[0].average_effect.ci_high
    )

    started = causal.EstimateDrivers(
        pb.EstimateDriversRequest(
            dataset_id=hillstrom.dataset_id,
            outcome_column="spend",
            factors=["recency", "newbie"],
            confounders=["history", "channel"],
        ),
        timeout=10,
    ).job
    end = watch_to_end(jobs, started)
    assert end.state == job_pb2.JOB_STATE_SUCCEEDED, end.error_message
    analysis = causal.GetDriverAnalysis(pb.GetDriverAnalysisRequest(analysis_id=end.result_name), timeout=10).analysis
    assert {d.factor for d in analysis.drivers} == {"recency", "newbie"}
    answer = causal.WhatIf(pb.WhatIfRequest(analysis_id=analysis.analysis_id, factor="recency", set_to=1), timeout=10)
    assert answer.population_size == 64_000 and answer.outcome_change.ci_low <= answer.outcome_change.ci_high
    with pytest.raises(grpc.RpcError) as raised:
        causal.WhatIf(pb.WhatIfRequest(analysis_id="nope", factor="recency", set_to=1), timeout=10)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as raised:
        uplift.TrainUplift(
            pb.TrainUpliftRequest(
                model_name="x",
                dataset_id=hillstrom.dataset_id,
                outcome_column="visit",
                treatment_column="segment",
                control_value="nobody",
            ),
            timeout=10,
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_funnel_over_grpc(channel) -> None:
    datasets = pb_grpc.DatasetServiceStub(channel)
    funnel = pb_grpc.FunnelServiceStub(channel)
    table = upload(
        datasets, "aipl", b"awareness,interest,purchase,loyalty\n1,1,1,0\n1,1,0,0\n1,0,0,0\n0,0,0,0\n"
    ).dataset
    answer = funnel.ComputeAiplFunnel(pb.ComputeAiplFunnelRequest(driver_dataset_id=table.dataset_id), timeout=10)
    assert [s.customers for s in answer.stages] == [3, 2, 1, 0]
    assert answer.break_point_from == pb.AIPL_STAGE_PURCHASE
    with pytest.raises(grpc.RpcError) as raised:
        funnel.ComputeAiplFunnel(pb.ComputeAiplFunnelRequest(), timeout=10)
    # over profiles (no dataset named): this process serves neither svc_profile nor svc_collect
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE and "profile_address" in raised.value.details()


def test_review_over_grpc(channel, hillstrom) -> None:
    review = pb_grpc.ReviewServiceStub(channel)
    models = pb_grpc.ModelServiceStub(channel)
    jobs = pb_grpc.JobServiceStub(channel)
    models.GetModel(pb.GetModelRequest(model_name="visit"), timeout=10)  # trained by test_models_over_grpc
    schedule = review.CreateReviewSchedule(
        pb.CreateReviewScheduleRequest(schedule=pb.ReviewSchedule(model_names=["visit"], cron="0 3 * * 1")), timeout=10
    ).schedule
    assert schedule.schedule_id and schedule.next_run_at.seconds > 0
    end = watch_to_end(jobs, review.RunReview(pb.RunReviewRequest(schedule_id=schedule.schedule_id), timeout=10).job)
    assert end.state == job_pb2.JOB_STATE_SUCCEEDED, end.error_message
    report = review.GetReviewReport(pb.GetReviewReportRequest(report_id=end.result_name), timeout=10).report
    assert "score:visit" in {s.name for s in report.stability} and report.summary
    listed = review.ListReviewReports(pb.ListReviewReportsRequest(schedule_id=schedule.schedule_id), timeout=10)
    assert [r.report_id for r in listed.reports] == [report.report_id]
    with pytest.raises(grpc.RpcError) as raised:
        review.CreateReviewSchedule(
            pb.CreateReviewScheduleRequest(schedule=pb.ReviewSchedule(model_names=["visit"], cron="daily")), timeout=10
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "five fields" in raised.value.details()


def test_the_process_writes_a_log(server: ServerProcess, tmp_path: Path) -> None:
    assert "serving" in server.log_tail(200)


def test_without_the_modeling_extra_the_process_serves_and_says_what_is_missing(tmp_path: Path) -> None:
    # A base install (make demo) has no LightGBM: the process must start and answer UNIMPLEMENTED, not crash.
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['lightgbm'] = None\n")
    env = {"PYTHONPATH": str(blocker)}
    with ServerProcess("modeling", work_dir=tmp_path / "run", env=env) as process:
        with grpc.insecure_channel(process.address) as ch, pytest.raises(grpc.RpcError) as raised:
            pb_grpc.DatasetServiceStub(ch).GetDataset(pb.GetDatasetRequest(dataset_id="x"), timeout=10)
        assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "qiming[modeling]" in process.log_tail(200)
