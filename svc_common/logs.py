"""Structured logging: JSON lines (or text) with the trace and span id of the current span on every line.

The audit trail (logger ``qiming.audit``) does not follow the operator's choices: it is written at INFO whatever
``log_level`` says, and its fields (principal, method, status, peer, customers) are on the line in the text format
too (review walk-sec 2026-12-06 F9: at WARNING there were no audit lines at all, and in text each was just ``audit``).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [trace=%(trace_id)s] %(message)s"
AUDIT_LOGGER = "qiming.audit"
AUDIT_LEVEL = logging.INFO
"""The audit logger's own level: its lines are written whatever ``log_level`` says (a compliance record, not
diagnostics)."""
# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is the line's content.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "trace_id",
    "span_id",
    "taskName",
}


class TextFormatter(logging.Formatter):
    """The text format, with the fields a call passed in ``extra=`` after the message as one JSON object (escaped
    like the JSON format: a newline or a bidi control in a value cannot forge or hide a line)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = {key: value for key, value in record.__dict__.items() if key not in _RECORD_ATTRIBUTES}
        if not fields:
            return line
        return f"{line} {json.dumps(fields, default=str, ensure_ascii=True)}"


class TraceContextFilter(logging.Filter):
    """Adds ``trace_id``/``span_id`` (hex, empty outside a span) so compliance can follow a call by its trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        record.trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else ""
        record.span_id = format(ctx.span_id, "016x") if ctx.is_valid else ""
        return True


class ClientGoneFilter(logging.Filter):
    """A client that goes away in the middle of a streamed reply (a log consumer killed or restarted, a network drop)
    is ordinary: the call ends CANCELLED. gRPC's core logs the write it could not do (``ExecuteBatchError raised in
    core``), and OpenTelemetry's gRPC server instrumentation, whose span is open across the stream's ``yield``, logs
    ``Failed to detach context`` when the abandoned stream is closed from another context
    (open-telemetry/opentelemetry-python-contrib#2357), each at ERROR with a traceback: error alerts for a disconnect.
    Those two records are made DEBUG; every other record of these loggers is left as it is."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and _client_gone(record):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def _client_gone(record: logging.LogRecord) -> bool:
    message = str(record.msg)
    if record.name.startswith("grpc._cython") and message.startswith("ExecuteBatchError raised in core"):
        return True
    if record.name == "opentelemetry.context" and message == "Failed to detach context":
        error = record.exc_info[1] if record.exc_info else None
        return isinstance(error, ValueError) and "was created in a different Context" in str(error)
    return False


CLIENT_GONE_LOGGERS = ("grpc._cython.cygrpc", "opentelemetry.context")


def configure_logging(level: str = "INFO", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Replace the root handlers with one that writes to ``stream`` (stderr by default)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(TraceContextFilter())
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s %(trace_id)s %(span_id)s",
            # The pid tells apart the lines of a service's workers, which share one journal.
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"},
            timestamp=False,
        )
    else:
        formatter = TextFormatter(_TEXT_FORMAT)
    # ISO 8601 in UTC with milliseconds, whatever the host's zone: logs from many hosts must line up.
    formatter.converter = time.gmtime
    formatter.default_time_format = "%Y-%m-%dT%H:%M:%S"
    formatter.default_msec_format = "%s.%03dZ"
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # Records propagate to the root's handler whatever the root's level: only the audit logger's own level counts.
    logging.getLogger(AUDIT_LOGGER).setLevel(AUDIT_LEVEL)
    # Per-statement SQL and gRPC internals are noise at INFO.
    for noisy in ("sqlalchemy.engine", "alembic.runtime.migration", "grpc._cython"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    for name in CLIENT_GONE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ClientGoneFilter) for f in logger.filters):
            logger.addFilter(ClientGoneFilter())


def bind(**fields: Any) -> dict[str, Any]:
    """``extra=`` for a log call; keeps call sites short."""
    return {"extra": fields}
