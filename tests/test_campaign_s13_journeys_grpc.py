"""Session 13 review fixes seen through gRPC: RecordOutcome(KIND_CONVERSION) of a customer never exposed is
FAILED_PRECONDITION and leaves no assignment behind, one inside the window counts; ValidateJourney names a
service send of a marketing graph."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import threading
from collections.abc import Iterator

import grpc
import pytest
from campaign_helpers import PUSH, T0, add_template, campaign_service, node, on_event

from svc_campaign.server import register_all
from svc_campaign.service import CampaignService
from svc_common.config import ServerSettings
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.campaign.v1 import campaign_pb2_grpc as pb_grpc
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.server import ServiceSpec, build_server


def ref(value: str) -> types_pb2.UserRef:
    return types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=value)


@contextlib.contextmanager
def serving(service: CampaignService) -> Iterator[grpc.Channel]:
    """svc_campaign's servicers behind the project's server kit, on a loop in a thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    names = tuple(s.full_name for s in pb.DESCRIPTOR.services_by_name.values())
    spec = ServiceSpec("campaign", names, lambda server: register_all(service, server))

    async def start():  # type: ignore[no-untyped-def]
        running = build_server([spec], ServerSettings(grpc_host="127.0.0.1", grpc_port=0))
        await running.server.start()
        return running

    running = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield channel
    finally:
        asyncio.run_coroutine_threadsafe(running.server.stop(None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


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
    with campaign_service(tmp_path, database_url) as service, serving(service) as channel:
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
    with campaign_service(tmp_path) as service, serving(service) as channel:
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
