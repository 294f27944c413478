"""OpenTelemetry tracing: always a real SDK provider (so every log line and audit record has a trace id);
spans are exported only when an exporter is configured."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

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
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

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
            sampler=ParentBased(TraceIdRatioBased(settings.telemetry_sample_ratio)),
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
