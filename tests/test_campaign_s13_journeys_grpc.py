"""Session 13 review fixes seen through gRPC: RecordOutcome(KIND_CONVERSION) of a customer never exposed is
FAILED_PRECONDITION and leaves no assignment behind, one inside the window counts; ValidateJourney names a
service send of a marketing graph."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from campaign_helpers import PUSH, T0, add_template, campaign_service, node, on_event
from test_campaign_review12_grpc import serving  # the servicers behind the server kit, on a loop in a thread

from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.campaign.v1 import campaign_pb2_grpc as pb_grpc
from svc_common.pb.qiming.common.v1 import types_pb2


def ref(value: str) -> types_pb2.UserRef:
    return types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=value)


def _outcome(kind: int, user: str, at: dt.datetime) -> pb.RecordOutcomeRequest:
    request = pb.RecordOutcomeRequest(experiment_id="e1", user=ref(user), kind=kind)  # type: ignore[arg-type]
    request.at.FromDatetime(at)
    return request


def test_record_outcome_refuses_a_conversion_it_would_not_count(tmp_path, database_url) -> None:
    kind = pb.RecordOutcomeRequest
    experiment = pb.Experiment(
        experiment_id="e1",
        name="e1",
        attribution_window_seconds=86_400,
        variants=[pb.Variant(key="A", weight_bps=5000), pb.Variant(key="B", weight_bps=5000)],
    )
    with campaign_service(tmp_path, database_url) as service, serving(service) as (channel, _audit):
        experiments = pb_grpc.ExperimentServiceStub(channel)
        experiments.CreateExperiment(pb.CreateExperimentRequest(experiment=experiment))
        with pytest.raises(grpc.RpcError) as never:
            experiments.RecordOutcome(_outcome(kind.KIND_CONVERSION, "ot9", T0))
        assert never.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "never exposed" in (never.value.details() or "")
        experiments.RecordOutcome(_outcome(kind.KIND_EXPOSURE, "ot1", T0))
        with pytest.raises(grpc.RpcError) as late:
            experiments.RecordOutcome(_outcome(kind.KIND_CONVERSION, "ot1", T0 + dt.timedelta(days=3)))
        assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        experiments.RecordOutcome(_outcome(kind.KIND_CONVERSION, "ot1", T0 + dt.timedelta(minutes=1)))
        results = experiments.GetExperimentResults(
            pb.GetExperimentResultsRequest(experiment_id="e1", metric=pb.METRIC_CONVERSION)
        )
        assert sum(v.conversions for v in results.variants) == 1
        with service.db.connection() as conn:
            assert service.experiments.store.assignment(conn, "e1", "ot9") is None  # the refusal rolled back
        # A customer who comes after the end only gets the winner: the refusal says so.
        experiments.ConcludeExperiment(pb.ConcludeExperimentRequest(experiment_id="e1", winner_variant="A"))
        with pytest.raises(grpc.RpcError) as after:
            experiments.RecordOutcome(_outcome(kind.KIND_CONVERSION, "ot7", T0))
        assert after.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "did not take part in experiment 'e1': it is concluded" in (after.value.details() or "")


def test_validate_journey_names_a_service_send_of_a_marketing_graph(tmp_path) -> None:
    graph = pb.JourneyGraph(
        entry_node_id="start",
        nodes=[
            node("start", trigger=pb.TriggerNode(trigger=on_event("signup"), next_node_id="promo")),
            node("promo", send=pb.SendNode(channel=PUSH, template_id="t1", next_node_id="end")),
            node("end", exit=pb.ExitNode(reason="done")),
        ],
    )
    with campaign_service(tmp_path) as service, serving(service) as (channel, _audit):
        add_template(service)
        journeys = pb_grpc.JourneyServiceStub(channel)
        problems = journeys.ValidateJourney(pb.ValidateJourneyRequest(graph=graph)).problems
        assert [(p.node_id, p.code) for p in problems] == [("promo", "service_send_in_marketing_journey")]
        service_purpose = pb.ValidateJourneyRequest(graph=graph, purpose="service_notice")
        assert list(journeys.ValidateJourney(service_purpose).problems) == []  # as PublishJourney would judge it
        journeys.CreateJourney(
            pb.CreateJourneyRequest(journey=pb.Journey(journey_id="n", name="n", purpose="service_notice", draft=graph))
        )
        assert journeys.PublishJourney(pb.PublishJourneyRequest(journey_id="n")).journey.published_version == 1
