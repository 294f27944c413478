"""Session 13 review fixes in journeys and experiments: a send of a marketing journey must be marketing, a run
window that can never open is refused, auto-promotion needs evidence, RecordOutcome conversions follow the
attribution rule of goal events, and the decision text does not report noise as a lead."""

from __future__ import annotations

import datetime as dt

import pytest
from campaign_helpers import T0, add_template, campaign_service, notice_graph, on_event, simple_graph

from svc_campaign.experiments import analyse, validate_experiment
from svc_common.errors import FailedPrecondition, InvalidArgument
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb

MESSAGE = (
    "a send in a marketing journey must set is_marketing (consent, caps and quiet hours apply), "
    "or give the journey a service purpose"
)


def test_a_marketing_journey_refuses_a_send_without_is_marketing(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        add_template(service)
    with campaign_service(tmp_path, database_url) as service, service.db.connection(write=True) as conn:
        # ValidateJourney (a graph without a journey: the default purpose, marketing) names the node.
        problems = service.journeys.problems(conn, notice_graph())
        assert [(p.node_id, p.code) for p in problems] == [("promo", "service_send_in_marketing_journey")]
        assert MESSAGE in problems[0].message
        for purpose in ("", "marketing", "fund_promotion"):
            journey_id = f"j_{purpose or 'default'}"
            journey = pb.Journey(journey_id=journey_id, name="n", purpose=purpose, draft=notice_graph())
            service.journeys.create(conn, journey, T0)
            with pytest.raises(InvalidArgument) as raised:
                service.journeys.publish(conn, journey_id, 0, T0)
            assert "node 'promo'" in raised.value.message and MESSAGE in raised.value.message
        # A service purpose may send service notices; a marketing send is fine in any journey.
        for journey_id, purpose, graph in [
            ("notice", "service_notice", notice_graph()),
            ("plain_service", "service", notice_graph()),
            ("promo", "marketing", simple_graph(on_event("signup"))),
        ]:
            service.journeys.create(conn, pb.Journey(journey_id=journey_id, name="n", purpose=purpose, draft=graph), T0)
            assert service.journeys.publish(conn, journey_id, 0, T0).published_version == 1


def test_a_run_window_that_never_opens_is_refused(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        add_template(service)
    with campaign_service(tmp_path, database_url) as service, service.db.connection(write=True) as conn:
        graph = simple_graph(on_event("signup"))
        backwards = pb.Journey(journey_id="backwards", name="n", draft=graph)
        backwards.start_at.FromDatetime(T0 + dt.timedelta(days=2))
        backwards.end_at.FromDatetime(T0 + dt.timedelta(days=1))
        with pytest.raises(InvalidArgument, match=r"end_at .* is not after journey\.start_at"):
            service.journeys.create(conn, backwards, T0)


def test_starting_a_journey_whose_run_window_is_over_is_refused(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        add_template(service)
    with campaign_service(tmp_path, database_url) as service, service.db.connection(write=True) as conn:
        graph = simple_graph(on_event("signup"))
        ended = pb.Journey(journey_id="ended", name="n", draft=graph)
        ended.end_at.FromDatetime(T0 - dt.timedelta(days=1))
        service.journeys.create(conn, ended, T0)
        service.journeys.publish(conn, "ended", 0, T0)
        with pytest.raises(FailedPrecondition, match="run window is over") as raised:
            service.journeys.transition(conn, "ended", "start", T0)
        assert raised.value.reason == "RUN_WINDOW_OVER"
        future = pb.Journey(journey_id="future", name="n", draft=graph)
        future.end_at.FromDatetime(T0 + dt.timedelta(days=1))
        service.journeys.create(conn, future, T0)
        service.journeys.publish(conn, "future", 0, T0)
        assert service.journeys.transition(conn, "future", "start", T0).state == pb.JOURNEY_STATE_RUNNING


def _experiment(experiment_id: str = "e1", **rule: object) -> pb.Experiment:
    return pb.Experiment(
        experiment_id=experiment_id,
        name=experiment_id,
        goal_event_type="deposit",
        attribution_window_seconds=86_400,
        variants=[pb.Variant(key="A", weight_bps=5000, is_control=True), pb.Variant(key="B", weight_bps=5000)],
        auto_promotion=pb.AutoPromotion(enabled=True, metric=pb.METRIC_CONVERSION, **rule),  # type: ignore[arg-type]
    )


def test_auto_promotion_refuses_a_coin_toss_threshold() -> None:
    with pytest.raises(InvalidArgument, match="min_probability_best"):
        validate_experiment(_experiment(min_probability_best=0.5))  # with two arms: whoever the noise favours


def test_auto_promotion_needs_evidence(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service, service.db.connection(write=True) as conn:
        service.experiments.create(conn, _experiment(min_probability_best=0.51), T0)
        assert service.experiments.maybe_promote(conn, "e1", T0) is None  # no exposures at all
        _, result = service.experiments.results(conn, "e1", 0)
        assert result.decision == "no data yet: no exposures" and not result.leading_variant
    # Exposures but no conversion: no evidence either. min_sample_per_variant 0 waits for 100 per variant.
    experiment = _experiment(min_probability_best=0.51)
    assert not analyse(
        experiment, {"A": (500, 0, 0.0, 0.0), "B": (480, 0, 0.0, 0.0)}, pb.METRIC_CONVERSION
    ).leading_variant
    assert "no leader: no conversions" in analyse(experiment, {"A": (5, 0, 0, 0), "B": (5, 0, 0, 0)}, 2).decision
    waiting = analyse(experiment, {"A": (50, 1, 0.0, 0.0), "B": (50, 9, 0.0, 0.0)}, pb.METRIC_CONVERSION)
    assert not waiting.leading_variant and waiting.decision.startswith("waiting for 100 exposures")
    promoted = analyse(experiment, {"A": (200, 2, 0.0, 0.0), "B": (200, 30, 0.0, 0.0)}, pb.METRIC_CONVERSION)
    assert promoted.leading_variant == "B"
    one_sided = analyse(experiment, {"A": (0, 0, 0.0, 0.0), "B": (10, 9, 0.0, 0.0)}, pb.METRIC_CONVERSION)
    assert not one_sided.leading_variant and one_sided.decision == "no data yet for A: no exposures"


def test_decision_text_reports_no_lead_without_data_or_on_a_tie() -> None:
    experiment = _experiment()
    experiment.auto_promotion.enabled = False
    empty = analyse(experiment, {"A": (0, 0, 0.0, 0.0), "B": (0, 0, 0.0, 0.0)}, pb.METRIC_CONVERSION)
    assert empty.decision == "no data yet: no exposures; auto-promotion is off"
    same = {"A": (40, 10, 4000.0, 800_000.0), "B": (40, 10, 4000.0, 800_000.0)}
    tie = analyse(experiment, same, pb.METRIC_VALUE)
    assert tie.decision.startswith("no leader: P(best) 0.50") and not tie.leading_variant
    lead = analyse(experiment, {"A": (400, 10, 0.0, 0.0), "B": (400, 40, 0.0, 0.0)}, pb.METRIC_CONVERSION)
    assert lead.decision.startswith("B leads with P(best)=")


def test_record_outcome_conversion_follows_the_attribution_window(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service, service.db.connection(write=True) as conn:
        experiment = service.experiments.create(conn, _experiment(min_probability_best=0.95), T0)
        for user in ("ot1", "ot2", "ot3"):
            service.experiments.assign(conn, experiment, user, T0, expose=True)
        record = service.experiments.record
        with pytest.raises(FailedPrecondition, match="outside the attribution window") as before:
            record(conn, "e1", "ot1", "conversion", T0 - dt.timedelta(hours=1))
        assert before.value.reason == "OUTSIDE_ATTRIBUTION_WINDOW"
        with pytest.raises(FailedPrecondition, match="outside the attribution window"):
            record(conn, "e1", "ot2", "conversion", T0 + dt.timedelta(days=3))
        record(conn, "e1", "ot3", "conversion", T0 + dt.timedelta(minutes=1))
        with pytest.raises(FailedPrecondition, match="never exposed") as never:
            record(conn, "e1", "ot9", "conversion", T0)
        assert never.value.reason == "NOT_EXPOSED"
        service.experiments.assign(conn, experiment, "ot8", T0, expose=False)  # what RecordOutcome does first
        with pytest.raises(FailedPrecondition, match="never exposed"):
            record(conn, "e1", "ot8", "conversion", T0)
        counts = service.experiments.counts(conn, experiment, pb.METRIC_CONVERSION)
    assert sum(c[1] for c in counts.values()) == 1
