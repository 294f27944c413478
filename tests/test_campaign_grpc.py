"""svc_campaign over real gRPC in real processes, with a real svc_collect: events published to the log enter
a journey, the message reaches a local HTTP gateway, the receipt comes back and shows in the contact history
and the journey report; each bad request gets a precise status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import grpc
import pytest
from campaign_helpers import PUSH, Gateway, event, on_event, simple_graph
from collect_helpers import KEYRING

from svc_common.logclient import CollectClient
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.campaign.v1 import campaign_pb2_grpc as pb_grpc
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.process import ServerProcess

C1 = types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value="c1")


def wait_for(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> Iterator[tuple[ServerProcess, ServerProcess, Gateway]]:
    root = tmp_path_factory.mktemp("campaign")
    gateway = Gateway()
    collect = ServerProcess("collect", work_dir=root / "collect", env={"QIMING_COLLECT_KEYRING_JSON": KEYRING}).start()
    env = {
        "QIMING_CAMPAIGN_COLLECT_ADDRESS": collect.address,
        "QIMING_CAMPAIGN_KEYRING_JSON": KEYRING,  # it signs its $message_* events (svc_collect verifies them)
        "QIMING_CAMPAIGN_GATEWAY_URL": gateway.url,
        "QIMING_CAMPAIGN_DELIVERY_POLL_MILLIS": "50",
        "QIMING_CAMPAIGN_JOURNEY_REFRESH_SECONDS": "0.2",
    }
    campaign = ServerProcess("campaign", work_dir=root / "campaign", env=env).start()
    try:
        yield collect, campaign, gateway
    finally:
        campaign.terminate()
        collect.terminate()
        gateway.close()


def code_of(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


def test_event_to_gateway_to_receipt_to_history(suite) -> None:
    collect, campaign, gateway = suite
    with grpc.insecure_channel(campaign.address) as channel:
        journeys = pb_grpc.JourneyServiceStub(channel)
        templates = pb_grpc.TemplateServiceStub(channel)
        delivery = pb_grpc.DeliveryServiceStub(channel)
        templates.CreateTemplate(
            pb.CreateTemplateRequest(
                template=pb.Template(template_id="welcome", name="welcome", channel=PUSH, body="欢迎开户")
            ),
            timeout=10,
        )
        journey = journeys.CreateJourney(
            pb.CreateJourneyRequest(
                journey=pb.Journey(
                    journey_id="welcome", name="Welcome", draft=simple_graph(on_event("account_opened"), "welcome")
                )
            ),
            timeout=10,
        ).journey
        journeys.PublishJourney(
            pb.PublishJourneyRequest(journey_id="welcome", expected_draft_revision=journey.draft_revision), timeout=10
        )
        started = journeys.StartJourney(pb.StartJourneyRequest(journey_id="welcome"), timeout=10).journey
        assert started.state == pb.JOURNEY_STATE_RUNNING and started.published_version == 1
        time.sleep(0.5)  # the engine re-reads running journeys every 0.2 s

        async def publish() -> None:
            client = CollectClient(collect.address)
            try:
                reply = await client.publish([event("account_opened", "c1"), event("page_view", "c1")])
                assert reply.accepted_count == 2
            finally:
                await client.close()

        asyncio.run(publish())
        wait_for(lambda: gateway.requests)
        key, body = gateway.requests[0]
        assert body["customer_id"] == "c1" and body["body"] == "欢迎开户" and body["journey_id"] == "welcome"

        def history() -> list[pb.Message]:
            return list(delivery.ListContactHistory(pb.ListContactHistoryRequest(user=C1), timeout=10).messages)

        wait_for(lambda: history() and history()[0].status == pb.MESSAGE_STATUS_SENT)
        message = history()[0]
        assert message.idempotency_key == key
        clicked = delivery.ReportDeliveryReceipt(
            pb.ReportDeliveryReceiptRequest(message_id=message.message_id, status=pb.MESSAGE_STATUS_CLICKED), timeout=10
        ).message
        assert clicked.status == pb.MESSAGE_STATUS_CLICKED
        report = journeys.GetJourneyReport(pb.GetJourneyReportRequest(journey_id="welcome"), timeout=10)
        nodes = {n.node_id: n for n in report.nodes}
        assert report.entered == 1 and nodes["send"].sent == 1 and nodes["send"].clicked == 1
        progress = journeys.GetJourneyProgress(pb.GetJourneyProgressRequest(journey_id="welcome", user=C1), timeout=10)
        assert [v.node_id for v in progress.path] == ["start", "send", "end"] and progress.current_node_id == ""

    # The receipt and the send came back to the log as events.
    async def read_back() -> list[str]:
        client = CollectClient(collect.address)
        try:
            found: list[str] = []
            async for events, _ in client.read(event_types=["$message_sent", "$message_clicked"]):
                found += [e.event_type for e in events]
            return found
        finally:
            await client.close()

    wait_for(lambda: sorted(asyncio.run(read_back())) == ["$message_clicked", "$message_sent"])


def test_bad_requests_get_precise_statuses(suite) -> None:
    _, campaign, _ = suite
    invalid, missing = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
    with grpc.insecure_channel(campaign.address) as channel:
        journeys = pb_grpc.JourneyServiceStub(channel)
        templates = pb_grpc.TemplateServiceStub(channel)
        policy = pb_grpc.PolicyServiceStub(channel)
        delivery = pb_grpc.DeliveryServiceStub(channel)
        experiments = pb_grpc.ExperimentServiceStub(channel)
        assert (
            code_of(lambda: journeys.CreateJourney(pb.CreateJourneyRequest(journey=pb.Journey()), timeout=10))[0]
            == invalid
        )
        broken = pb.JourneyGraph(
            entry_node_id="start",
            nodes=[
                pb.JourneyNode(node_id="start", trigger=pb.TriggerNode(trigger=on_event("x"), next_node_id="send")),
                pb.JourneyNode(
                    node_id="send", send=pb.SendNode(channel=PUSH, template_id="nope", next_node_id="start")
                ),
                pb.JourneyNode(node_id="island", exit=pb.ExitNode()),
            ],
        )
        journeys.CreateJourney(
            pb.CreateJourneyRequest(journey=pb.Journey(journey_id="broken", name="b", draft=broken)), timeout=10
        )
        assert (
            code_of(
                lambda: journeys.CreateJourney(
                    pb.CreateJourneyRequest(journey=pb.Journey(journey_id="broken", name="b")), timeout=10
                )
            )[0]
            == grpc.StatusCode.ALREADY_EXISTS
        )
        code, details = code_of(
            lambda: journeys.PublishJourney(pb.PublishJourneyRequest(journey_id="broken"), timeout=10)
        )
        assert code == invalid and "node 'send'" in details and "unknown_template" not in details
        problems = journeys.ValidateJourney(pb.ValidateJourneyRequest(graph=broken), timeout=10).problems
        assert {(p.node_id, p.code) for p in problems} >= {("send", "unknown_template"), ("island", "unreachable")}
        code, details = code_of(lambda: journeys.StartJourney(pb.StartJourneyRequest(journey_id="broken"), timeout=10))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "DRAFT" in details
        stale = pb.UpdateJourneyDraftRequest(journey_id="broken", draft=broken, expected_draft_revision=99)
        assert code_of(lambda: journeys.UpdateJourneyDraft(stale, timeout=10))[0] == grpc.StatusCode.ABORTED
        assert code_of(lambda: journeys.GetJourney(pb.GetJourneyRequest(journey_id="nope"), timeout=10))[0] == missing
        bad_template = pb.Template(name="x", channel=PUSH, body="稳赚不赔的好基金")
        code, details = code_of(
            lambda: templates.CreateTemplate(pb.CreateTemplateRequest(template=bad_template), timeout=10)
        )
        assert code == invalid and "稳赚" in details
        phone = types_pb2.UserRef(type=types_pb2.ID_TYPE_PHONE_PSEUDONYM, value="x")
        code, details = code_of(
            lambda: policy.SetConsent(pb.SetConsentRequest(consent=pb.Consent(user=phone)), timeout=10)
        )
        assert code == invalid and "consent.user.type" in details
        code, _ = code_of(
            lambda: delivery.ListContactHistory(
                pb.ListContactHistoryRequest(user=C1, page=types_pb2.PageRequest(page_token="zz")), timeout=10
            )
        )
        assert code == invalid
        assert code_of(lambda: delivery.GetMessage(pb.GetMessageRequest(message_id="nope"), timeout=10))[0] == missing
        one_arm = pb.Experiment(name="x", variants=[pb.Variant(key="a", weight_bps=10000)])
        code, details = code_of(
            lambda: experiments.CreateExperiment(pb.CreateExperimentRequest(experiment=one_arm), timeout=10)
        )
        assert code == invalid and "experiment.variants" in details
        assert (
            code_of(
                lambda: experiments.GetExperimentResults(
                    pb.GetExperimentResultsRequest(experiment_id="nope"), timeout=10
                )
            )[0]
            == missing
        )


def test_listings_page_and_state_changes_are_checked(suite) -> None:
    _, campaign, _ = suite
    with grpc.insecure_channel(campaign.address) as channel:
        journeys = pb_grpc.JourneyServiceStub(channel)
        policy = pb_grpc.PolicyServiceStub(channel)
        experiments = pb_grpc.ExperimentServiceStub(channel)
        for n in range(3):
            journeys.CreateJourney(
                pb.CreateJourneyRequest(journey=pb.Journey(journey_id=f"list-{n}", name="x")), timeout=10
            )
        first = journeys.ListJourneys(
            pb.ListJourneysRequest(states=[pb.JOURNEY_STATE_DRAFT], page=types_pb2.PageRequest(page_size=2)), timeout=10
        )
        rest = journeys.ListJourneys(
            pb.ListJourneysRequest(
                states=[pb.JOURNEY_STATE_DRAFT], page=types_pb2.PageRequest(page_token=first.next_page_token)
            ),
            timeout=10,
        )
        listed = [j.journey_id for j in [*first.journeys, *rest.journeys]]
        assert {"list-0", "list-1", "list-2"} <= set(listed) and len(listed) == len(set(listed))
        assert all(j.state == pb.JOURNEY_STATE_DRAFT for j in [*first.journeys, *rest.journeys])

        current = policy.GetContactPolicy(pb.GetContactPolicyRequest(), timeout=10).policy
        assert (current.max_marketing_per_day, current.max_marketing_per_week) == (2, 5)
        current.max_marketing_per_day = 3
        updated = policy.UpdateContactPolicy(
            pb.UpdateContactPolicyRequest(policy=current, expected_version=current.version), timeout=10
        ).policy
        assert updated.max_marketing_per_day == 3 and updated.version == current.version + 1
        policy.UpdateContactPolicy(
            pb.UpdateContactPolicyRequest(policy=updated, expected_version=updated.version), timeout=10
        )
        stale = pb.UpdateContactPolicyRequest(policy=updated, expected_version=updated.version)  # someone else won
        assert code_of(lambda: policy.UpdateContactPolicy(stale, timeout=10))[0] == grpc.StatusCode.ABORTED

        created = experiments.CreateExperiment(
            pb.CreateExperimentRequest(
                experiment=pb.Experiment(
                    name="ab", variants=[pb.Variant(key="a", weight_bps=5000), pb.Variant(key="b", weight_bps=5000)]
                )
            ),
            timeout=10,
        ).experiment
        again = experiments.AssignVariant(
            pb.AssignVariantRequest(experiment_id=created.experiment_id, user=C1), timeout=10
        )
        assert again.variant in ("a", "b")
        assert (
            experiments.AssignVariant(
                pb.AssignVariantRequest(experiment_id=created.experiment_id, user=C1), timeout=10
            ).variant
            == again.variant
        )
        done = experiments.ConcludeExperiment(
            pb.ConcludeExperimentRequest(experiment_id=created.experiment_id, winner_variant="b"), timeout=10
        ).experiment
        assert done.state == pb.EXPERIMENT_STATE_CONCLUDED and done.winner_variant == "b"
        code, _ = code_of(
            lambda: experiments.ConcludeExperiment(
                pb.ConcludeExperimentRequest(experiment_id=created.experiment_id, winner_variant="a"), timeout=10
            )
        )
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        assert created.experiment_id in {
            e.experiment_id for e in experiments.ListExperiments(pb.ListExperimentsRequest(), timeout=10).experiments
        }
