"""Trace context across svc_modeling's jobs and its calls to svc_profile / svc_collect.

A job runs on a pool thread, outside the RPC that started it: :func:`capture` takes the caller's W3C trace context
(``traceparent``, ``tracestate``) when the job is submitted, and :func:`job_span` runs the job inside a span that is
a child of that RPC's span. The channels to svc_profile and svc_collect (``svc_common.server.blocking_channel``)
carry the current context as ``traceparent`` metadata, so a score write-back or a read of the log is found under
the trace id of the call that asked for it, and a tag's ``provenance.trace_id`` leads back to that call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

from opentelemetry import propagate, trace

_tracer = trace.get_tracer("qiming.modeling.jobs")


def capture() -> dict[str, str]:
    """The current trace context as W3C headers (empty outside a traced call)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextlib.contextmanager
def job_span(kind: str, job_id: str, carrier: Mapping[str, str]) -> Iterator[trace.Span]:
    """A span for one run of a job, child of the span whose context ``carrier`` holds (a new trace if empty)."""
    parent = propagate.extract(dict(carrier))
    attributes = {"qiming.job_id": job_id, "qiming.job_kind": kind}
    with _tracer.start_as_current_span(f"modeling job {kind}", context=parent, attributes=attributes) as span:
        yield span
