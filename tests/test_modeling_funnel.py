"""The AIPL funnel over a dataset: nested stage counts, conversions, the break-point, and the drivers of each
transition recovered from a simulation with a planted effect; rules as conditions, or the default columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from modeling_helpers import modeling_settings, running_service, upload_frame

from svc_common.errors import FailedPrecondition, InvalidArgument
from svc_common.pb.qiming.common.v1 import condition_pb2, types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_modeling.funnel import compute_funnel

Op = condition_pb2.Operator


def customers(n: int = 6000, seed: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    advisor = (rng.random(n) < 0.4).astype(float)
    assets = rng.lognormal(10, 1, n)
    app_opens = rng.poisson(2, n).astype(float)
    content_views = np.where(app_opens > 0, rng.poisson(3, n), 0).astype(float)
    # Among the interested, an advisor contact lifts the chance of buying from 0.1 to 0.4.
    bought = (rng.random(n) < 0.1 + 0.3 * advisor).astype(float)
    repeat = (rng.random(n) < 0.5).astype(float) * bought
    return pd.DataFrame(
        {
            "customer_id": [f"f{i}" for i in range(n)],
            "app_opens": app_opens,
            "content_views": content_views,
            "bought": bought,
            "repeat_buys": repeat,
            "advisor_contact": advisor,
            "log_assets": np.log(assets),
        }
    )


def _gt(name: str, value: float) -> condition_pb2.Condition:
    return condition_pb2.Condition(
        comparison=condition_pb2.Comparison(
            field=condition_pb2.FieldRef(name=name), operator=Op.OPERATOR_GT, value=types_pb2.Value(double_value=value)
        )
    )


RULES = [
    pb.AiplStageRule(stage=pb.AIPL_STAGE_AWARENESS, condition=_gt("app_opens", 0)),
    pb.AiplStageRule(stage=pb.AIPL_STAGE_INTEREST, condition=_gt("content_views", 2)),
    pb.AiplStageRule(stage=pb.AIPL_STAGE_PURCHASE, condition=_gt("bought", 0)),
    pb.AiplStageRule(stage=pb.AIPL_STAGE_LOYALTY, condition=_gt("repeat_buys", 0)),
]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with running_service(modeling_settings(tmp_path_factory.mktemp("funnel"))) as running:
        yield running


def test_stage_counts_conversions_break_point_and_drivers(service) -> None:
    data = customers()
    dataset = upload_frame(service, "aipl", data, customer_id_column="customer_id")
    funnel = compute_funnel(
        pb.ComputeAiplFunnelRequest(rules=RULES, driver_dataset_id=dataset.dataset_id), service.catalog
    )
    aware = data["app_opens"] > 0
    interest = aware & (data["content_views"] > 2)
    purchase = interest & (data["bought"] > 0)
    loyal = purchase & (data["repeat_buys"] > 0)
    expected = [int(m.sum()) for m in (aware, interest, purchase, loyal)]
    assert [s.customers for s in funnel.stages] == expected
    assert [s.stage for s in funnel.stages] == [1, 2, 3, 4]
    conversions = [t.conversion for t in funnel.transitions]
    assert conversions == pytest.approx(
        [expected[1] / expected[0], expected[2] / expected[1], expected[3] / expected[2]]
    )
    assert funnel.break_point_from == pb.AIPL_STAGE_INTEREST  # interest → purchase converts least (about 22%)
    to_purchase = funnel.transitions[1]
    assert to_purchase.drivers[0].factor == "advisor_contact"
    effect = to_purchase.drivers[0].effect
    assert effect.ci_low < 0.3 < effect.ci_high
    # Columns that define the stages are never their own drivers.
    assert {d.factor for t in funnel.transitions for d in t.drivers} <= {"advisor_contact", "log_assets"}


def test_default_rules_read_one_column_per_stage(service) -> None:
    data = pd.DataFrame(
        {
            "awareness": [1, 1, 1, 1, 0],
            "interest": [1, 1, 1, 0, 1],
            "purchase": [1, 0, 0, 0, 1],
            "loyalty": [1, 0, 1, 0, 1],
        }
    )
    dataset = upload_frame(service, "defaults", data)
    funnel = compute_funnel(pb.ComputeAiplFunnelRequest(driver_dataset_id=dataset.dataset_id), service.catalog)
    assert [s.customers for s in funnel.stages] == [4, 3, 1, 1]
    assert funnel.break_point_from == pb.AIPL_STAGE_INTEREST


def test_bad_funnel_requests_name_the_problem(service) -> None:
    dataset = upload_frame(service, "few", customers(200))
    with pytest.raises(FailedPrecondition, match="driver_dataset_id"):
        compute_funnel(pb.ComputeAiplFunnelRequest(rules=RULES), service.catalog)
    with pytest.raises(FailedPrecondition, match="svc_profile"):
        compute_funnel(
            pb.ComputeAiplFunnelRequest(driver_dataset_id=dataset.dataset_id, segment_id="s"), service.catalog
        )
    with pytest.raises(InvalidArgument, match="'awareness' is not in the dataset"):
        compute_funnel(pb.ComputeAiplFunnelRequest(driver_dataset_id=dataset.dataset_id), service.catalog)
    with pytest.raises(InvalidArgument, match="give all four stages"):
        compute_funnel(
            pb.ComputeAiplFunnelRequest(rules=RULES[:2], driver_dataset_id=dataset.dataset_id), service.catalog
        )
    events = [
        *RULES[:3],
        pb.AiplStageRule(
            stage=pb.AIPL_STAGE_LOYALTY,
            condition=condition_pb2.Condition(event_count=condition_pb2.EventCount(event_type="buy")),
        ),
    ]
    with pytest.raises(FailedPrecondition, match="event_count condition needs profiles and the event log"):
        compute_funnel(pb.ComputeAiplFunnelRequest(rules=events, driver_dataset_id=dataset.dataset_id), service.catalog)
