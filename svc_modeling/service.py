"""svc_modeling's domain: datasets, jobs, and the questions asked of them. No gRPC here: the servicers in
``server.py`` translate. Every method is synchronous (the servicers run them on a thread); long ones start
a job and return it at once.

The statistics live in ``svc_modeling.methods``; models and uplift in ``svc_modeling.models`` and
``svc_modeling.uplift``; driver analyses in ``svc_modeling.drivers``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from svc_common.errors import FieldViolation, InvalidArgument
from svc_common.pb.qiming.common.v1 import job_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2
from svc_common.protection import KeyProvider, Sealer, key_provider_from_settings
from svc_modeling.catalog import DatasetCatalog
from svc_modeling.config import ModelingSettings
from svc_modeling.drivers import DriverService
from svc_modeling.erasure import DatasetEraser, ErasureFollowing
from svc_modeling.files import FileLimits, check_stored_size, default_sensitivity, read_file
from svc_modeling.fusion import fuse
from svc_modeling.guard import check_message
from svc_modeling.ingest import (
    RowCollector,
    caller_lineage,
    check_dataset_name,
    check_definition,
    problem_messages,
)
from svc_modeling.jobs import JobContext, JobRunner
from svc_modeling.methods import checks, effects, stats
from svc_modeling.models import ModelRegistry
from svc_modeling.profiles import ProfileSnapshots
from svc_modeling.review import ReviewService
from svc_modeling.store import SqlModelingStore
from svc_modeling.uplift import UpliftService
from svc_modeling.writeback import GrpcProfileTagWriter, check_tag_name

EFFECT_METHODS = ("difference_in_means", "aipw")


def estimate_message(est: object) -> modeling_pb2.Estimate:
    return modeling_pb2.Estimate(**est.as_dict())  # type: ignore[attr-defined]


class ModelingService:
    def __init__(self, settings: ModelingSettings, store: SqlModelingStore, keys: KeyProvider | None = None) -> None:
        self.settings = settings
        self.store = store
        stats.configure(settings.fit_threads)
        # Level 3+ dataset columns are sealed at rest with the keyring every service shares.
        keyring = keys if keys is not None else key_provider_from_settings(settings)
        self.catalog = DatasetCatalog(store, settings.dataset_cache_entries, Sealer(keyring))
        self.erasures = ErasureFollowing(settings, DatasetEraser(store, self.catalog, lambda: keyring))
        self.jobs = JobRunner(
            store,
            settings.job_workers,
            settings.job_progress_interval_millis,
            settings.watch_poll_interval_millis,
            heartbeat_seconds=settings.job_heartbeat_seconds,
            orphan_seconds=settings.job_orphan_seconds,
        )
        self.snapshots = ProfileSnapshots(settings, self.catalog, self.jobs)
        self.writer = GrpcProfileTagWriter(settings.profile_address, timeout_seconds=settings.remote_timeout_seconds)
        self.models = ModelRegistry(
            settings, store, self.catalog, self.jobs, writer=self.writer, snapshots=self.snapshots
        )
        self.uplift = UpliftService(settings, self.catalog, self.jobs, self.models, self.snapshots)
        self.drivers = DriverService(settings, store, self.catalog, self.jobs, self.snapshots)
        self.review = ReviewService(settings, store, self.catalog, self.jobs, self.models, self.drivers, self.snapshots)

    def may_unmask(self, roles: frozenset[str]) -> bool:
        """Whether a caller holding ``roles`` reads level 3+ dataset columns in clear (``unmask_roles``)."""
        return bool(roles & frozenset(self.settings.unmask_roles))

    async def start(self) -> None:
        await self.jobs.start()
        await self.review.start()
        await self.erasures.start()

    async def stop(self) -> None:
        await self.erasures.stop()
        await self.review.stop()
        await self.jobs.stop()
        self.snapshots.close()
        self.writer.close()

    def score_customers(self, request: modeling_pb2.ScoreCustomersRequest, created_by: str = "") -> job_pb2.Job:
        """ScoreCustomers with the write-back's cheap checks first: a tag name svc_profile would refuse is
        INVALID_ARGUMENT, and a configured svc_profile that does not answer a health check is UNAVAILABLE, from
        the start RPC rather than from the job."""
        check_tag_name(request.tag_name or f"score_{request.model_name}")
        if self.writer.connected:
            self.writer.require()
        return self.models.score_customers(request, created_by)

    # -- datasets -------------------------------------------------------------------------------------

    def import_rows(
        self, requests: Iterable[modeling_pb2.ImportRowsRequest], created_by: str = ""
    ) -> modeling_pb2.ImportRowsResponse:
        collector: RowCollector | None = None
        definition = modeling_pb2.Dataset()
        for request in requests:
            if collector is None:
                if not request.HasField("dataset"):
                    raise InvalidArgument(
                        "the first message must carry the dataset (name and columns)",
                        violations=[FieldViolation("dataset", "set it in the first message", "MISSING_FIELD")],
                    )
                definition.CopyFrom(request.dataset)
                check_message(definition, "dataset.")
                check_definition(definition, max_columns=self.settings.max_dataset_columns)
                default_sensitivity(definition.columns, self.settings.sensitive_columns)
                collector = RowCollector(definition, self.settings.max_dataset_rows)
            collector.add(request.rows)
        if collector is None:
            raise InvalidArgument(
                "no messages: send the dataset, then rows", violations=[FieldViolation("dataset", "")]
            )
        frame = collector.frame()
        check_stored_size(frame.data, frame.columns, self.settings.max_decoded_bytes)
        if frame.data.empty:
            raise InvalidArgument(
                f"no valid rows to store ({collector.rejected} rejected)",
                violations=[FieldViolation("rows", "send at least one valid row")],
            )
        _default_roles(frame.columns, definition.customer_id_column)
        dataset = self.catalog.create(
            frame,
            name=definition.name,
            origin="import",
            description=definition.description,
            lineage={**caller_lineage(definition.lineage), "rejected_rows": str(collector.rejected)},
            customer_id_column=definition.customer_id_column,
            created_by=created_by,
        )
        return modeling_pb2.ImportRowsResponse(dataset=dataset, problems=problem_messages(collector.problems))

    def upload_file(
        self, definition: modeling_pb2.Dataset, file_format: int, content: bytes, created_by: str = ""
    ) -> modeling_pb2.UploadFileResponse:
        check_definition(definition, max_columns=self.settings.max_dataset_columns, need_types=False)
        limits = FileLimits(
            self.settings.max_dataset_rows, self.settings.max_dataset_columns, self.settings.max_decoded_bytes
        )
        frame, problems, rejected = read_file(definition, file_format, content, limits, self.settings.sensitive_columns)
        if frame.data.empty:
            raise InvalidArgument(
                f"no valid rows to store ({rejected} rejected)", violations=[FieldViolation("chunk", "no valid rows")]
            )
        dataset = self.catalog.create(
            frame,
            name=definition.name,
            origin="upload",
            description=definition.description,
            lineage={**caller_lineage(definition.lineage), "rejected_rows": str(rejected), "file_sm3": _sm3(content)},
            customer_id_column=definition.customer_id_column,
            created_by=created_by,
        )
        return modeling_pb2.UploadFileResponse(dataset=dataset, problems=problem_messages(problems))

    def fuse_survey(self, request: modeling_pb2.FuseSurveyRequest, created_by: str = "") -> job_pb2.Job:
        """Join survey answers (X) to operational data (O) by customer id, as a job."""
        join = request.join or "inner"
        if join not in ("inner", "left"):
            raise InvalidArgument(f"unknown join {join!r}", violations=[FieldViolation("join", "inner or left")])
        check_dataset_name(request.name)
        survey = self.catalog.get(request.survey_dataset_id)
        operations = self.catalog.get(request.operations_dataset_id)
        for where, dataset in (("survey_dataset_id", survey), ("operations_dataset_id", operations)):
            if not dataset.customer_id_column:
                raise InvalidArgument(
                    f"dataset {dataset.name!r} has no customer id column: it cannot be joined",
                    violations=[FieldViolation(where, "import it with customer_id_column set")],
                )

        def run(ctx: JobContext) -> str:
            ctx.progress(10, "loading")
            _s, x = self.catalog.load(survey.dataset_id)
            _o, o = self.catalog.load(operations.dataset_id)
            ctx.progress(40, "joining")
            fused = fuse(x, survey.customer_id_column, o, operations.customer_id_column, join)
            ctx.progress(80, "storing")
            result = self.catalog.create(
                fused,
                name=request.name,
                origin="survey_fusion",
                lineage={
                    "survey_dataset_id": survey.dataset_id,
                    "survey_digest": survey.content_digest,
                    "operations_dataset_id": operations.dataset_id,
                    "operations_digest": operations.content_digest,
                    "join": join,
                },
                customer_id_column=survey.customer_id_column,
                created_by=created_by,
            )
            return result.dataset_id

        return self.jobs.submit("fuse_survey", run, created_by, [survey.dataset_id, operations.dataset_id])

    # -- average effects ------------------------------------------------------------------------------

    def average_effects(
        self, request: modeling_pb2.EstimateAverageEffectsRequest
    ) -> modeling_pb2.EstimateAverageEffectsResponse:
        method = request.method or "difference_in_means"
        if method not in EFFECT_METHODS:
            raise InvalidArgument(
                f"unknown method {method!r}",
                violations=[FieldViolation("method", f"one of {', '.join(EFFECT_METHODS)}")],
            )
        confidence = request.confidence or 0.95
        if not 0 < confidence < 1:
            raise InvalidArgument(
                "confidence must be in (0, 1)", violations=[FieldViolation("confidence", "e.g. 0.95")]
            )
        if not request.outcome_columns:
            raise InvalidArgument(
                "name at least one outcome column",
                violations=[FieldViolation("outcome_columns", "e.g. visit", "MISSING_FIELD")],
            )
        _dataset, frame = self.catalog.load(request.dataset_id)
        treatment, arms = checks.treatment_arms(
            frame, request.treatment_column, request.control_value, "treatment_column", self.settings.min_rows_per_arm
        )
        for i, name in enumerate(request.outcome_columns):
            if name == request.treatment_column:
                raise InvalidArgument(
                    f"column {name!r} is the treatment: it cannot also be an outcome",
                    violations=[FieldViolation(f"outcome_columns[{i}]", "a column other than treatment_column")],
                )
        outcomes = {
            name: checks.numeric_column(frame, name, f"outcome_columns[{i}]")
            for i, name in enumerate(request.outcome_columns)
        }
        x = None
        if method == "aipw":
            exclude = [request.treatment_column, *request.outcome_columns]
            x = checks.effect_covariates(
                frame, request.covariates, exclude, outcomes, self.settings.leakage_auc_threshold
            )
        results = effects.average_effects(
            treatment,
            request.control_value,
            arms,
            outcomes,
            method=method,
            x=x,
            confidence=confidence,
            seed=request.random_seed,
        )
        response = modeling_pb2.EstimateAverageEffectsResponse(method=method)
        for r in results:
            response.effects.add(
                arm=r.arm,
                outcome=r.outcome,
                arm_rows=r.arm_rows,
                control_rows=r.control_rows,
                arm_mean=r.arm_mean,
                control_mean=r.control_mean,
                effect=estimate_message(r.effect),
            )
        return response


def _default_roles(columns: list[modeling_pb2.Column], id_column: str) -> None:
    """A column without a role is the customer id (when named so) or a feature."""
    for column in columns:
        if not column.role:
            column.role = modeling_pb2.COLUMN_ROLE_ID if column.name == id_column else modeling_pb2.COLUMN_ROLE_FEATURE


def _sm3(content: bytes) -> str:
    from svc_modeling.frame import digest

    return digest(content)


def page_after(position: dict | None) -> tuple[dt.datetime, str] | None:
    if not position:
        return None
    return dt.datetime.fromisoformat(position["at"]), str(position["id"])
