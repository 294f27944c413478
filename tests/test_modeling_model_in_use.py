"""What a job or a review schedule uses is not deleted under it. DeleteModel refuses (MODEL_IN_USE) a version that a
pending or running job scores, plans or reviews with, and the version a review schedule would review (production,
else latest); DeleteDataset refuses (DATASET_IN_USE) a schedule's refresh dataset and a dataset a running job made
and goes on using; DeleteDriverAnalysis refuses (ANALYSIS_IN_USE) an analysis a schedule or a pending review names.
DeleteReviewSchedule releases what the schedule held. In-process, and the refusals over real gRPC."""

from __future__ import annotations

import threading

import grpc
import numpy as np
import pandas as pd
import pytest
from modeling_helpers import finished, modeling_settings, planted_uplift, running_service, upload_frame
from test_modeling_drivers import known_effects
from test_modeling_grpc import upload, watch_to_end

from svc_common.errors import FailedPrecondition, NotFound
from svc_common.pb.qiming.common.v1 import job_pb2, types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_common.pb.qiming.modeling.v1 import modeling_pb2_grpc as pb_grpc
from svc_common.process import ServerProcess
from svc_modeling.frame import Frame


def _customers(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "x0": rng.normal(size=n)})
    data["x1"] = rng.normal(size=n)
    data["y"] = (rng.random(n) < 1 / (1 + np.exp(-2 * data["x0"]))).astype(int)
    return data


def _train(service, dataset_id: str, name: str = "churn") -> int:
    request = pb.TrainModelRequest(
        model_name=name, dataset_id=dataset_id, label_column="y", feature_columns=["x0", "x1"],
        hyperparameters={"n_estimators": "5"},
    )  # fmt: skip
    return int(finished(service, service.models.train(request)).result_name.split("/")[1])


def _register(service, name: str, dataset_id: str) -> int:
    version = pb.ModelVersion(model_name=name, dataset_id=dataset_id, task=pb.MODEL_TASK_PROPENSITY)
    return int(service.models.register(version, {"artifact": name}).version)


def _refused(call, *args) -> FailedPrecondition:
    with pytest.raises(FailedPrecondition) as raised:
        call(*args)
    return raised.value


class _Worker:
    """The one job worker kept busy, so that jobs submitted meanwhile stay pending."""

    def __init__(self, service) -> None:
        self._go = threading.Event()
        started = threading.Event()
        self.job = service.jobs.submit("train_model", lambda ctx: "busy" if started.set() or self._go.wait(60) else "")
        assert started.wait(30)

    def release(self) -> None:
        self._go.set()


def test_a_pending_scoring_job_keeps_the_version_it_scores_with(tmp_path) -> None:
    with running_service(modeling_settings(tmp_path, job_workers=1)) as service:
        dataset = upload_frame(service, "customers", _customers(), customer_id_column="customer_id")
        assert [_train(service, dataset.dataset_id) for _ in range(2)] == [1, 2]
        worker = _Worker(service)
        score = service.models.score_customers(
            pb.ScoreCustomersRequest(model_name="churn", version=1, dataset_id=dataset.dataset_id)
        )
        error = _refused(service.models.delete, "churn", 1)
        assert error.reason == "MODEL_IN_USE"
        assert error.message.startswith(
            f"version 1 of model 'churn' is in use by 1 pending or running job ({score.job_id} score_customers "
            "pending): let the jobs end or cancel them (JobService.CancelJob), then delete it"
        ), error.message
        assert (error.metadata["model_name"], error.metadata["version"], error.metadata["jobs"]) == ("churn", "1", "1")
        assert "model 'churn' is in use by 1 pending" in _refused(service.models.delete, "churn", 0).message
        assert service.models.delete("churn", 2) == [2]  # a version no job uses
        service.jobs.cancel(score.job_id)
        assert service.models.delete("churn", 1) == [1]  # an ended job holds nothing
        worker.release()
        assert service.jobs.wait(worker.job.job_id, 30).state == job_pb2.JOB_STATE_SUCCEEDED


def test_a_pending_plan_keeps_its_uplift_model(tmp_path) -> None:
    with running_service(modeling_settings(tmp_path, job_workers=1)) as service:
        dataset = upload_frame(service, "planted", planted_uplift(1500), customer_id_column="customer_id")
        request = pb.TrainUpliftRequest(
            model_name="offers", dataset_id=dataset.dataset_id, outcome_column="y", treatment_column="arm",
            control_value="control", feature_columns=["x0", "x1", "x2", "x3"], learner="t_learner",
            bootstrap_rounds=10,
        )  # fmt: skip
        finished(service, service.uplift.train(request))
        worker = _Worker(service)
        plan = service.uplift.plan(pb.PlanInterventionsRequest(model_name="offers", dataset_id=dataset.dataset_id))
        error = _refused(service.models.delete, "offers", 1)
        assert error.reason == "MODEL_IN_USE" and f"({plan.job_id} plan_interventions pending)" in error.message
        service.jobs.cancel(plan.job_id)
        worker.release()
        assert service.models.delete("offers", 0) == [1]


def test_a_review_schedule_keeps_the_version_it_reviews(tmp_path) -> None:
    with running_service(modeling_settings(tmp_path)) as service:
        dataset = upload_frame(service, "customers", _customers())
        assert [_register(service, "churn", dataset.dataset_id) for _ in range(3)] == [1, 2, 3]
        schedule = service.review.create_schedule(pb.ReviewSchedule(model_names=["churn"], cron="0 3 * * *"))
        error = _refused(service.models.delete, "churn", 3)  # no production version: a review takes the latest
        assert error.reason == "MODEL_IN_USE" and error.metadata["reviewed_version"] == "3"
        assert error.message == (
            f"version 3 of model 'churn' is in use by 1 review schedule ({schedule.schedule_id}): promote another "
            "version (ModelService.SetModelStage: a review takes the production version, else the latest, now v3) or "
            "delete the review schedules (ReviewService.DeleteReviewSchedule), then delete it"
        )
        assert service.models.delete("churn", 2) == [2]  # a version the schedule does not review
        service.models.set_stage("churn", 1, pb.MODEL_STAGE_PRODUCTION)
        assert service.models.delete("churn", 3) == [3]  # the schedule now reviews the production version
        assert "the latest, now v1)" in _refused(service.models.delete, "churn", 1).message
        assert "model 'churn' is in use by 1 review schedule" in _refused(service.models.delete, "churn", 0).message
        service.review.delete_schedule(schedule.schedule_id)
        assert service.models.delete("churn", 0) == [1]
        with pytest.raises(NotFound, match="no review schedule"):
            service.review.delete_schedule(schedule.schedule_id)
        assert service.review.list_schedules("", 10) == []


def _analysis(service) -> str:
    known = upload_frame(service, "known", known_effects(800, seed=5))
    request = pb.EstimateDriversRequest(
        dataset_id=known.dataset_id, outcome_column="renewal_value", factors=["advisor_calls"]
    )
    return finished(service, service.drivers.estimate(request)).result_name


def test_a_review_schedule_keeps_its_refresh_datasets_and_analyses(tmp_path) -> None:
    with running_service(modeling_settings(tmp_path)) as service:
        fresh = upload_frame(service, "fresh", _customers(seed=1))
        other = upload_frame(service, "other", _customers(seed=2))
        analysis_id = _analysis(service)
        schedule = service.review.create_schedule(
            pb.ReviewSchedule(analysis_ids=[analysis_id], cron="0 3 * * *", refresh_dataset_ids=[fresh.dataset_id])
        )
        error = _refused(service.catalog.delete, fresh.dataset_id)
        assert error.reason == "DATASET_IN_USE" and error.metadata["schedules"] == "1"
        assert error.message == (
            f"dataset '{fresh.dataset_id}' is in use by 1 review schedule ({schedule.schedule_id}): delete the review "
            "schedules (ReviewService.DeleteReviewSchedule), then delete it"
        )
        error = _refused(service.drivers.delete, analysis_id)
        assert error.reason == "ANALYSIS_IN_USE"
        assert f"driver analysis '{analysis_id}' is in use by 1 review schedule ({schedule.schedule_id})" in (
            error.message
        )
        service.catalog.delete(other.dataset_id)  # a dataset no schedule names
        service.review.delete_schedule(schedule.schedule_id)
        service.catalog.delete(fresh.dataset_id)
        service.drivers.delete(analysis_id)


def test_a_pending_review_holds_its_models_analyses_and_datasets_after_its_schedule_is_gone(tmp_path) -> None:
    with running_service(modeling_settings(tmp_path, job_workers=1)) as service:
        fresh = upload_frame(service, "fresh", _customers(seed=1))
        assert _register(service, "churn", fresh.dataset_id) == 1
        analysis_id = _analysis(service)
        schedule = service.review.create_schedule(
            pb.ReviewSchedule(
                model_names=["churn"], analysis_ids=[analysis_id], cron="0 3 * * *",
                refresh_dataset_ids=[fresh.dataset_id],
            )
        )  # fmt: skip
        assert _register(service, "churn", fresh.dataset_id) == 2
        worker = _Worker(service)
        review = service.review.run(schedule.schedule_id)
        service.review.delete_schedule(schedule.schedule_id)  # the review goes on: it holds what it uses
        pending = f"({review.job_id} run_review pending)"
        assert pending in _refused(service.models.delete, "churn", 2).message  # the version it reviews
        assert service.models.delete("churn", 1) == [1]  # not one it reviews
        assert pending in _refused(service.drivers.delete, analysis_id).message
        assert pending in _refused(service.catalog.delete, fresh.dataset_id).message
        service.jobs.cancel(review.job_id)
        worker.release()
        service.models.delete("churn", 2)
        service.drivers.delete(analysis_id)
        service.catalog.delete(fresh.dataset_id)


def test_a_review_reviews_the_version_chosen_when_it_started(tmp_path) -> None:
    """The version is pinned at the start (and held): promoting another one before the job runs does not change it."""
    with running_service(modeling_settings(tmp_path, job_workers=1)) as service:
        data = upload_frame(service, "customers", _customers(), customer_id_column="customer_id")
        assert [_train(service, data.dataset_id) for _ in range(2)] == [1, 2]
        schedule = service.review.create_schedule(pb.ReviewSchedule(model_names=["churn"], cron="0 3 * * *"))
        worker = _Worker(service)
        review = service.review.run(schedule.schedule_id)
        service.models.set_stage("churn", 1, pb.MODEL_STAGE_PRODUCTION)
        worker.release()
        report = service.review.get_report(finished(service, review).result_name)
        assert report.summary.startswith("churn v2: stable"), report.summary


def test_a_dataset_a_job_makes_is_held_until_the_job_ends(tmp_path) -> None:
    """A review rebuilds its profile-snapshot refresh datasets and goes on using them: the job that made one holds it
    from its insert on (``held_by_job``)."""
    with running_service(modeling_settings(tmp_path)) as service:
        made, ready, go = {}, threading.Event(), threading.Event()
        columns = [pb.Column(name="x", type=types_pb2.VALUE_TYPE_DOUBLE, role=pb.COLUMN_ROLE_FEATURE)]

        def make(ctx) -> str:
            frame = Frame(pd.DataFrame({"x": [1.0, 2.0]}), columns)
            made["id"] = service.catalog.create(frame, held_by_job=ctx.job_id, name="rebuilt", origin="test").dataset_id
            ready.set()
            assert go.wait(30)
            return made["id"]

        job = service.jobs.submit("run_review", make)
        assert ready.wait(30), service.jobs.get(job.job_id).error_message
        error = _refused(service.catalog.delete, made["id"])
        assert f"({job.job_id} run_review running)" in error.message
        go.set()
        finished(service, job)
        service.catalog.delete(made["id"])


def test_an_analysis_deleted_through_another_replica_is_not_served_from_a_cache(tmp_path) -> None:
    settings = modeling_settings(tmp_path)
    with running_service(settings) as a, running_service(settings) as b:
        analysis_id = _analysis(a)
        what_if = pb.WhatIfRequest(analysis_id=analysis_id, factor="advisor_calls", shift_by=1.0)
        assert a.drivers.get(analysis_id).analysis_id == analysis_id  # replica A now holds it in its cache
        a.drivers.what_if(what_if)
        b.drivers.delete(analysis_id)
        for call, argument in ((a.drivers.get, analysis_id), (a.drivers.what_if, what_if)):
            with pytest.raises(NotFound, match=f"no driver analysis '{analysis_id}'"):
                call(argument)


# -- over real gRPC --------------------------------------------------------------------------------------------


def test_the_refusals_and_delete_review_schedule_over_grpc(tmp_path) -> None:
    with (
        ServerProcess("modeling", work_dir=tmp_path) as process,
        grpc.insecure_channel(process.address) as channel,
    ):
        datasets, models = pb_grpc.DatasetServiceStub(channel), pb_grpc.ModelServiceStub(channel)
        reviews, jobs = pb_grpc.ReviewServiceStub(channel), pb_grpc.JobServiceStub(channel)
        dataset = upload(datasets, "customers", _customers().to_csv(index=False).encode()).dataset
        train = pb.TrainModelRequest(
            model_name="churn", dataset_id=dataset.dataset_id, label_column="y", feature_columns=["x0", "x1"]
        )
        assert watch_to_end(jobs, models.TrainModel(train, timeout=30).job).state == job_pb2.JOB_STATE_SUCCEEDED
        schedule = reviews.CreateReviewSchedule(
            pb.CreateReviewScheduleRequest(
                schedule=pb.ReviewSchedule(
                    model_names=["churn"], cron="0 3 * * *", refresh_dataset_ids=[dataset.dataset_id]
                )
            ),
            timeout=10,
        ).schedule
        for call, request in (
            (models.DeleteModel, pb.DeleteModelRequest(model_name="churn", version=1)),
            (datasets.DeleteDataset, pb.DeleteDatasetRequest(dataset_id=dataset.dataset_id)),
        ):
            with pytest.raises(grpc.RpcError) as raised:
                call(request, timeout=10)
            assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert f"1 review schedule ({schedule.schedule_id})" in raised.value.details()
        delete = pb.DeleteReviewScheduleRequest(schedule_id=schedule.schedule_id)
        reviews.DeleteReviewSchedule(delete, timeout=10)
        with pytest.raises(grpc.RpcError) as raised:
            reviews.DeleteReviewSchedule(delete, timeout=10)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        assert list(models.DeleteModel(pb.DeleteModelRequest(model_name="churn"), timeout=10).versions) == [1]
        datasets.DeleteDataset(pb.DeleteDatasetRequest(dataset_id=dataset.dataset_id), timeout=10)
