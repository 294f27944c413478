"""Experiments: the statistics against scipy, the Hillstrom e-mail test replayed as a three-arm experiment
(the Mens e-mail wins on visits; effects match the data README within their intervals), simulations with a
known winner (auto-promotion picks it; an A/A test rarely promotes), Thompson sampling and the SRM check."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random

import pytest
from campaign_helpers import T0, campaign_service, event
from scipy import special
from scipy import stats as sps

from svc_campaign import stats
from svc_campaign.experiments import analyse, bucket
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_modeling.datasets import HILLSTROM_GROUP_MEANS, hillstrom_bytes

ARMS = ("No E-Mail", "Womens E-Mail", "Mens E-Mail")


def test_special_functions_match_scipy() -> None:
    for a, b, x in [(0.5, 3.0, 0.2), (12.0, 0.5, 0.97), (200.0, 300.0, 0.41), (2.5, 2.5, 0.5)]:
        assert stats.betainc(a, b, x) == pytest.approx(special.betainc(a, b, x), rel=1e-9, abs=1e-12)
    for statistic, dof in [(0.3, 1), (3.84, 1), (12.0, 2), (40.0, 5), (0.0, 3)]:
        assert stats.chi2_sf(statistic, dof) == pytest.approx(sps.chi2.sf(statistic, dof), rel=1e-8, abs=1e-14)
    for t, dof in [(2.1, 5.5), (0.4, 30), (-3.2, 120.7)]:
        assert stats.t_sf_two_sided(t, dof) == pytest.approx(2 * sps.t.sf(abs(t), dof), rel=1e-8)


def test_welch_and_two_proportion_match_scipy() -> None:
    rng = random.Random(3)
    a = [rng.expovariate(1 / 3) for _ in range(400)]
    b = [rng.expovariate(1 / 3.6) for _ in range(300)]
    _, _, comparison = stats.welch(len(b), sum(b), sum(v * v for v in b), len(a), sum(a), sum(v * v for v in a))
    reference = sps.ttest_ind(b, a, equal_var=False)
    assert comparison.p_value == pytest.approx(reference.pvalue, rel=1e-6)
    interval = reference.confidence_interval(0.95)
    assert (comparison.low, comparison.high) == pytest.approx((interval.low, interval.high), rel=1e-5)
    z = stats.two_proportion(130, 1000, 100, 1000)
    pooled = 230 / 2000
    expected = 2 * sps.norm.sf(0.03 / (pooled * (1 - pooled) * 2 / 1000) ** 0.5)
    assert z.p_value == pytest.approx(expected, rel=1e-9) and z.lift == pytest.approx(0.03)


def _hillstrom_rows() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(hillstrom_bytes().decode())))


def test_hillstrom_replayed_as_a_three_arm_experiment(tmp_path) -> None:
    rows = _hillstrom_rows()
    with campaign_service(tmp_path) as service, service.db.connection(write=True) as conn:
        experiment = service.experiments.create(
            conn,
            pb.Experiment(
                experiment_id="hillstrom",
                name="Hillstrom e-mail",
                variants=[
                    pb.Variant(key="No E-Mail", weight_bps=3334, is_control=True),
                    pb.Variant(key="Womens E-Mail", weight_bps=3333),
                    pb.Variant(key="Mens E-Mail", weight_bps=3333),
                ],
                goal_event_type="purchase",
                attribution_window_seconds=14 * 86400,
                auto_promotion=pb.AutoPromotion(
                    enabled=True,
                    min_probability_best=0.95,
                    max_expected_loss=0.001,
                    min_sample_per_variant=1000,
                    metric=pb.METRIC_CTR,
                ),
            ),
            T0,
        )
        later = T0 + dt.timedelta(days=3)
        service.experiments.bulk_record(
            conn,
            experiment.experiment_id,
            (
                {
                    "user_id": f"h{n}",
                    "variant": row["segment"],
                    "assigned_at": T0,
                    "exposed_at": T0,
                    # A visit is the click of the e-mail; a purchase the conversion, with its spend.
                    "clicked_at": later if row["visit"] == "1" else None,
                    "converted_at": later if row["conversion"] == "1" else None,
                    "value_fen": round(float(row["spend"]) * 100),
                }
                for n, row in enumerate(rows)
            ),
        )
        _, visits = service.experiments.results(conn, "hillstrom", pb.METRIC_CTR)
        _, conversions = service.experiments.results(conn, "hillstrom", pb.METRIC_CONVERSION)
        _, spend = service.experiments.results(conn, "hillstrom", pb.METRIC_VALUE)
        promoted = service.experiments.maybe_promote(conn, "hillstrom", T0)

    assert not visits.sample_ratio_mismatch and visits.srm_p_value > 0.05
    assert visits.leading_variant == "Mens E-Mail"
    assert promoted is not None and promoted.winner_variant == "Mens E-Mail"
    control = HILLSTROM_GROUP_MEANS["No E-Mail"]
    for result, column, scale in ((visits, 1, 1.0), (conversions, 2, 1.0), (spend, 3, 100.0)):
        by_arm = {v.variant: v for v in result.variants}
        assert max(by_arm, key=lambda k: by_arm[k].probability_best) == "Mens E-Mail"
        for arm in ("Mens E-Mail", "Womens E-Mail"):
            rows_, *means = HILLSTROM_GROUP_MEANS[arm]
            assert by_arm[arm].exposures == rows_
            truth = (means[column - 1] - control[column]) * scale
            assert by_arm[arm].lift_ci_low <= truth <= by_arm[arm].lift_ci_high, (arm, column)
            assert by_arm[arm].lift == pytest.approx(truth, abs=0.002 * scale)
            assert by_arm[arm].p_value < 0.05
    by_arm = {v.variant: v for v in visits.variants}
    assert by_arm["Mens E-Mail"].probability_best > 0.99 and by_arm["Mens E-Mail"].expected_loss < 1e-4
    assert by_arm["Mens E-Mail"].rate == pytest.approx(0.1828, abs=1e-4)
    visits_in_file = sum(1 for row in rows if row["segment"] == "Mens E-Mail" and row["visit"] == "1")
    assert by_arm["Mens E-Mail"].clicks == by_arm["Mens E-Mail"].conversions == visits_in_file
    assert {v.variant: v.clicks for v in conversions.variants} == {v.variant: v.conversions for v in visits.variants}


def _experiment(variants: int, *, allocation: int = pb.ALLOCATION_MODE_FIXED, **promotion) -> pb.Experiment:
    weight = 10_000 // variants
    return pb.Experiment(
        name="sim",
        variants=[
            pb.Variant(
                key=f"v{i}", weight_bps=weight + (10_000 - weight * variants if i == 0 else 0), is_control=i == 0
            )
            for i in range(variants)
        ],
        goal_event_type="fund_purchase",
        attribution_window_seconds=7 * 86400,
        allocation=allocation,
        auto_promotion=pb.AutoPromotion(enabled=True, metric=pb.METRIC_CONVERSION, **promotion),
    )


def test_simulated_experiment_with_a_known_winner_promotes_it_end_to_end(tmp_path, database_url) -> None:
    rates = {"v0": 0.05, "v1": 0.05, "v2": 0.09}
    rng = random.Random(42)
    with campaign_service(tmp_path, database_url) as service:
        with service.db.connection(write=True) as conn:
            planned = _experiment(3, min_probability_best=0.95, max_expected_loss=0.002, min_sample_per_variant=500)
            planned.salt = "fixed-salt"  # the assignment is part of the simulation: keep it reproducible
            experiment = service.experiments.create(conn, planned, T0)
            goals = []
            for n in range(4500):
                customer = f"s{n}"
                variant = service.experiments.assign(conn, experiment, customer, T0, expose=True)
                assert variant == service.experiments.assign(conn, experiment, customer, T0, expose=True)  # sticky
                if rng.random() < rates[variant]:
                    goals.append(event("fund_purchase", customer, T0 + dt.timedelta(days=2), amount_fen=10_000))
            late = event("fund_purchase", "s0", T0 + dt.timedelta(days=9))  # outside the attribution window
        service.engine.handle([*goals, late])
        with service.db.connection(write=True) as conn:
            _, result = service.experiments.results(conn, experiment.experiment_id, pb.METRIC_CONVERSION)
            assert sum(v.conversions for v in result.variants) == len(goals)
            promoted = service.experiments.maybe_promote(conn, experiment.experiment_id, T0)
        assert promoted is not None and promoted.winner_variant == "v2", result.decision
        with service.db.connection(write=True) as conn:
            assert service.experiments.assign(conn, promoted, "new-customer", T0, expose=True) == "v2"


def test_aa_simulations_rarely_promote_and_ab_simulations_find_the_winner() -> None:
    experiment = _experiment(2, min_probability_best=0.95, min_sample_per_variant=2000)
    experiment.state = pb.EXPERIMENT_STATE_RUNNING
    rng = random.Random(9)

    def simulate(rate_b: float) -> str:
        counts = {}
        for key, rate in (("v0", 0.05), ("v1", rate_b)):
            hits = sum(rng.random() < rate for _ in range(3000))
            counts[key] = (3000, hits, 0.0, 0.0)
        return analyse(experiment, counts, pb.METRIC_CONVERSION).leading_variant

    aa = [simulate(0.05) for _ in range(40)]
    ab = [simulate(0.07) for _ in range(20)]
    assert sum(1 for w in aa if w) <= 6  # P(best) >= 0.95 of two equal arms: about 10% by chance (two sides)
    assert ab.count("v1") >= 18


def test_thompson_sampling_moves_traffic_to_the_better_arm(tmp_path) -> None:
    rates = {"v0": 0.02, "v1": 0.10}
    rng = random.Random(5)
    experiment = _experiment(
        2, allocation=pb.ALLOCATION_MODE_THOMPSON_SAMPLING, min_probability_best=0.99, min_sample_per_variant=10**6
    )
    with campaign_service(tmp_path) as service, service.db.connection(write=True) as conn:
        created = service.experiments.create(conn, experiment, T0)
        service.experiments._rng.seed(5)  # the bandit's draws, reproducible in the test
        late = []
        for n in range(1500):
            variant = service.experiments.assign(conn, created, f"b{n}", T0, expose=True)
            if n >= 1000:
                late.append(variant)
            if rng.random() < rates[variant]:
                service.experiments.record(conn, created.experiment_id, f"b{n}", "conversion", T0)
        _, result = service.experiments.results(conn, created.experiment_id, pb.METRIC_CONVERSION)
    assert late.count("v1") / len(late) > 0.8
    assert {v.variant: v.allocation_bps for v in result.variants}["v1"] > 9000
    assert result.srm_p_value == 1.0  # a bandit's split is not a planned ratio


def test_sample_ratio_mismatch_blocks_promotion() -> None:
    experiment = _experiment(2, min_probability_best=0.9, min_sample_per_variant=100)
    counts = {"v0": (5000, 250, 0.0, 0.0), "v1": (4500, 400, 0.0, 0.0)}
    result = analyse(experiment, counts, pb.METRIC_CONVERSION)
    assert result.sample_ratio_mismatch and result.srm_p_value < 1e-5
    assert result.leading_variant == "" and "sample ratio mismatch" in result.decision


def test_hash_assignment_is_uniform_and_stable() -> None:
    counts = [0, 0, 0, 0]
    for n in range(40_000):
        counts[bucket("salt", f"u{n}") * 4 // 10_000] += 1
    assert stats.srm_p_value(counts, [1, 1, 1, 1]) > 0.001
    assert all(bucket("salt", f"u{n}") == bucket("salt", f"u{n}") for n in range(100))  # stable
    # Another experiment's salt reshuffles customers: its buckets are independent of this one's.
    differ = sum(bucket("salt", f"u{n}") != bucket("other", f"u{n}") for n in range(1_000))
    assert differ > 990
