"""Blocking client channels that carry the caller's trace: for clients that call from worker threads (svc_campaign
asking svc_profile for a profile, svc_modeling's jobs writing scores and reading the log).

The W3C context goes on as ``traceparent`` metadata, so the call shows in the other service under the caller's trace.
Hand-written rather than OpenTelemetry's blocking client interceptor: that one turns a streaming call into a
generator, which cannot be cancelled, and svc_modeling cancels its reads of the log.
"""

from __future__ import annotations

import collections

import grpc
from opentelemetry import propagate


class _Details(
    collections.namedtuple(
        "_Details", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,
):
    pass


class _Propagator(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds the current trace context to every call's metadata (the call objects stay grpc's own: cancellable)."""

    @staticmethod
    def _details(details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        if not carrier:
            return details
        metadata = [(k, v) for k, v in (details.metadata or ()) if k not in carrier]
        metadata.extend(carrier.items())
        return _Details(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details), request_iterator)


def blocking_channel(target: str, **options: int) -> grpc.Channel:
    """A blocking channel to ``target`` that sends the current trace context with every call; ``options`` without
    their ``grpc.`` prefix, e.g. ``max_receive_message_length``."""
    channel = grpc.insecure_channel(target, options=[(f"grpc.{k}", v) for k, v in options.items()])
    return grpc.intercept_channel(channel, _Propagator())


__all__ = ["blocking_channel"]
