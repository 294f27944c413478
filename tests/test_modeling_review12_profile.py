"""Review 2 of svc_modeling with real svc_collect and svc_profile: an unknown snapshot feature is refused listing
the known ones and a level 3+ attribute svc_profile withholds is named as such (F6, F15); the score write-back
refuses repeated customer ids and counts rows without one (F19), refuses svc_profile's reserved tag names before
the job and will not overwrite another model's score tag (F17)."""

from __future__ import annotations

import grpc
import pandas as pd
import pytest

from svc_common.conditions import to_proto
from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.common.v1 import job_pb2, types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2 as ppb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pgrpc
from tests import test_modeling_profiles as with_profiles
from tests.modeling_helpers import finished, upload_frame
from tests.test_modeling_profiles import CUSTOMERS, SNAPSHOT_US, at, build, customer, label_rule, train

suite, modeling = with_profiles.suite, with_profiles.modeling  # fixtures: real svc_collect and svc_profile


def _failed(service, job: job_pb2.Job) -> job_pb2.Job:
    done = service.jobs.wait(job.job_id, 120)
    assert done.state == job_pb2.JOB_STATE_FAILED, job_pb2.JobState.Name(done.state)
    return done


def test_unknown_and_withheld_snapshot_features_are_named(modeling, suite) -> None:
    _, profile = suite
    with grpc.insecure_channel(profile.address) as channel:
        profiles = pgrpc.ProfileServiceStub(channel)
        rows = [
            ppb.UpsertAttributesRequest(
                user=types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=customer(i)),
                attributes={"annual_income": to_proto(100_000 + i)},
                source_system="crm",
            )
            for i in range(CUSTOMERS)
        ]
        profiles.ImportAttributes(iter([ppb.ImportAttributesRequest(rows=rows)]), timeout=60)
    request = pb.BuildFromProfilesRequest(name="x", features=["annual_income", "count.login.7d"])
    done = _failed(modeling, modeling.snapshots.build_from_profiles(request))
    assert "'annual_income' is a level 3+ attribute that svc_profile withholds" in done.error_message
    request = pb.BuildFromProfilesRequest(name="x", features=["nope_feature"])
    done = _failed(modeling, modeling.snapshots.build_from_profiles(request))
    assert "no customer of the population has 'nope_feature'; known: " in done.error_message
    assert "count.login.7d" in done.error_message and "age" in done.error_message
    dataset, frame = build(modeling, name="all")
    assert "annual_income" not in frame.data.columns
    assert "annual_income" in dataset.lineage["attributes_withheld"]


def test_the_write_back_refuses_repeated_ids_reserved_names_and_another_models_tag(modeling) -> None:
    dataset, _ = build(modeling, name="train", snapshot_at=at(SNAPSHOT_US), label=label_rule())
    train(modeling, dataset)
    rows = pd.DataFrame(
        {
            "customer_id": ["c001", "c001", None, "c002", "c003"],
            "count.login.90d": [1, 8, 2, 3, 1],
            "age": [30, 30, 40, 50, 60],
        }
    )
    repeated = upload_frame(modeling, "dup", rows, customer_id_column="customer_id")
    with pytest.raises(InvalidArgument) as caught:
        modeling.score_customers(pb.ScoreCustomersRequest(model_name="fund_buyer", dataset_id=repeated.dataset_id))
    assert "1 customer ids on more than one row (e.g. 'c001')" in str(caught.value)
    once = upload_frame(modeling, "once", rows.iloc[1:], customer_id_column="customer_id")
    request = pb.ScoreCustomersRequest(model_name="fund_buyer", dataset_id=once.dataset_id, tag_name="score_shared")
    table = modeling.catalog.get(finished(modeling, modeling.score_customers(request)).result_name)
    assert table.lineage["rows_without_customer_id"] == "1" and table.lineage["profile_writeback"] == "written 3"

    with pytest.raises(InvalidArgument) as caught:
        modeling.score_customers(pb.ScoreCustomersRequest(model_name="fund_buyer", tag_name="fin_trading_frequency"))
    assert "reserved" in str(caught.value) and caught.value.violations[0].field == "tag_name"

    other = pb.TrainModelRequest(
        model_name="other_model",
        dataset_id=dataset.dataset_id,
        label_column="bought_fund",
        feature_columns=["count.login.90d", "age"],
        hyperparameters={"n_estimators": "20", "min_child_samples": "5", "calibration": "none"},
    )
    finished(modeling, modeling.models.train(other))
    request = pb.ScoreCustomersRequest(model_name="other_model", dataset_id=once.dataset_id, tag_name="score_shared")
    done = _failed(modeling, modeling.score_customers(request))
    assert done.error_reason == "TAG_OF_ANOTHER_MODEL"
    assert "holds the scores of model 'fund_buyer'" in done.error_message
