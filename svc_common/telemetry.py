"""OpenTelemetry tracing: always a real SDK provider (so every log line and audit record has a trace id);
spans are exported only when an exporter is configured."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
    SpanProcessor,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import SpanKind

from svc_common.config import ServerSettings
from svc_common.errors import ConfigError

log = logging.getLogger(__name__)
_lock = threading.Lock()
_configured: TracerProvider | None = None


class JsonLinesFileExporter(SpanExporter):
    """Appends each finished span as one JSON line (development and offline inspection)."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"telemetry_file_path {path} cannot be opened for appending ({exc.strerror}); the service user must "
                "be able to write there"
            ) from None
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            for span in spans:
                self._file.write(json.dumps(json.loads(span.to_json()), separators=(",", ":")) + "\n")
            self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            self._file.close()


def _exporter(settings: ServerSettings) -> SpanExporter | None:
    if settings.telemetry_exporter == "console":
        return ConsoleSpanExporter()
    if settings.telemetry_exporter == "file":
        path = settings.telemetry_file_path or Path("qiming-traces.jsonl")
        return JsonLinesFileExporter(path)
    if settings.telemetry_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=settings.telemetry_otlp_endpoint, insecure=True)
    return None


# The first word of a database span's name (the SQLAlchemy instrumentation names a span by its statement's verb):
# statements that only read or manage a transaction. Outside any trace they are polls that found nothing to do.
_READS = frozenset(
    {"connect", "SELECT", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "SET", "SHOW", "PRAGMA"}
)


class RootSampler(Sampler):
    """New traces by ``ratio``, except a database read outside any trace (a ``connect``, ``SELECT`` or transaction
    statement): background pollers (due timers every 200 ms, outboxes, schedules) made two root spans a poll, 33
    traces a second from an idle svc_campaign (~3 GB a day in a span file), burying the calls' traces. Writes outside
    a trace (a timer firing, the collector's group ``COPY``) still start one, and statements inside a call are its
    children, sampled with it."""

    def __init__(self, ratio: float) -> None:
        self._ratio = TraceIdRatioBased(ratio)

    def should_sample(
        self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None
    ) -> SamplingResult:
        if kind == SpanKind.CLIENT and name.split(" ", 1)[0] in _READS:
            return SamplingResult(Decision.DROP)
        return self._ratio.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"QimingRoot{{{self._ratio.get_description()}, no database read outside a trace}}"


_QUIET_STATEMENTS = otel_context.create_key("qiming-batch-without-statements")


@contextlib.contextmanager
def batch_span(tracer: trace.Tracer, name: str, attributes: Mapping[str, Any]) -> Iterator[trace.Span]:
    """The span (the trace) of one batch of background work (a log batch, due timers, a step of a scheduled run):
    its calls to other services, its bulk ``COPY`` s and its log lines are in it; its other database statements are
    not traced at all. A batch runs hundreds of statements, and a recorded span costs ~14 µs more of the thread than
    a dropped one (loadtests/research/span_cost.py: 37 against 23 µs a ``SELECT 1`` on SQLite): the profile log
    consumer spent ~10 % more CPU per event with them (session 17). Outside a batch a write still starts a trace of
    its own (:class:`RootSampler`)."""
    token = otel_context.attach(otel_context.set_value(_QUIET_STATEMENTS, True))
    try:
        with tracer.start_as_current_span(name, attributes=attributes) as span:
            yield span
    finally:
        otel_context.detach(token)


# CLIENT spans kept inside a batch: a gRPC call's (named after its method, ``/package.Service/Method``) and a bulk
# ``COPY`` (one a table, with its row count: svc_common.db.copy_span).
_KEPT_IN_BATCHES = ("/", "COPY")


class ChildSampler(Sampler):
    """Children of a sampled span are sampled, but for database statements inside :func:`batch_span` (CLIENT spans
    named after their SQL: ``INSERT …``, ``SELECT …``, ``connect``); its gRPC calls and bulk ``COPY`` s are kept."""

    def should_sample(
        self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None
    ) -> SamplingResult:
        if (
            kind == SpanKind.CLIENT
            and not name.startswith(_KEPT_IN_BATCHES)
            and otel_context.get_value(_QUIET_STATEMENTS, parent_context)
        ):
            return SamplingResult(Decision.DROP)
        return ALWAYS_ON.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return "QimingChild{AlwaysOn, no database statement inside a batch span}"


def configure_tracing(
    settings: ServerSettings, service_name: str, extra_processors: Sequence[SpanProcessor] = ()
) -> TracerProvider:
    """Install the process-wide tracer provider once (OpenTelemetry allows one) and DB instrumentation."""
    global _configured
    with _lock:
        if _configured is not None:
            for processor in extra_processors:
                _configured.add_span_processor(processor)
            return _configured
        provider = TracerProvider(
            resource=Resource.create({"service.name": f"qiming-{service_name}", "service.namespace": "qiming"}),
            sampler=ParentBased(RootSampler(settings.telemetry_sample_ratio), local_parent_sampled=ChildSampler()),
        )
        exporter = _exporter(settings)
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
        for processor in extra_processors:
            provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
        # Engines created from now on get a span per statement.
        SQLAlchemyInstrumentor().instrument(tracer_provider=provider)
        _configured = provider
        return provider


def shutdown_tracing() -> None:
    if _configured is not None:
        _configured.shutdown()
