"""What every interceptor knows about the call in progress, and a base class that wraps all four RPC kinds."""

from __future__ import annotations

import contextvars
import inspect
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc import aio
from opentelemetry import trace

# Infrastructure services: not audited, logged at DEBUG only.
INFRA_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the calling system and the roles it holds."""

    subject: str
    roles: frozenset[str] = frozenset()
    authenticated: bool = False


ANONYMOUS = Principal(subject="anonymous")


@dataclass
class CallInfo:
    """One RPC as the interceptors see it. Domain code reads it through :func:`current_call`."""

    method: str
    peer: str
    metadata: dict[str, str]
    started_monotonic: float = field(default_factory=time.monotonic)
    principal: Principal = ANONYMOUS
    customers: set[str] = field(default_factory=set)
    """Customer ids the call touched (filled by domain code for the audit record)."""
    detail: dict[str, Any] = field(default_factory=dict)
    """Small, non-sensitive facts about the call for its audit record (filled by :func:`note_audit_detail`)."""

    @property
    def service(self) -> str:
        return self.method.rsplit("/", 2)[-2] if self.method.count("/") >= 2 else self.method

    @property
    def is_infra(self) -> bool:
        return self.service in INFRA_SERVICES

    @property
    def trace_id(self) -> str:
        ctx = trace.get_current_span().get_span_context()
        return format(ctx.trace_id, "032x") if ctx.is_valid else ""

    @property
    def traceresponse(self) -> str:
        """W3C Trace Context Level 2 ``traceresponse``: ``00-<trace id>-<server span id>-<flags>``."""
        ctx = trace.get_current_span().get_span_context()
        if not ctx.is_valid:
            return ""
        return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


_current: contextvars.ContextVar[CallInfo | None] = contextvars.ContextVar("qiming_call", default=None)


def current_call() -> CallInfo | None:
    """The call being served by this task, or None outside an RPC."""
    return _current.get()


def note_customers(*customer_ids: str) -> None:
    """Record which customers the current call touched (for the audit trail)."""
    call = _current.get()
    if call is not None:
        call.customers.update(customer_ids)


AUDIT_DETAIL_CHARS = 200
"""A detail's string (or each string of a list) is cut to this many characters."""
AUDIT_DETAIL_ITEMS = 100
"""A detail's list keeps this many items, then one ``"... N more"``."""

DetailValue = str | int | bool | Sequence[str] | None


def note_audit_detail(**fields: DetailValue) -> None:
    """Attach small facts to the current call's audit record (the ``audit_detail`` of its ``qiming.audit`` line, the
    ``detail`` of its chained audit line), as :func:`note_customers` names the customers: an erasure's reason, the
    filters of a read of the whole log. Strings are cut to ``AUDIT_DETAIL_CHARS``, lists to ``AUDIT_DETAIL_ITEMS``.
    The caller decides what is safe to keep: never a value of level 3 or above (mask it, or name only its kind)."""
    call = _current.get()
    if call is not None:
        for key, value in fields.items():
            call.detail[key] = _bounded(value)


def _bounded(value: DetailValue) -> str | int | bool | list[str] | None:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return value[:AUDIT_DETAIL_CHARS]
    items = [str(item)[:AUDIT_DETAIL_CHARS] for item in list(value)[: AUDIT_DETAIL_ITEMS + 1]]
    if len(items) > AUDIT_DETAIL_ITEMS:
        more = len(value) - AUDIT_DETAIL_ITEMS
        items[AUDIT_DETAIL_ITEMS:] = [f"... {more} more"]
    return items


def status_of(exc: BaseException | None, context: aio.ServicerContext) -> grpc.StatusCode:
    """The status the caller will see (as far as this layer can tell)."""
    if exc is None:
        code = context.code()
        return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.OK
    status_code = getattr(exc, "status_code", None)
    if isinstance(status_code, str):
        return grpc.StatusCode[status_code]
    code = context.code()
    if isinstance(code, grpc.StatusCode) and code is not grpc.StatusCode.OK:
        return code
    if isinstance(exc, GeneratorExit) or type(exc).__name__ == "CancelledError":
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.INTERNAL  # the error interceptor maps every unexpected exception to INTERNAL


class CallInterceptor(aio.ServerInterceptor):
    """Runs ``enter`` before and ``exit`` after every RPC of any kind; ``exit`` may raise to replace an error."""

    async def enter(self, call: CallInfo, context: aio.ServicerContext) -> None:
        """Before the handler runs; raise to refuse the call."""

    async def exit(self, call: CallInfo, context: aio.ServicerContext, exc: BaseException | None) -> None:
        """After the handler returns (``exc`` None) or raises; may raise a different error."""

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Any], details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_unary(handler.stream_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.stream_stream_rpc_method_handler(
            self._wrap_stream(handler.stream_stream, method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    @staticmethod
    def _call_for(method: str, context: aio.ServicerContext) -> CallInfo:
        # gRPC runs each RPC in its own task (with its own copy of the context), so the value set
        # here is seen by the inner interceptors and the handler, and by nothing else.
        call = _current.get()
        if call is None or call.method != method:
            metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
            call = CallInfo(method=method, peer=context.peer(), metadata=metadata)
            _current.set(call)
        return call

    def _wrap_unary(self, behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
        async def wrapper(request: Any, context: aio.ServicerContext) -> Any:
            call = self._call_for(method, context)
            await self.enter(call, context)
            try:
                response = await behavior(request, context)
            except BaseException as exc:
                await self.exit(call, context, exc)
                raise
            await self.exit(call, context, None)
            return response

        return wrapper

    def _wrap_stream(self, behavior: Callable[..., Any], method: str) -> Callable[..., AsyncIterator[Any]]:
        async def wrapper(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
            call = self._call_for(method, context)
            await self.enter(call, context)
            try:
                result = behavior(request, context)
                if inspect.isawaitable(result):  # a handler that writes with context.write()
                    await result
                else:
                    async for item in result:
                        yield item
            except BaseException as exc:
                await self.exit(call, context, exc)
                raise
            await self.exit(call, context, None)

        return wrapper
