"""svc_campaign's gRPC layer: request → domain call → proto. Nothing else lives here."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from grpc import aio

from svc_campaign.checks import SUPPRESSION_REASONS, bounded, known
from svc_campaign.config import CampaignSettings
from svc_campaign.journeys import check_size
from svc_campaign.service import CampaignService, bad, customer_id
from svc_campaign.store import tables
from svc_common.errors import NotFound
from svc_common.paging import PAGE_BYTES, decode_token, encode_token, page_size
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.campaign.v1 import campaign_pb2_grpc as pb_grpc
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.runtime import ServiceRuntime
from svc_common.server import ServiceSpec, note_customers
from svc_common.timestamps import range_datetimes, timestamp_datetime

T = TypeVar("T")
LIST_PAGE_BYTES = PAGE_BYTES


async def _run(function: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(function, *args)


def _customer(ref: types_pb2.UserRef, field: str = "user") -> str:
    """The customer number of ``ref``, recorded in the call's audit record."""
    user = customer_id(ref, field)
    note_customers(user)
    return user


def _noted(messages: list[pb.Message]) -> list[pb.Message]:
    """``messages``, their customers recorded in the call's audit record (a listing or a read by message id)."""
    note_customers(*{m.user.value for m in messages})
    return messages


def _required(value: str, field: str) -> str:
    if not value:
        raise bad(field, "required")
    return value


class _Transactional:
    """Runs a domain function in one connection: a write transaction (``_tx``) or a read (``_read``)."""

    def __init__(self, service: CampaignService) -> None:
        self._s = service

    def _tx(self, function: Callable[..., T], *args: Any) -> T:
        with self._s.db.connection(write=True) as conn:
            return function(conn, *args)

    def _read(self, function: Callable[..., T], *args: Any) -> T:
        with self._s.db.connection() as conn:
            return function(conn, *args)


class JourneyServicer(_Transactional, pb_grpc.JourneyServiceServicer):
    async def CreateJourney(
        self, request: pb.CreateJourneyRequest, context: aio.ServicerContext
    ) -> pb.CreateJourneyResponse:
        bounded(request.journey.name, "journey.name", "journey", "name")
        bounded(request.journey.purpose, "journey.purpose", "journey", "purpose")
        check_size(request.journey.draft, "journey.draft", request.journey.description)  # before any other work
        journey = await _run(self._tx, self._s.journeys.create, request.journey, self._s.clock.now())
        return pb.CreateJourneyResponse(journey=journey)

    async def UpdateJourneyDraft(
        self, request: pb.UpdateJourneyDraftRequest, context: aio.ServicerContext
    ) -> pb.UpdateJourneyDraftResponse:
        _required(request.journey_id, "journey_id")
        check_size(request.draft, "draft")  # before any other work
        journey, problems = await _run(self._tx, self._s.journeys.update_draft, request, self._s.clock.now())
        return pb.UpdateJourneyDraftResponse(journey=journey, problems=[p.to_proto() for p in problems])

    async def ValidateJourney(
        self, request: pb.ValidateJourneyRequest, context: aio.ServicerContext
    ) -> pb.ValidateJourneyResponse:
        problems = await _run(self._tx, self._s.journeys.problems, request.graph, request.purpose or "marketing")
        return pb.ValidateJourneyResponse(problems=[p.to_proto() for p in problems])

    async def PublishJourney(
        self, request: pb.PublishJourneyRequest, context: aio.ServicerContext
    ) -> pb.PublishJourneyResponse:
        _required(request.journey_id, "journey_id")
        journey = await _run(
            self._tx, self._s.journeys.publish, request.journey_id, request.expected_draft_revision, self._s.clock.now()
        )
        return pb.PublishJourneyResponse(journey=journey)

    async def GetJourney(self, request: pb.GetJourneyRequest, context: aio.ServicerContext) -> pb.GetJourneyResponse:
        _required(request.journey_id, "journey_id")
        return pb.GetJourneyResponse(
            journey=await _run(self._tx, self._s.journeys.get, request.journey_id, request.version)
        )

    async def ListJourneys(
        self, request: pb.ListJourneysRequest, context: aio.ServicerContext
    ) -> pb.ListJourneysResponse:
        size = page_size(request.page.page_size)
        position = decode_token(request.page.page_token, "journeys") or {}
        states = [
            pb.JourneyState.Name(s).removeprefix("JOURNEY_STATE_")
            for s in known(request.states, pb.JourneyState, "states")
        ]
        # A page ends early (with a next page token) once its journeys pass LIST_PAGE_BYTES: a default client takes
        # 4 MiB at most, and drafts may be large.
        found, more = await _run(
            self._read, self._s.journeys.page, states, str(position.get("id", "")), size, LIST_PAGE_BYTES
        )
        response = pb.ListJourneysResponse(journeys=found)
        if more:
            response.next_page_token = encode_token("journeys", {"id": found[-1].journey_id})
        return response

    async def _transition(self, journey_id: str, action: str, reason: str = "") -> pb.Journey:
        _required(journey_id, "journey_id")
        return await _run(self._tx, self._s.journeys.transition, journey_id, action, self._s.clock.now(), reason)

    async def StartJourney(
        self, request: pb.StartJourneyRequest, context: aio.ServicerContext
    ) -> pb.StartJourneyResponse:
        return pb.StartJourneyResponse(journey=await self._transition(request.journey_id, "start"))

    async def PauseJourney(
        self, request: pb.PauseJourneyRequest, context: aio.ServicerContext
    ) -> pb.PauseJourneyResponse:
        return pb.PauseJourneyResponse(journey=await self._transition(request.journey_id, "pause"))

    async def StopJourney(self, request: pb.StopJourneyRequest, context: aio.ServicerContext) -> pb.StopJourneyResponse:
        # Kept as the participants' exit reason "stopped:<reason>".
        bounded(request.reason, "reason", "instance", "exit_reason", spare=len("stopped:"))
        return pb.StopJourneyResponse(journey=await self._transition(request.journey_id, "stop", request.reason))

    async def GetJourneyReport(
        self, request: pb.GetJourneyReportRequest, context: aio.ServicerContext
    ) -> pb.GetJourneyReportResponse:
        _required(request.journey_id, "journey_id")
        start, end = range_datetimes(request.time_range)
        return await _run(self._read, self._s.journeys.report, request.journey_id, start, end)

    async def GetJourneyProgress(
        self, request: pb.GetJourneyProgressRequest, context: aio.ServicerContext
    ) -> pb.GetJourneyProgressResponse:
        _required(request.journey_id, "journey_id")
        user = _customer(request.user)
        return await _run(self._read, self._s.journeys.progress, request.journey_id, user)

    async def ListScheduledRuns(
        self, request: pb.ListScheduledRunsRequest, context: aio.ServicerContext
    ) -> pb.ListScheduledRunsResponse:
        _required(request.journey_id, "journey_id")

        def runs_of(conn: Any, journey_id: str, limit: int) -> list[pb.ScheduledRun]:
            if not self._s.journeys.store.exists(conn, journey_id):
                raise NotFound(f"no journey {journey_id!r}", metadata={"journey_id": journey_id})
            return self._s.scheduler.list_runs(conn, journey_id, limit)

        runs = await _run(self._read, runs_of, request.journey_id, min(request.limit or 50, 1000))
        return pb.ListScheduledRunsResponse(runs=runs)


class TemplateServicer(pb_grpc.TemplateServiceServicer):
    def __init__(self, service: CampaignService) -> None:
        self._s = service

    async def CreateTemplate(
        self, request: pb.CreateTemplateRequest, context: aio.ServicerContext
    ) -> pb.CreateTemplateResponse:
        return pb.CreateTemplateResponse(template=await _run(self._s.create_template, request.template))

    async def UpdateTemplate(
        self, request: pb.UpdateTemplateRequest, context: aio.ServicerContext
    ) -> pb.UpdateTemplateResponse:
        _required(request.template.template_id, "template.template_id")
        return pb.UpdateTemplateResponse(
            template=await _run(self._s.update_template, request.template, request.expected_version)
        )

    async def GetTemplate(self, request: pb.GetTemplateRequest, context: aio.ServicerContext) -> pb.GetTemplateResponse:
        _required(request.template_id, "template_id")
        return pb.GetTemplateResponse(template=await _run(self._s.get_template, request.template_id))

    async def ListTemplates(
        self, request: pb.ListTemplatesRequest, context: aio.ServicerContext
    ) -> pb.ListTemplatesResponse:
        size = page_size(request.page.page_size)
        position = decode_token(request.page.page_token, "templates") or {}
        known([request.channel], pb.ChannelType, "channel")
        found = await _run(self._s.list_templates, request.channel, str(position.get("id", "")), size + 1)
        response = pb.ListTemplatesResponse(templates=found[:size])
        if len(found) > size:
            response.next_page_token = encode_token("templates", {"id": found[size - 1].template_id})
        return response

    async def CheckContent(
        self, request: pb.CheckContentRequest, context: aio.ServicerContext
    ) -> pb.CheckContentResponse:
        return await _run(self._s.check_content, request.template)

    async def RenderTemplate(
        self, request: pb.RenderTemplateRequest, context: aio.ServicerContext
    ) -> pb.RenderTemplateResponse:
        _required(request.template_id, "template_id")
        _customer(request.user)
        return await _run(self._s.render_template, request)


class PolicyServicer(pb_grpc.PolicyServiceServicer):
    def __init__(self, service: CampaignService) -> None:
        self._s = service

    async def SetConsent(self, request: pb.SetConsentRequest, context: aio.ServicerContext) -> pb.SetConsentResponse:
        _customer(request.consent.user, "consent.user")
        bounded(request.consent.purpose, "consent.purpose", "consent", "purpose")
        bounded(request.consent.source, "consent.source", "consent", "source")
        return pb.SetConsentResponse(consent=await _run(self._s.set_consent, request.consent))

    async def GetConsent(self, request: pb.GetConsentRequest, context: aio.ServicerContext) -> pb.GetConsentResponse:
        _customer(request.user)
        return pb.GetConsentResponse(consents=await _run(self._s.get_consent, request.user, request.include_history))

    async def GetContactPolicy(
        self, request: pb.GetContactPolicyRequest, context: aio.ServicerContext
    ) -> pb.GetContactPolicyResponse:
        return pb.GetContactPolicyResponse(policy=await _run(self._s.get_policy))

    async def UpdateContactPolicy(
        self, request: pb.UpdateContactPolicyRequest, context: aio.ServicerContext
    ) -> pb.UpdateContactPolicyResponse:
        return pb.UpdateContactPolicyResponse(
            policy=await _run(self._s.update_policy, request.policy, request.expected_version)
        )

    async def CheckContact(
        self, request: pb.CheckContactRequest, context: aio.ServicerContext
    ) -> pb.CheckContactResponse:
        _customer(request.user)
        return await _run(self._s.check_contact, request)


class DeliveryServicer(pb_grpc.DeliveryServiceServicer):
    def __init__(self, service: CampaignService) -> None:
        self._s = service

    async def SendMessage(self, request: pb.SendMessageRequest, context: aio.ServicerContext) -> pb.SendMessageResponse:
        _customer(request.user)
        bounded(request.purpose, "purpose", "message", "purpose")
        return pb.SendMessageResponse(message=await _run(self._s.send_message, request))

    async def GetMessage(self, request: pb.GetMessageRequest, context: aio.ServicerContext) -> pb.GetMessageResponse:
        _required(request.message_id, "message_id")
        message = await _run(self._s.get_message, request.message_id)
        return pb.GetMessageResponse(message=_noted([message])[0])

    async def ReportDeliveryReceipt(
        self, request: pb.ReportDeliveryReceiptRequest, context: aio.ServicerContext
    ) -> pb.ReportDeliveryReceiptResponse:
        _required(request.message_id, "message_id")
        bounded(request.gateway_message_id, "gateway_message_id", "message", "gateway_message_id")
        message = await _run(self._s.report_receipt, request)
        return pb.ReportDeliveryReceiptResponse(message=_noted([message])[0])

    async def _list(
        self, request: Any, kind: str, *, user: str, suppressed: bool, reasons: list[str], channels: list[int]
    ) -> tuple[list[pb.Message], str]:
        size = page_size(request.page.page_size)
        position = decode_token(request.page.page_token, kind)
        after = (dt.datetime.fromisoformat(position["at"]), str(position["id"])) if position else None
        start, end = range_datetimes(request.time_range)
        found = await _run(
            lambda: self._s.list_messages(
                user=user,
                journey_id=request.journey_id,
                channels=channels,
                start=start,
                end=end,
                suppressed=suppressed,
                reasons=reasons,
                after=after,
                limit=size + 1,
            )
        )
        token = ""
        if len(found) > size:
            last = found[size - 1]
            token = encode_token(
                kind, {"at": last.created_at.ToDatetime(tzinfo=dt.UTC).isoformat(), "id": last.message_id}
            )
        return _noted(found[:size]), token

    async def ListContactHistory(
        self, request: pb.ListContactHistoryRequest, context: aio.ServicerContext
    ) -> pb.ListContactHistoryResponse:
        user = _customer(request.user)
        messages, token = await self._list(
            request,
            "history",
            user=user,
            suppressed=False,
            reasons=[],
            channels=known(request.channels, pb.ChannelType, "channels"),
        )
        return pb.ListContactHistoryResponse(messages=messages, next_page_token=token)

    async def ListSuppressions(
        self, request: pb.ListSuppressionsRequest, context: aio.ServicerContext
    ) -> pb.ListSuppressionsResponse:
        user = _customer(request.user) if request.user.value else ""
        for reason in request.reasons:
            if reason not in SUPPRESSION_REASONS:
                raise bad(
                    "reasons",
                    f"{reason!r} is not a suppression reason (one of {', '.join(sorted(SUPPRESSION_REASONS))})",
                )
        messages, token = await self._list(
            request, "suppressions", user=user, suppressed=True, reasons=list(request.reasons), channels=[]
        )
        return pb.ListSuppressionsResponse(messages=messages, next_page_token=token)


class ExperimentServicer(_Transactional, pb_grpc.ExperimentServiceServicer):
    async def CreateExperiment(
        self, request: pb.CreateExperimentRequest, context: aio.ServicerContext
    ) -> pb.CreateExperimentResponse:
        experiment = request.experiment
        bounded(experiment.experiment_id, "experiment.experiment_id", "experiment", "experiment_id")
        bounded(experiment.goal_event_type, "experiment.goal_event_type", "experiment", "goal_event_type")
        for n, variant in enumerate(experiment.variants):
            bounded(variant.key, f"experiment.variants[{n}].key", "assignment", "variant")
        created = await _run(self._tx, self._s.experiments.create, request.experiment, self._s.clock.now())
        return pb.CreateExperimentResponse(experiment=created)

    async def GetExperiment(
        self, request: pb.GetExperimentRequest, context: aio.ServicerContext
    ) -> pb.GetExperimentResponse:
        _required(request.experiment_id, "experiment_id")
        return pb.GetExperimentResponse(
            experiment=await _run(self._read, self._s.experiments.get, request.experiment_id)
        )

    async def ListExperiments(
        self, request: pb.ListExperimentsRequest, context: aio.ServicerContext
    ) -> pb.ListExperimentsResponse:
        size = page_size(request.page.page_size)
        position = decode_token(request.page.page_token, "experiments") or {}
        found = await _run(self._read, self._s.experiments.list, str(position.get("id", "")), size + 1)
        response = pb.ListExperimentsResponse(experiments=found[:size])
        if len(found) > size:
            response.next_page_token = encode_token("experiments", {"id": found[size - 1].experiment_id})
        return response

    async def AssignVariant(
        self, request: pb.AssignVariantRequest, context: aio.ServicerContext
    ) -> pb.AssignVariantResponse:
        _required(request.experiment_id, "experiment_id")
        user = _customer(request.user)

        def assign(conn: Any) -> str:
            experiment = self._s.experiments.get(conn, request.experiment_id)
            return self._s.experiments.assign(
                conn, experiment, user, self._s.clock.now(), expose=request.record_exposure
            )

        return pb.AssignVariantResponse(variant=await _run(self._tx, assign))

    async def RecordOutcome(
        self, request: pb.RecordOutcomeRequest, context: aio.ServicerContext
    ) -> pb.RecordOutcomeResponse:
        _required(request.experiment_id, "experiment_id")
        user = _customer(request.user)
        kinds = {
            pb.RecordOutcomeRequest.KIND_EXPOSURE: "exposure",
            pb.RecordOutcomeRequest.KIND_CLICK: "click",
            pb.RecordOutcomeRequest.KIND_CONVERSION: "conversion",
        }
        if request.kind not in kinds:
            raise bad("kind", "EXPOSURE, CLICK or CONVERSION")
        at = timestamp_datetime(request.at, "at") if request.HasField("at") else self._s.clock.now()

        def record(conn: Any) -> None:
            experiment = self._s.experiments.get(conn, request.experiment_id)
            self._s.experiments.assign(conn, experiment, user, at, expose=kinds[request.kind] == "exposure")
            self._s.experiments.record(conn, request.experiment_id, user, kinds[request.kind], at, request.value_fen)

        await _run(self._tx, record)
        return pb.RecordOutcomeResponse()

    async def GetExperimentResults(
        self, request: pb.GetExperimentResultsRequest, context: aio.ServicerContext
    ) -> pb.GetExperimentResultsResponse:
        _required(request.experiment_id, "experiment_id")
        known([request.metric], pb.Metric, "metric")
        _, results = await _run(self._read, self._s.experiments.results, request.experiment_id, request.metric)
        return results

    async def ConcludeExperiment(
        self, request: pb.ConcludeExperimentRequest, context: aio.ServicerContext
    ) -> pb.ConcludeExperimentResponse:
        _required(request.experiment_id, "experiment_id")
        _required(request.winner_variant, "winner_variant")
        concluded = await _run(
            self._tx, self._s.experiments.conclude, request.experiment_id, request.winner_variant, self._s.clock.now()
        )
        return pb.ConcludeExperimentResponse(experiment=concluded)


def build_service(runtime: ServiceRuntime, **overrides: Any) -> CampaignService:
    settings = runtime.settings
    assert isinstance(settings, CampaignSettings)
    # The keyring the runtime loaded and checked at start (not a second read of the file).
    overrides.setdefault("keys", runtime.keys)
    return CampaignService(settings, runtime.database, tables, **overrides)


def register_all(service: CampaignService, server: aio.Server) -> None:
    pb_grpc.add_JourneyServiceServicer_to_server(JourneyServicer(service), server)
    pb_grpc.add_TemplateServiceServicer_to_server(TemplateServicer(service), server)
    pb_grpc.add_PolicyServiceServicer_to_server(PolicyServicer(service), server)
    pb_grpc.add_DeliveryServiceServicer_to_server(DeliveryServicer(service), server)
    pb_grpc.add_ExperimentServiceServicer_to_server(ExperimentServicer(service), server)


def build_spec(runtime: ServiceRuntime) -> ServiceSpec:
    service = build_service(runtime)
    names = [s.full_name for s in pb.DESCRIPTOR.services_by_name.values()]
    # Health follows the service database (NOT_SERVING while it does not answer; docs/operations.md).
    return runtime.spec(
        names,
        lambda server: register_all(service, server),
        on_start=[service.start],
        on_stop=[service.stop],
        dependency_probes=[runtime.database_probe()],
    )
