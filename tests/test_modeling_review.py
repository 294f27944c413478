"""Periodic review: PSI flags shifted features and scores, a shift above the threshold retrains the model on the
fresh data (a new candidate version), driver effects that moved are reported, schedules follow cron."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from modeling_helpers import finished, modeling_settings, running_service, upload_frame
from test_modeling_drivers import known_effects

from svc_common.errors import InvalidArgument, NotFound
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_modeling.cron import Cron
from svc_modeling.methods.stability import psi_categorical, psi_numeric


def test_psi_reads_stable_moderate_and_large_shifts() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=20_000)
    assert psi_numeric(base, rng.normal(size=20_000)) < 0.02
    assert 0.1 < psi_numeric(base, rng.normal(0.4, 1, 20_000)) < 0.25
    assert psi_numeric(base, rng.normal(1.5, 1, 20_000)) > 0.25
    with_missing = np.where(rng.random(20_000) < 0.3, np.nan, rng.normal(size=20_000))
    assert psi_numeric(base, with_missing) > 0.25  # a column that starts going missing has shifted
    web = pd.Series(rng.choice(["web", "phone"], 5000, p=[0.5, 0.5]))
    assert psi_categorical(web, pd.Series(rng.choice(["web", "phone"], 5000, p=[0.5, 0.5]))) < 0.02
    assert psi_categorical(web, pd.Series(rng.choice(["web", "phone", "mini"], 5000, p=[0.2, 0.3, 0.5]))) > 0.25


def test_cron_next_run_in_the_schedules_time_zone() -> None:
    monday_noon_utc = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
    weekly = Cron.parse("30 2 * * 1")  # Mondays 02:30 in Asia/Shanghai
    assert weekly.next_after(monday_noon_utc) == dt.datetime(2026, 11, 29, 18, 30, tzinfo=dt.UTC)
    assert Cron.parse("*/15 * * * *").next_after(dt.datetime(2026, 11, 23, 12, 7, tzinfo=dt.UTC)).minute == 15
    utc_daily = Cron.parse("0 6 * * *", "UTC")
    assert utc_daily.next_after(monday_noon_utc) == dt.datetime(2026, 11, 24, 6, 0, tzinfo=dt.UTC)
    first_or_sunday = Cron.parse("0 0 1 * 0", "UTC")  # day 1 of the month OR a Sunday, as cron does
    assert first_or_sunday.next_after(monday_noon_utc) == dt.datetime(2026, 11, 29, 0, 0, tzinfo=dt.UTC)
    for bad, field in (("* * *", "schedule.cron"), ("61 * * * *", "schedule.cron"), ("a * * * *", "schedule.cron")):
        with pytest.raises(InvalidArgument) as raised:
            Cron.parse(bad)
        assert raised.value.violations[0].field == field
    for zone in ("Mars/Olympus", "Asia"):  # "Asia": a directory of the zone database (IsADirectoryError)
        with pytest.raises(InvalidArgument, match="time zone"):
            Cron.parse("* * * * *", zone)


def _propensity_data(n: int, shift: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = rng.gamma(2.0 + shift, 2.0, n)
    logins = rng.poisson(3, n).astype(float)
    channel = rng.choice(["app", "web"], n)
    p = 1 / (1 + np.exp(-(-2 + 0.3 * tenure + 0.2 * logins)))
    return pd.DataFrame(
        {"tenure": tenure, "logins": logins, "channel": channel, "renewed": (rng.random(n) < p).astype(int)}
    )


def test_a_review_retrains_a_shifted_model_and_reports_moved_drivers(database_url: str, tmp_path) -> None:
    with running_service(modeling_settings(tmp_path, database_url)) as service:
        reference = upload_frame(service, "renewals_2025", _propensity_data(4000, 0.0, 1))
        same = upload_frame(service, "renewals_2026_same", _propensity_data(4000, 0.0, 2))
        shifted = upload_frame(service, "renewals_2026", _propensity_data(4000, 3.0, 3))
        request = pb.TrainModelRequest(
            model_name="renewal", dataset_id=reference.dataset_id, label_column="renewed",
            hyperparameters={"n_estimators": "40"}, random_seed=4,
        )  # fmt: skip
        finished(service, service.models.train(request))

        known = upload_frame(service, "known", known_effects(3000, seed=5))
        analysis_id = finished(
            service,
            service.drivers.estimate(
                pb.EstimateDriversRequest(
                    dataset_id=known.dataset_id,
                    outcome_column="renewal_value",
                    factors=["advisor_calls", "coupon"],
                    confounders=["assets", "age"],
                    random_seed=1,
                )
            ),
        ).result_name
        changed = known_effects(3000, seed=6)
        changed["renewal_value"] += changed["coupon"] * 1.5  # the coupon now works 2.5 times as well
        fresh_known = upload_frame(service, "known_2026", changed)

        stable = service.review.create_schedule(
            pb.ReviewSchedule(model_names=["renewal"], cron="0 3 * * 1", refresh_dataset_ids=[same.dataset_id])
        )
        assert stable.retrain_psi_threshold == 0.25 and stable.timezone == "Asia/Shanghai"
        report = service.review.get_report(finished(service, service.review.run(stable.schedule_id)).result_name)
        assert not report.model_changes and all(not s.shifted for s in report.stability)
        assert {s.name for s in report.stability} == {"tenure", "logins", "channel", "score:renewal"}
        assert "stable" in report.summary

        moving = service.review.create_schedule(
            pb.ReviewSchedule(
                model_names=["renewal"],
                analysis_ids=[analysis_id],
                cron="0 3 * * 1",
                refresh_dataset_ids=[shifted.dataset_id, fresh_known.dataset_id],
            )
        )
        report = service.review.get_report(finished(service, service.review.run(moving.schedule_id)).result_name)
        psi = {s.name: s for s in report.stability}
        assert psi["tenure"].shifted and psi["tenure"].psi > 0.25 and not psi["channel"].shifted
        assert psi["score:renewal"].psi > 0.1
        change = report.model_changes[0]
        assert (change.model_name, change.old_version, change.new_version) == ("renewal", 1, 2)
        retrained = service.models.get("renewal", 2)
        assert retrained.dataset_id == shifted.dataset_id and retrained.stage == pb.MODEL_STAGE_CANDIDATE
        assert retrained.lineage["parent_version"] == "1" and retrained.hyperparameters["n_estimators"] == "40"
        assert [d.factor for d in report.driver_changes] == ["coupon"]
        moved = report.driver_changes[0]
        assert moved.old_effect.value == pytest.approx(1.0, abs=0.15) and moved.new_effect.value == pytest.approx(
            2.5, abs=0.2
        )
        assert "retrained" in report.summary and "coupon" in report.summary

        listed = service.review.list_reports(moving.schedule_id, None, 10)
        assert [r.report_id for r in listed] == [report.report_id]
        assert len(service.review.list_reports("", None, 10)) == 2
        assert {s.schedule_id for s in service.review.list_schedules("", 10)} == {
            stable.schedule_id,
            moving.schedule_id,
        }


def test_due_schedules_start_once_and_move_on(tmp_path) -> None:
    with running_service(modeling_settings(tmp_path)) as service:
        data = _propensity_data(600, 0.0, 1)
        dataset = upload_frame(service, "r", data)
        finished(
            service,
            service.models.train(
                pb.TrainModelRequest(
                    model_name="r",
                    dataset_id=dataset.dataset_id,
                    label_column="renewed",
                    hyperparameters={"n_estimators": "10"},
                )
            ),
        )
        created = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
        schedule = service.review.create_schedule(
            pb.ReviewSchedule(model_names=["r"], cron="0 * * * *", timezone="UTC"), now=created
        )
        assert schedule.next_run_at.ToDatetime(tzinfo=dt.UTC) == dt.datetime(2026, 11, 23, 13, 0, tzinfo=dt.UTC)
        assert service.review.run_due(dt.datetime(2026, 11, 23, 12, 59, tzinfo=dt.UTC)) == []
        later = dt.datetime(2026, 11, 23, 13, 0, 30, tzinfo=dt.UTC)
        started = service.review.run_due(later)
        assert len(started) == 1 and started[0].kind == "run_review" and started[0].created_by == "scheduler"
        assert service.review.run_due(later) == []  # moved on: not started twice
        moved = service.review.get_schedule(schedule.schedule_id).next_run_at.ToDatetime(tzinfo=dt.UTC)
        assert moved == dt.datetime(2026, 11, 23, 14, 0, tzinfo=dt.UTC)
        finished(service, started[0])

        with pytest.raises(NotFound):
            service.review.create_schedule(pb.ReviewSchedule(model_names=["nope"], cron="0 * * * *"))
        with pytest.raises(InvalidArgument, match="models or analyses"):
            service.review.create_schedule(pb.ReviewSchedule(cron="0 * * * *"))
        with pytest.raises(InvalidArgument) as raised:
            service.review.create_schedule(pb.ReviewSchedule(model_names=["r"], cron="every day"))
        assert raised.value.violations[0].field == "schedule.cron"
        with pytest.raises(NotFound):
            service.review.run("no-such-schedule")
        with pytest.raises(NotFound):
            service.review.get_report("no-such-report")
