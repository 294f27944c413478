"""Review 12, svc_campaign over gRPC (in process, with the real interceptors): unknown enum numbers (F5) and strings
longer than their column (F9, PostgreSQL answered INTERNAL) are INVALID_ARGUMENT naming the field; reads and
listings by message record the customers they return in the audit record (F1); ListScheduledRuns of an unknown
journey is NOT_FOUND (R5); quiet hours whose end names another zone are refused (R10)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import pytest
from audit_helpers import ListAuditSink
from campaign_helpers import PUSH, add_template, campaign_service, event, on_event, run_journey, simple_graph

from svc_campaign.server import register_all
from svc_campaign.service import CampaignService
from svc_common.config import ServerSettings
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.campaign.v1 import campaign_pb2_grpc as pb_grpc
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.server import ServiceSpec, build_server


def ref(value: str) -> types_pb2.UserRef:
    return types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=value)


@dataclass
class WaitingAuditSink(ListAuditSink):
    def customers(self, method: str) -> tuple[str, ...]:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            found = [r for r in self.records if r.method.endswith(f"/{method}")]
            if found:
                return tuple(sorted(found[-1].customers))
            time.sleep(0.01)
        raise AssertionError(f"no audit record of {method}")


@contextlib.contextmanager
def serving(service: CampaignService) -> Iterator[tuple[grpc.Channel, WaitingAuditSink]]:
    """svc_campaign's servicers behind the project's server kit (errors, audit), on a loop in a thread."""
    audit = WaitingAuditSink()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    names = tuple(s.full_name for s in pb.DESCRIPTOR.services_by_name.values())
    spec = ServiceSpec("campaign", names, lambda server: register_all(service, server))

    async def start():  # type: ignore[no-untyped-def]
        running = build_server([spec], ServerSettings(grpc_host="127.0.0.1", grpc_port=0), audit_sink=audit)
        await running.server.start()
        return running

    running = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield channel, audit
    finally:
        asyncio.run_coroutine_threadsafe(running.server.stop(None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def refused(call: Callable[[], object]) -> str:
    """The details of an INVALID_ARGUMENT answer (anything else fails the test)."""
    with pytest.raises(grpc.RpcError) as info:
        call()
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (info.value.code(), info.value.details())
    return info.value.details()


def _experiment(**fields) -> pb.Experiment:  # type: ignore[no-untyped-def]
    fields.setdefault("experiment_id", "e1")
    fields.setdefault("variants", [pb.Variant(key="A", weight_bps=5000), pb.Variant(key="B", weight_bps=5000)])
    return pb.Experiment(name="e", **fields)


def _queued_message(service: CampaignService) -> str:
    add_template(service, "t1", channel=PUSH)
    run_journey(service, simple_graph(on_event("signup")))
    service.engine.handle([event("signup", "c1"), event("signup", "c2")])
    return service.list_messages(
        user="c1", journey_id="", channels=[], start=None, end=None, suppressed=False, reasons=[], after=None, limit=1
    )[0].message_id


def test_unknown_enum_numbers_are_invalid_argument_naming_the_field(tmp_path) -> None:
    with campaign_service(tmp_path) as service, serving(service) as (channel, _):
        message_id = _queued_message(service)
        journeys = pb_grpc.JourneyServiceStub(channel)
        templates = pb_grpc.TemplateServiceStub(channel)
        policy = pb_grpc.PolicyServiceStub(channel)
        delivery = pb_grpc.DeliveryServiceStub(channel)
        experiments = pb_grpc.ExperimentServiceStub(channel)
        assert "states" in refused(lambda: journeys.ListJourneys(pb.ListJourneysRequest(states=[42])))
        receipt = pb.ReportDeliveryReceiptRequest(message_id=message_id, status=42)
        assert refused(lambda: delivery.ReportDeliveryReceipt(receipt)).startswith("status:")
        current = policy.GetContactPolicy(pb.GetContactPolicyRequest()).policy
        rule = current.quiet_hours.add(channels=[42])
        rule.start.hour, rule.end.hour = 21, 8
        update = pb.UpdateContactPolicyRequest(policy=current)
        assert "policy.quiet_hours[" in refused(lambda: policy.UpdateContactPolicy(update))
        assert policy.GetContactPolicy(pb.GetContactPolicyRequest()).policy.version == current.version  # not stored
        assert refused(lambda: templates.ListTemplates(pb.ListTemplatesRequest(channel=42))).startswith("channel:")
        history = pb.ListContactHistoryRequest(user=ref("c1"), channels=[42])
        assert refused(lambda: delivery.ListContactHistory(history)).startswith("channels:")
        suppressions = pb.ListSuppressionsRequest(reasons=["no_such_reason"])
        assert "no_such_reason" in refused(lambda: delivery.ListSuppressions(suppressions))
        delivery.ListSuppressions(pb.ListSuppressionsRequest(reasons=["customer_erased", "no_consent"]))  # known: OK
        results = pb.GetExperimentResultsRequest(experiment_id="e1", metric=42)
        assert refused(lambda: experiments.GetExperimentResults(results)).startswith("metric:")
        for experiment, where in (
            (_experiment(allocation=42), "experiment.allocation"),
            (_experiment(auto_promotion=pb.AutoPromotion(metric=42)), "experiment.auto_promotion.metric"),
        ):
            details = refused(
                lambda e=experiment: experiments.CreateExperiment(pb.CreateExperimentRequest(experiment=e))
            )
            assert details.startswith(where)
        graph = simple_graph(pb.Trigger(segment=pb.SegmentTrigger(segment_id="s1", change=42)))
        problems = journeys.ValidateJourney(pb.ValidateJourneyRequest(graph=graph)).problems
        assert [(p.node_id, p.code) for p in problems] == [("start", "invalid_trigger")]


def test_strings_longer_than_their_column_are_invalid_argument_on_every_database(tmp_path, database_url) -> None:
    """PostgreSQL refused them with INTERNAL ('value too long for type character varying'); SQLite stored them."""
    with campaign_service(tmp_path, database_url) as service, serving(service) as (channel, _):
        message_id = _queued_message(service)
        journeys = pb_grpc.JourneyServiceStub(channel)
        policy = pb_grpc.PolicyServiceStub(channel)
        delivery = pb_grpc.DeliveryServiceStub(channel)
        experiments = pb_grpc.ExperimentServiceStub(channel)
        send = pb.SendMessageRequest(user=ref("c" * 500), channel=PUSH, template_id="t1")
        assert refused(lambda: delivery.SendMessage(send)).startswith("user.value: at most 128 characters")
        for consent, where in (
            (pb.Consent(user=ref("c1"), purpose="p" * 1000), "consent.purpose: at most 64"),
            (pb.Consent(user=ref("c1"), source="s" * 200), "consent.source: at most 128"),
            (pb.Consent(user=ref("c" * 129)), "consent.user.value: at most 128"),
        ):
            assert refused(lambda c=consent: policy.SetConsent(pb.SetConsentRequest(consent=c))).startswith(where)
        send = pb.SendMessageRequest(user=ref("c1"), channel=PUSH, template_id="t1", purpose="p" * 65)
        assert refused(lambda: delivery.SendMessage(send)).startswith("purpose: at most 64")
        create = pb.CreateJourneyRequest(journey=pb.Journey(journey_id="long", name="n" * 5000))
        assert refused(lambda: journeys.CreateJourney(create)).startswith("journey.name: at most 256")
        create = pb.CreateJourneyRequest(journey=pb.Journey(journey_id="long", name="n", purpose="p" * 65))
        assert refused(lambda: journeys.CreateJourney(create)).startswith("journey.purpose: at most 64")
        stop = pb.StopJourneyRequest(journey_id="j1", reason="r" * 57)
        assert refused(lambda: journeys.StopJourney(stop)).startswith("reason: at most 56")
        receipt = pb.ReportDeliveryReceiptRequest(
            message_id=message_id, status=pb.MESSAGE_STATUS_DELIVERED, gateway_message_id="g" * 129
        )
        assert refused(lambda: delivery.ReportDeliveryReceipt(receipt)).startswith("gateway_message_id: at most 128")
        for experiment, where in (
            (_experiment(experiment_id="e" * 65), "experiment.experiment_id: at most 64"),
            (_experiment(goal_event_type="g" * 129, attribution_window_seconds=60), "experiment.goal_event_type"),
            (
                _experiment(variants=[pb.Variant(key="A", weight_bps=5000), pb.Variant(key="B" * 65, weight_bps=5000)]),
                "experiment.variants[1].key: at most 64",
            ),
        ):
            details = refused(
                lambda e=experiment: experiments.CreateExperiment(pb.CreateExperimentRequest(experiment=e))
            )
            assert details.startswith(where)
        long_node = simple_graph(on_event("signup"))
        long_node.nodes[2].node_id = "x" * 65
        long_node.nodes[1].send.next_node_id = "x" * 65
        scheduled = simple_graph(pb.Trigger(scheduled=pb.ScheduledTrigger(segment_id="s" * 129)))
        for graph, code in ((long_node, ("x" * 65, "too_long")), (scheduled, ("start", "too_long"))):
            problems = journeys.ValidateJourney(pb.ValidateJourneyRequest(graph=graph)).problems
            assert code in [(p.node_id, p.code) for p in problems]
        journeys.CreateJourney(pb.CreateJourneyRequest(journey=pb.Journey(journey_id="j2", name="n", draft=long_node)))
        assert "at most 64" in refused(lambda: journeys.PublishJourney(pb.PublishJourneyRequest(journey_id="j2")))
        # At the limit: stored on every database.
        delivery.SendMessage(
            pb.SendMessageRequest(
                user=ref("c" * 128), channel=PUSH, template_id="t1", purpose="p" * 64, is_marketing=True
            )
        )
        policy.SetConsent(pb.SetConsentRequest(consent=pb.Consent(user=ref("c1"), purpose="p" * 64, source="s" * 128)))
        journeys.StopJourney(pb.StopJourneyRequest(journey_id="j1", reason="r" * 56))


def test_reads_and_listings_by_message_record_their_customers(tmp_path) -> None:
    with campaign_service(tmp_path) as service, serving(service) as (channel, audit):
        message_id = _queued_message(service)
        delivery = pb_grpc.DeliveryServiceStub(channel)
        delivery.GetMessage(pb.GetMessageRequest(message_id=message_id))
        assert audit.customers("GetMessage") == ("c1",)
        receipt = pb.ReportDeliveryReceiptRequest(message_id=message_id, status=pb.MESSAGE_STATUS_DELIVERED)
        delivery.ReportDeliveryReceipt(receipt)
        assert audit.customers("ReportDeliveryReceipt") == ("c1",)
        with service.db.connection(write=True) as conn:
            service.journeys.transition(conn, "j1", "stop", service.clock.now(), "")
        assert len(delivery.ListSuppressions(pb.ListSuppressionsRequest()).messages) == 1
        assert audit.customers("ListSuppressions") == ("c2",)
        delivery.ListContactHistory(pb.ListContactHistoryRequest(user=ref("c1")))
        assert audit.customers("ListContactHistory") == ("c1",)


def test_scheduled_runs_of_an_unknown_journey_and_quiet_hours_across_zones(tmp_path) -> None:
    with campaign_service(tmp_path) as service, serving(service) as (channel, _):
        journeys = pb_grpc.JourneyServiceStub(channel)
        policy = pb_grpc.PolicyServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            journeys.ListScheduledRuns(pb.ListScheduledRunsRequest(journey_id="nope"))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND and "nope" in info.value.details()
        add_template(service, "t1", channel=PUSH)
        run_journey(service, simple_graph(on_event("signup")))
        assert list(journeys.ListScheduledRuns(pb.ListScheduledRunsRequest(journey_id="j1")).runs) == []
        current = policy.GetContactPolicy(pb.GetContactPolicyRequest()).policy
        rule = current.quiet_hours.add(channels=[PUSH])
        rule.start.hour, rule.start.timezone, rule.end.hour, rule.end.minute = 6, "UTC", 6, 30
        rule.end.timezone = "Europe/London"
        update = pb.UpdateContactPolicyRequest(policy=current)
        details = refused(lambda: policy.UpdateContactPolicy(update))
        assert details.startswith(f"policy.quiet_hours[{len(current.quiet_hours) - 1}].end.timezone")
        rule.end.timezone = ""  # the start's zone
        update = pb.UpdateContactPolicyRequest(policy=current)
        assert policy.UpdateContactPolicy(update).policy.version == current.version + 1
