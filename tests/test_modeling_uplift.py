"""Uplift: on a simulation with planted heterogeneity the learned ranking must clearly beat random (Qini
bootstrap intervals apart) and follow the true effects; on Hillstrom the held-out average effects match
the README; plans respect the budget and favour the customers who gain most."""

from __future__ import annotations

import numpy as np
import pytest
from modeling_helpers import finished, modeling_settings, planted_uplift, running_service, upload_frame

from svc_common.errors import FailedPrecondition, InvalidArgument, Unavailable
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_modeling.datasets import HILLSTROM_GROUP_MEANS, load_hillstrom
from svc_modeling.methods.uplift import plan_under_budget, qini_auuc

SIM_FEATURES = ["x0", "x1", "x2", "x3"]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with running_service(modeling_settings(tmp_path_factory.mktemp("uplift"))) as running:
        yield running


@pytest.fixture(scope="module")
def simulation(service):
    data = planted_uplift(20_000, seed=11)
    dataset = upload_frame(service, "planted", data, customer_id_column="customer_id")
    return dataset, data


def _train(service, dataset_id: str, **overrides):
    values = {
        "model_name": "sim_uplift",
        "dataset_id": dataset_id,
        "outcome_column": "y",
        "treatment_column": "arm",
        "control_value": "control",
        "interventions": [pb.Intervention(name="coupon", cost_fen=300), pb.Intervention(name="push", cost_fen=10)],
        "feature_columns": SIM_FEATURES,
        "bootstrap_rounds": 100,
        "random_seed": 5,
        **overrides,
    }
    return service.uplift.train(pb.TrainUpliftRequest(**values), "analyst")


@pytest.mark.parametrize("learner", ["t_learner", "x_learner", "dr_learner", "causal_forest"])
def test_planted_heterogeneity_is_ranked_far_better_than_random(service, simulation, learner: str) -> None:
    dataset, data = simulation
    job = finished(service, _train(service, dataset.dataset_id, learner=learner, model_name=f"sim_{learner}"))
    response = service.uplift.get(job.result_name.split("/")[0], 0)
    model = response.model
    assert model.task == pb.MODEL_TASK_UPLIFT and model.algorithm == learner
    assert model.hyperparameters["baseline_learner"] == ("s_learner" if learner == "t_learner" else "t_learner")
    by_name = {s.intervention: s for s in response.interventions}
    assert set(by_name) == {"coupon", "push"} and by_name["coupon"].cost_fen == 300
    for name, true_ate in (("coupon", 1 / np.sqrt(2 * np.pi)), ("push", 0.2)):
        s = by_name[name]
        assert s.qini.ci_low > s.qini_random.ci_high, (name, s.qini, s.qini_random)
        assert s.qini_random.ci_low < 0 < s.qini_random.ci_high
        # The held-out mean effect sits within three standard errors of the planted one (not always inside
        # the 95% interval: that misses 1 time in 20 by design).
        assert abs(s.average_effect.value - true_ate) < 3 * s.average_effect.std_error
        assert s.auuc.value > 0 and s.qini.confidence == 0.95
    assert model.metrics.qini.value == by_name["coupon"].qini.value  # metrics describe the first intervention

    # Predicted effects follow the planted ones.
    sample = data.head(400)
    rows = [pb.Row(values=[types_pb2.Value(double_value=float(v)) for v in r]) for r in sample[SIM_FEATURES].to_numpy()]
    predicted = service.uplift.predict(
        pb.PredictUpliftRequest(model_name=model.model_name, columns=SIM_FEATURES, rows=rows)
    )
    coupon = np.array([u.effects["coupon"] for u in predicted.uplifts])
    assert np.corrcoef(coupon, np.maximum(sample["x0"], 0))[0, 1] > 0.6
    best = [u.best_intervention for u in predicted.uplifts]
    assert best.count("coupon") > 0 and best.count("push") > 0


def test_plans_respect_the_budget_and_pick_the_biggest_gains(service, simulation) -> None:
    dataset, data = simulation
    name = finished(
        service, _train(service, dataset.dataset_id, model_name="sim_plan", bootstrap_rounds=20)
    ).result_name
    budget = 300 * 1000
    job = finished(
        service,
        service.uplift.plan(
            pb.PlanInterventionsRequest(model_name="sim_plan", dataset_id=dataset.dataset_id, budget_fen=budget)
        ),
    )
    plan, table = service.catalog.load(job.result_name)
    assert plan.origin == "intervention_plan" and plan.lineage["model_version"] == name.split("/")[1]
    assert "segments" not in plan.lineage  # exported segments: tests/test_modeling_profiles.py
    t = table.data
    assert t["cost_fen"].sum() <= budget and int(plan.lineage["spent_fen"]) == t["cost_fen"].sum()
    assert t["cost_fen"].sum() > 0.95 * budget  # the budget is used
    assert t["customer_id"].tolist() == data["customer_id"].tolist()
    coupon = (t["intervention"] == "coupon").to_numpy()
    true_coupon = np.maximum(data["x0"].to_numpy(), 0)
    assert coupon.sum() > 100 and true_coupon[coupon].mean() > 3 * true_coupon.mean()
    assert (t.loc[t["intervention"].notna(), "expected_effect"] > 0).all()

    free = finished(
        service, service.uplift.plan(pb.PlanInterventionsRequest(model_name="sim_plan", dataset_id=dataset.dataset_id))
    )
    everyone = service.catalog.load(free.result_name)[1].data
    chosen = everyone["intervention"].notna()
    assert chosen.sum() > coupon.sum() and (everyone.loc[chosen, "expected_effect"] > 0).all()


def test_hillstrom_uplift_reports_effects_and_quality_beside_baselines(service) -> None:
    data = load_hillstrom().sample(frac=0.5, random_state=1)
    dataset = upload_frame(service, "hillstrom_half", data)
    job = service.uplift.train(
        pb.TrainUpliftRequest(
            model_name="hillstrom_visit",
            dataset_id=dataset.dataset_id,
            outcome_column="visit",
            treatment_column="segment",
            control_value="No E-Mail",
            feature_columns=["recency", "history", "mens", "womens", "zip_code", "newbie", "channel"],
            bootstrap_rounds=50,
            test_fraction=0.5,
        )
    )
    response = service.uplift.get(finished(service, job).result_name.split("/")[0], 0)
    control_visit = HILLSTROM_GROUP_MEANS["No E-Mail"][1]
    for summary in response.interventions:
        readme = HILLSTROM_GROUP_MEANS[summary.intervention][1] - control_visit
        assert summary.average_effect.ci_low < readme < summary.average_effect.ci_high
        assert summary.qini_baseline.ci_high > summary.qini_baseline.ci_low
        assert summary.qini_random.ci_low < 0 < summary.qini_random.ci_high


def test_bad_uplift_inputs_name_the_problem(service, simulation) -> None:
    dataset, data = simulation
    cases = [
        ({"learner": "grf"}, "learner", "unknown learner 'grf'"),
        ({"interventions": [pb.Intervention(name="sms")]}, "interventions", "'sms' is not a value"),
        ({"interventions": [pb.Intervention(name="coupon", cost_fen=-1)]}, "interventions[0].cost_fen", "negative"),
        ({"control_value": "none"}, "control_value", "'none' is not in column"),
        ({"outcome_column": "arm"}, "outcome_column", "holds text"),
        ({"feature_columns": ["x0", "y"]}, "feature_columns[1]", "cannot also be a feature"),
        ({"bootstrap_rounds": 5}, "bootstrap_rounds", "out of range"),
    ]
    for overrides, field, text in cases:
        with pytest.raises(InvalidArgument) as raised:
            _train(service, dataset.dataset_id, **overrides)
        assert text in raised.value.message, raised.value.message
        assert raised.value.violations[0].field == field
    few = data.head(200)
    small = upload_frame(service, "few", few)
    with pytest.raises(FailedPrecondition, match="too few held-out rows"):
        _train(service, small.dataset_id)
    finished(
        service,
        service.models.train(
            pb.TrainModelRequest(
                model_name="not_uplift",
                dataset_id=dataset.dataset_id,
                label_column="y",
                task=pb.MODEL_TASK_REGRESSION,
                feature_columns=SIM_FEATURES,
            )
        ),
    )
    with pytest.raises(FailedPrecondition, match="not an uplift model"):
        service.uplift.predict(pb.PredictUpliftRequest(model_name="not_uplift"))
    with pytest.raises(Unavailable, match="set profile_address"):
        service.uplift.plan(pb.PlanInterventionsRequest(model_name="sim_plan", segment_id="s1"))
    with pytest.raises(Unavailable, match="svc_profile is not connected"):
        service.uplift.plan(pb.PlanInterventionsRequest(model_name="sim_plan", export_segment_prefix="spring"))
    with pytest.raises(InvalidArgument, match="export_segment_prefix"):
        service.uplift.plan(pb.PlanInterventionsRequest(model_name="sim_plan", export_segment_prefix="9lives"))


def test_budgeted_plan_takes_the_most_effect_per_fen_first() -> None:
    effects = np.array([[0.5, 0.4], [0.9, 0.1], [-0.2, -0.1], [0.3, 0.29]])
    plan = plan_under_budget(effects, [100, 10], budget_fen=120)
    # Cheap push for customers 0, 1 and 3 (20, 10, 29 per 1000 fen of effect), then one upgrade to the coupon:
    # customer 1 gains 0.8 for 90 more fen; customer 2 gains nothing from anything.
    assert plan.choice.tolist() == [1, 0, -1, 1] and plan.spent_fen == 120
    unlimited = plan_under_budget(effects, [100, 10], budget_fen=0)
    assert unlimited.choice.tolist() == [0, 0, -1, 0]


def test_qini_is_zero_for_a_constant_score_and_positive_for_the_truth() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=20_000)
    t = rng.integers(0, 2, 20_000).astype(float)
    y = t * np.maximum(x, 0) + rng.normal(size=20_000)
    truth, _ = qini_auuc(x, t, y)
    reverse, _ = qini_auuc(-x, t, y)
    assert truth > 0.05 and reverse < -0.05


def test_an_uplift_job_cancels_during_its_bootstrap(service, simulation) -> None:
    import time

    from svc_common.pb.qiming.common.v1 import job_pb2

    dataset, _ = simulation
    job = _train(service, dataset.dataset_id, model_name="sim_cancel", bootstrap_rounds=10_000)
    deadline = time.monotonic() + 60
    while "round" not in service.jobs.get(job.job_id).progress_message and time.monotonic() < deadline:
        time.sleep(0.01)
    service.jobs.cancel(job.job_id)
    ended = service.jobs.wait(job.job_id, 60)
    assert ended.state == job_pb2.JOB_STATE_CANCELLED and ended.progress_percent < 100
