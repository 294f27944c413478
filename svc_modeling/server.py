"""svc_modeling's gRPC layer: request → domain call → proto. Nothing else lives here."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from grpc import aio

from svc_common.errors import FieldViolation, InvalidArgument, ResourceExhausted
from svc_common.paging import PAGE_BYTES, decode_token, encode_token, fitting, page_size
from svc_common.pb.qiming.common.v1 import job_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_common.pb.qiming.modeling.v1 import modeling_pb2_grpc as pb_grpc
from svc_common.runtime import ServiceRuntime
from svc_common.server import ServiceSpec, current_call, register_not_yet_built
from svc_modeling.config import ModelingSettings
from svc_modeling.guard import DATA_MESSAGES, check_message, validated
from svc_modeling.store import SqlModelingStore, tables

if TYPE_CHECKING:
    from svc_modeling.service import ModelingService

log = logging.getLogger("qiming.modeling")
# The libraries of the ``modeling`` extra: without them the contract is served as not available.
MODELING_EXTRA = frozenset({"numpy", "pandas", "scipy", "sklearn", "lightgbm"})

T = TypeVar("T")
_READ_BATCH_DEFAULT, _READ_BATCH_MAX = 1000, 10_000
LIST_PAGE_BYTES = PAGE_BYTES


def _caller() -> str:
    call = current_call()
    return call.principal.subject if call is not None else ""


def _roles() -> frozenset[str]:
    call = current_call()
    return call.principal.roles if call is not None else frozenset()


async def _run(function: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(function, *args)


@validated
class DatasetServicer(pb_grpc.DatasetServiceServicer):
    def __init__(self, service: ModelingService) -> None:
        self._service = service

    async def ImportRows(
        self, request_iterator: AsyncIterator[pb.ImportRowsRequest], context: aio.ServicerContext
    ) -> pb.ImportRowsResponse:
        # Rows arrive on the event loop and are typed on a thread as they come (no second copy of the stream).
        messages: queue.Queue[Any] = queue.Queue(maxsize=8)
        end = object()
        by = _caller()

        def consume() -> pb.ImportRowsResponse:
            def iterate() -> Iterator[pb.ImportRowsRequest]:
                while (item := messages.get()) is not end:
                    yield item

            try:
                return self._service.import_rows(iterate(), by)
            finally:
                stop.set()

        stop = threading.Event()
        worker = asyncio.ensure_future(asyncio.to_thread(consume))
        try:
            async for request in request_iterator:
                while not stop.is_set():
                    try:
                        messages.put_nowait(request)
                        break
                    except queue.Full:
                        await asyncio.sleep(0.001)
                if stop.is_set():
                    break
        finally:
            while not stop.is_set():
                try:
                    messages.put_nowait(end)
                    break
                except queue.Full:
                    await asyncio.sleep(0.001)
        return await worker

    async def UploadFile(
        self, request_iterator: AsyncIterator[pb.UploadFileRequest], context: aio.ServicerContext
    ) -> pb.UploadFileResponse:
        definition: pb.Dataset | None = None
        file_format = 0
        parts: list[bytes] = []
        size = 0
        limit = self._service.settings.max_upload_bytes
        async for request in request_iterator:
            if definition is None:
                if not request.HasField("dataset"):
                    raise InvalidArgument(
                        "the first message must carry the dataset (name) and the format",
                        violations=[FieldViolation("dataset", "set it in the first message", "MISSING_FIELD")],
                    )
                definition, file_format = request.dataset, request.format
                check_message(request)
            size += len(request.chunk)
            if size > limit:
                raise ResourceExhausted(f"the file is larger than {limit} bytes (max_upload_bytes)")
            parts.append(request.chunk)
        if definition is None:
            raise InvalidArgument(
                "no messages: send the dataset and the file", violations=[FieldViolation("dataset", "")]
            )
        return await _run(self._service.upload_file, definition, file_format, b"".join(parts), _caller())

    async def BuildFromProfiles(
        self, request: pb.BuildFromProfilesRequest, context: aio.ServicerContext
    ) -> pb.BuildFromProfilesResponse:
        job = await _run(self._service.snapshots.build_from_profiles, request, _caller())
        return pb.BuildFromProfilesResponse(job=job)

    async def FuseSurvey(self, request: pb.FuseSurveyRequest, context: aio.ServicerContext) -> pb.FuseSurveyResponse:
        return pb.FuseSurveyResponse(job=await _run(self._service.fuse_survey, request, _caller()))

    async def GetDataset(self, request: pb.GetDatasetRequest, context: aio.ServicerContext) -> pb.GetDatasetResponse:
        return pb.GetDatasetResponse(dataset=await _run(self._service.catalog.get, request.dataset_id))

    async def ListDatasets(
        self, request: pb.ListDatasetsRequest, context: aio.ServicerContext
    ) -> pb.ListDatasetsResponse:
        size = page_size(request.page.page_size)
        position = decode_token(request.page.page_token, "datasets")
        after = (dt.datetime.fromisoformat(position["at"]), str(position["id"])) if position else None
        found = await _run(self._service.catalog.list, after, size + 1)
        # A page ends early (with a next page token) once its datasets pass LIST_PAGE_BYTES.
        taken = fitting((dataset.ByteSize() + 8 for dataset in found[:size]), LIST_PAGE_BYTES)
        response = pb.ListDatasetsResponse(datasets=found[:taken])
        if len(found) > taken:
            last = found[taken - 1]
            at = last.created_at.ToDatetime(tzinfo=dt.UTC).isoformat()
            response.next_page_token = encode_token("datasets", {"at": at, "id": last.dataset_id})
        return response

    async def PreviewDataset(
        self, request: pb.PreviewDatasetRequest, context: aio.ServicerContext
    ) -> pb.PreviewDatasetResponse:
        limit = min(request.row_limit or 20, 1000)
        return await _run(self._service.catalog.preview, request.dataset_id, limit, self._service.may_unmask(_roles()))

    async def DeleteDataset(
        self, request: pb.DeleteDatasetRequest, context: aio.ServicerContext
    ) -> pb.DeleteDatasetResponse:
        await _run(self._service.catalog.delete, request.dataset_id)
        return pb.DeleteDatasetResponse()

    async def ReadRows(
        self, request: pb.ReadRowsRequest, context: aio.ServicerContext
    ) -> AsyncIterator[pb.ReadRowsResponse]:
        batch = min(request.batch_rows or _READ_BATCH_DEFAULT, _READ_BATCH_MAX)
        unmask = self._service.may_unmask(_roles())
        pages = await _run(
            lambda: iter(self._service.catalog.read(request.dataset_id, request.offset, request.limit, batch, unmask))
        )
        while True:
            page = await _run(next, pages, None)
            if page is None:
                return
            yield page


@validated
class CausalServicer(pb_grpc.CausalServiceServicer):
    def __init__(self, service: ModelingService) -> None:
        self._service = service

    async def EstimateAverageEffects(
        self, request: pb.EstimateAverageEffectsRequest, context: aio.ServicerContext
    ) -> pb.EstimateAverageEffectsResponse:
        return await _run(self._service.average_effects, request)

    async def EstimateDrivers(
        self, request: pb.EstimateDriversRequest, context: aio.ServicerContext
    ) -> pb.EstimateDriversResponse:
        return pb.EstimateDriversResponse(job=await _run(self._service.drivers.estimate, request, _caller()))

    async def GetDriverAnalysis(
        self, request: pb.GetDriverAnalysisRequest, context: aio.ServicerContext
    ) -> pb.GetDriverAnalysisResponse:
        return pb.GetDriverAnalysisResponse(analysis=await _run(self._service.drivers.get, request.analysis_id))

    async def WhatIf(self, request: pb.WhatIfRequest, context: aio.ServicerContext) -> pb.WhatIfResponse:
        return await _run(self._service.drivers.what_if, request)

    async def ResponseCurve(
        self, request: pb.ResponseCurveRequest, context: aio.ServicerContext
    ) -> pb.ResponseCurveResponse:
        return await _run(self._service.drivers.response_curve, request)

    async def DeleteDriverAnalysis(
        self, request: pb.DeleteDriverAnalysisRequest, context: aio.ServicerContext
    ) -> pb.DeleteDriverAnalysisResponse:
        await _run(self._service.drivers.delete, request.analysis_id)
        return pb.DeleteDriverAnalysisResponse()


@validated
class ModelServicer(pb_grpc.ModelServiceServicer):
    def __init__(self, service: ModelingService) -> None:
        self._service = service
        self._models = service.models

    async def TrainModel(self, request: pb.TrainModelRequest, context: aio.ServicerContext) -> pb.TrainModelResponse:
        return pb.TrainModelResponse(job=await _run(self._models.train, request, _caller()))

    async def GetModel(self, request: pb.GetModelRequest, context: aio.ServicerContext) -> pb.GetModelResponse:
        return pb.GetModelResponse(model=await _run(self._models.get, request.model_name, request.version))

    async def ListModels(self, request: pb.ListModelsRequest, context: aio.ServicerContext) -> pb.ListModelsResponse:
        size = page_size(request.page.page_size)
        position = decode_token(request.page.page_token, "models")
        after = (str(position["name"]), int(position["version"])) if position else None
        found = await _run(self._models.list, request.model_name, after, size + 1)
        response = pb.ListModelsResponse(models=found[:size])
        if len(found) > size:
            last = found[size - 1]
            response.next_page_token = encode_token("models", {"name": last.model_name, "version": last.version})
        return response

    async def SetModelStage(
        self, request: pb.SetModelStageRequest, context: aio.ServicerContext
    ) -> pb.SetModelStageResponse:
        model = await _run(self._models.set_stage, request.model_name, request.version, request.stage)
        return pb.SetModelStageResponse(model=model)

    async def Predict(self, request: pb.PredictRequest, context: aio.ServicerContext) -> pb.PredictResponse:
        return await _run(self._models.predict, request)

    async def ScoreCustomers(
        self, request: pb.ScoreCustomersRequest, context: aio.ServicerContext
    ) -> pb.ScoreCustomersResponse:
        return pb.ScoreCustomersResponse(job=await _run(self._service.score_customers, request, _caller()))

    async def DeleteModel(self, request: pb.DeleteModelRequest, context: aio.ServicerContext) -> pb.DeleteModelResponse:
        return pb.DeleteModelResponse(versions=await _run(self._models.delete, request.model_name, request.version))


@validated
class UpliftServicer(pb_grpc.UpliftServiceServicer):
    def __init__(self, service: ModelingService) -> None:
        self._uplift = service.uplift

    async def TrainUplift(self, request: pb.TrainUpliftRequest, context: aio.ServicerContext) -> pb.TrainUpliftResponse:
        return pb.TrainUpliftResponse(job=await _run(self._uplift.train, request, _caller()))

    async def GetUpliftModel(
        self, request: pb.GetUpliftModelRequest, context: aio.ServicerContext
    ) -> pb.GetUpliftModelResponse:
        return await _run(self._uplift.get, request.model_name, request.version)

    async def PredictUplift(
        self, request: pb.PredictUpliftRequest, context: aio.ServicerContext
    ) -> pb.PredictUpliftResponse:
        return await _run(self._uplift.predict, request)

    async def PlanInterventions(
        self, request: pb.PlanInterventionsRequest, context: aio.ServicerContext
    ) -> pb.PlanInterventionsResponse:
        return pb.PlanInterventionsResponse(job=await _run(self._uplift.plan, request, _caller()))


@validated
class FunnelServicer(pb_grpc.FunnelServiceServicer):
    def __init__(self, service: ModelingService) -> None:
        self._service = service

    async def ComputeAiplFunnel(
        self, request: pb.ComputeAiplFunnelRequest, context: aio.ServicerContext
    ) -> pb.ComputeAiplFunnelResponse:
        from svc_modeling.funnel import compute_funnel

        return await _run(compute_funnel, request, self._service.catalog, 0, self._service.snapshots)


@validated
class ReviewServicer(pb_grpc.ReviewServiceServicer):
    def __init__(self, service: ModelingService) -> None:
        self._review = service.review

    async def CreateReviewSchedule(
        self, request: pb.CreateReviewScheduleRequest, context: aio.ServicerContext
    ) -> pb.CreateReviewScheduleResponse:
        return pb.CreateReviewScheduleResponse(schedule=await _run(self._review.create_schedule, request.schedule))

    async def ListReviewSchedules(
        self, request: pb.ListReviewSchedulesRequest, context: aio.ServicerContext
    ) -> pb.ListReviewSchedulesResponse:
        size = page_size(request.page.page_size)
        position = decode_token(request.page.page_token, "review_schedules") or {}
        found = await _run(self._review.list_schedules, str(position.get("after", "")), size + 1)
        response = pb.ListReviewSchedulesResponse(schedules=found[:size])
        if len(found) > size:
            response.next_page_token = encode_token("review_schedules", {"after": found[size - 1].schedule_id})
        return response

    async def DeleteReviewSchedule(
        self, request: pb.DeleteReviewScheduleRequest, context: aio.ServicerContext
    ) -> pb.DeleteReviewScheduleResponse:
        await _run(self._review.delete_schedule, request.schedule_id)
        return pb.DeleteReviewScheduleResponse()

    async def RunReview(self, request: pb.RunReviewRequest, context: aio.ServicerContext) -> pb.RunReviewResponse:
        return pb.RunReviewResponse(job=await _run(self._review.run, request.schedule_id, _caller()))

    async def GetReviewReport(
        self, request: pb.GetReviewReportRequest, context: aio.ServicerContext
    ) -> pb.GetReviewReportResponse:
        return pb.GetReviewReportResponse(report=await _run(self._review.get_report, request.report_id))

    async def ListReviewReports(
        self, request: pb.ListReviewReportsRequest, context: aio.ServicerContext
    ) -> pb.ListReviewReportsResponse:
        size = page_size(request.page.page_size)
        position = decode_token(request.page.page_token, "review_reports")
        after = (dt.datetime.fromisoformat(position["at"]), str(position["id"])) if position else None
        found = await _run(self._review.list_reports, request.schedule_id, after, size + 1)
        response = pb.ListReviewReportsResponse(reports=found[:size])
        if len(found) > size:
            last = found[size - 1]
            at = last.created_at.ToDatetime(tzinfo=dt.UTC).isoformat()
            response.next_page_token = encode_token("review_reports", {"at": at, "id": last.report_id})
        return response


@validated
class JobServicer(pb_grpc.JobServiceServicer):
    def __init__(self, service: ModelingService) -> None:
        self._jobs = service.jobs

    async def GetJob(self, request: pb.GetJobRequest, context: aio.ServicerContext) -> pb.GetJobResponse:
        return pb.GetJobResponse(job=await _run(self._jobs.get, request.job_id))

    async def ListJobs(self, request: pb.ListJobsRequest, context: aio.ServicerContext) -> pb.ListJobsResponse:
        size = page_size(request.page.page_size)
        position = decode_token(request.page.page_token, "jobs")
        after = (dt.datetime.fromisoformat(position["at"]), str(position["id"])) if position else None
        states = [job_pb2.JobState.Name(s).removeprefix("JOB_STATE_") for s in request.states]
        found = await _run(self._jobs.list, states, request.kind, after, size + 1)
        response = pb.ListJobsResponse(jobs=found[:size])
        if len(found) > size:
            last = found[size - 1]
            at = last.created_at.ToDatetime(tzinfo=dt.UTC).isoformat()
            response.next_page_token = encode_token("jobs", {"at": at, "id": last.job_id})
        return response

    async def WatchJob(
        self, request: pb.WatchJobRequest, context: aio.ServicerContext
    ) -> AsyncIterator[pb.WatchJobResponse]:
        async for job in self._jobs.watch(request.job_id):
            yield pb.WatchJobResponse(job=job)

    async def CancelJob(self, request: pb.CancelJobRequest, context: aio.ServicerContext) -> pb.CancelJobResponse:
        return pb.CancelJobResponse(job=await _run(self._jobs.cancel, request.job_id))


def build_service(runtime: ServiceRuntime) -> ModelingService:
    from svc_modeling.service import ModelingService  # numpy, pandas, scikit-learn, LightGBM: the modeling extra

    settings = runtime.settings
    assert isinstance(settings, ModelingSettings)
    store = SqlModelingStore(runtime.database, tables, settings.blob_chunk_bytes)
    return ModelingService(settings, store, runtime.keys)


def build_spec(runtime: ServiceRuntime) -> ServiceSpec:
    try:
        service = build_service(runtime)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in MODELING_EXTRA:
            raise
        # A base install (e.g. `make demo`) still serves the rest of the suite; every modeling RPC answers
        # UNIMPLEMENTED naming the method, and the log says what to install.
        log.warning(
            "svc_modeling needs the 'modeling' extra (pip install 'qiming[modeling]'): %s is missing; "
            "its RPCs answer UNIMPLEMENTED",
            exc.name,
        )
        names, register_all = register_not_yet_built("modeling", missing_extra="modeling")
        return runtime.spec(names, register_all)
    built = {
        "qiming.modeling.v1.DatasetService": (pb_grpc.add_DatasetServiceServicer_to_server, DatasetServicer),
        "qiming.modeling.v1.ModelService": (pb_grpc.add_ModelServiceServicer_to_server, ModelServicer),
        "qiming.modeling.v1.UpliftService": (pb_grpc.add_UpliftServiceServicer_to_server, UpliftServicer),
        "qiming.modeling.v1.CausalService": (pb_grpc.add_CausalServiceServicer_to_server, CausalServicer),
        "qiming.modeling.v1.FunnelService": (pb_grpc.add_FunnelServiceServicer_to_server, FunnelServicer),
        "qiming.modeling.v1.ReviewService": (pb_grpc.add_ReviewServiceServicer_to_server, ReviewServicer),
        "qiming.modeling.v1.JobService": (pb_grpc.add_JobServiceServicer_to_server, JobServicer),
    }
    pending, register_pending = register_not_yet_built("modeling", set(built))

    def register(server: aio.Server) -> None:
        for add, servicer in built.values():
            add(servicer(service), server)
        register_pending(server)

    # Data rows are checked where they are converted (a NUL in ImportRows is a row problem): the server kit's walk for
    # U+0000 skips them, as guard.py's does (200,000 values held the event loop for 0.2 s).
    return runtime.spec(
        [*built, *pending],
        register,
        on_start=[service.start],
        on_stop=[service.stop],
        self_checked_messages=DATA_MESSAGES,
        # Health follows the service database (NOT_SERVING while it does not answer; docs/operations.md).
        dependency_probes=[runtime.database_probe()],
    )
