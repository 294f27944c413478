"""Maps exceptions to gRPC statuses: QimingError → its status with rich details; anything else → INTERNAL.

Rich details follow google.rpc: ``ErrorInfo`` (reason, domain ``qiming``, metadata) and, for field
problems, ``BadRequest`` — clients read them with ``grpc_status.rpc_status.from_call``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc import aio
from grpc_status import rpc_status

from svc_common.errors import FieldViolation, InvalidArgument, QimingError, ResourceExhausted
from svc_common.server._call import CallInfo, CallInterceptor
from svc_common.server._encoded import accepting_encoded
from svc_common.server._ids import needs_id_check
from svc_common.server._text import Unscanned, check_unscanned

log = logging.getLogger("qiming.server")
ERROR_DOMAIN = "qiming"


class MalformedRequest:
    """Stands in for a request whose bytes did not parse, so the error can be INVALID_ARGUMENT, not INTERNAL."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class OversizedRequest:
    """Stands in for a request above ``grpc_max_message_bytes`` that the server received only because another
    service on its port takes larger ones (svc_collect's ingest answers its own BATCH_TOO_LARGE)."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit


# Bounds of what a status carries. It travels in trailers (grpc-message, and grpc-status-details-bin in base64),
# which a gRPC client refuses above 8 KiB (soft) / 16 KiB (hard): past that the caller would get RESOURCE_EXHAUSTED
# with no details instead of the real status. These bounds keep a status well below 8 KiB.
MAX_VIOLATIONS = 50
"""Most field violations listed; the others are counted in the message and in ErrorInfo.metadata."""
_MAX_VIOLATION_BYTES = 2048
_MAX_MESSAGE_BYTES = 1024
_MAX_METADATA_BYTES = 2048
_MAX_TEXT_BYTES = 200  # one violation's field or description


def _cut(text: str, limit_bytes: int) -> str:
    data = text.encode()
    if len(data) <= limit_bytes:
        return text
    return data[: limit_bytes - 20].decode("utf-8", "ignore") + " … (truncated)"


def to_status(error: QimingError, trace_id: str = "", traceresponse: str = "") -> grpc.Status:
    """A QimingError as a ``grpc.Status`` carrying ErrorInfo and BadRequest details, bounded in size: at most
    ``MAX_VIOLATIONS`` violations (and about 2 KiB of them), each text and the message cut; how many were left out
    is said in the message and in ErrorInfo.metadata (``violations_total``, ``violations_omitted``)."""
    code = grpc.StatusCode[error.status_code]
    details = []
    info = error_details_pb2.ErrorInfo(reason=error.reason or error.status_code, domain=ERROR_DOMAIN)
    budget = _MAX_METADATA_BYTES
    for key, value in error.metadata.items():
        key, value = _cut(key, 64), _cut(str(value), _MAX_METADATA_BYTES // 2)
        budget -= len(key.encode()) + len(value.encode())
        if budget < 0:
            break
        info.metadata[key] = value
    if trace_id:
        info.metadata["trace_id"] = trace_id
    details.append(info)
    message = error.message
    if error.violations:
        bad_request = error_details_pb2.BadRequest()
        size = 0
        for v in error.violations[:MAX_VIOLATIONS]:
            violation = error_details_pb2.BadRequest.FieldViolation(
                field=_cut(v.field, _MAX_TEXT_BYTES),
                description=_cut(v.description, _MAX_TEXT_BYTES),
                reason=_cut(v.reason, 64),
            )
            size += violation.ByteSize() + 3
            if size > _MAX_VIOLATION_BYTES and bad_request.field_violations:
                break
            bad_request.field_violations.append(violation)
        details.append(bad_request)
        omitted = len(error.violations) - len(bad_request.field_violations)
        if omitted:
            info.metadata["violations_total"] = str(len(error.violations))
            info.metadata["violations_omitted"] = str(omitted)
            message = (
                f"{_cut(message, _MAX_MESSAGE_BYTES - 80)} ({len(error.violations)} field violations; "
                f"the first {len(bad_request.field_violations)} are listed)"
            )
    message = _cut(message, _MAX_MESSAGE_BYTES)
    packed = []
    for detail in details:
        item = any_pb2.Any()
        item.Pack(detail)
        packed.append(item)
    status = rpc_status.to_status(status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=packed))
    if not trace_id:
        return status
    return _Status(
        status.code, status.details, (*status.trailing_metadata, ("traceresponse", traceresponse or trace_id))
    )


class _Status(grpc.Status):
    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: tuple) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


def _safe_deserializer(
    deserializer: Callable[[bytes], Any] | None, limit_bytes: int | None = None, text_checked: bool = False
) -> Callable[[bytes], Any] | None:
    """Parse, standing in for a request too large or unparsable; with ``text_checked``, a request to check comes as
    :class:`Unscanned`: one whose bytes hold a 0x00 byte (so maybe U+0000 in a string) or whose type can hold ids.
    Any other comes as is: nothing to walk."""
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        if limit_bytes is not None and len(data) > limit_bytes:
            return OversizedRequest(len(data), limit_bytes)
        try:
            message = deserializer(data)
        except DecodeError as exc:
            return MalformedRequest(exc)
        if not text_checked:
            return message
        nul = b"\x00" in data
        if nul or needs_id_check(message):
            return Unscanned(message, len(data), nul)
        return message

    return parse


def _refuse_malformed(request: Any) -> None:
    if isinstance(request, OversizedRequest):
        raise ResourceExhausted(
            f"request of {request.size} bytes is larger than this server accepts ({request.limit} bytes, "
            "grpc_max_message_bytes)",
            reason="MESSAGE_TOO_LARGE",
            metadata={"limit_bytes": str(request.limit)},
        )
    if isinstance(request, MalformedRequest):
        raise InvalidArgument(
            f"request body is not a valid protobuf message for this method: {request.error}",
            reason="MALFORMED_REQUEST",
            violations=[FieldViolation("", "the bytes sent do not parse as the method's request message")],
        )


async def _checked(request: Any, text: frozenset[str] | None) -> Any:
    """The request the handler may see, or the error to refuse it with."""
    _refuse_malformed(request)
    if isinstance(request, Unscanned):  # only methods whose text is checked get one (``_safe_deserializer``)
        return await check_unscanned(request, text or frozenset())
    return request


async def _checked_stream(requests: AsyncIterator[Any], text: frozenset[str] | None) -> AsyncIterator[Any]:
    async for request in requests:
        yield await _checked(request, text)


class ErrorInterceptor(CallInterceptor):
    """Turns domain errors into precise statuses; unexpected ones are logged and become INTERNAL.

    It also refuses, before the handler, requests that do not parse, request text holding U+0000 and ids
    (``UserRef``/``Identity`` values) holding control or format characters (except in ``self_checked_methods``: full
    method names whose handlers check their own text, svc_collect's ingest; and inside messages of the types
    ``self_checked_messages`` names, bulk rows their services check)."""

    def __init__(
        self,
        self_checked_methods: Iterable[str] = (),
        self_checked_messages: Iterable[str] = (),
        max_request_bytes: int | None = None,
    ) -> None:
        self._self_checked = frozenset(self_checked_methods)
        self._skip = frozenset(self_checked_messages)
        self._max_request_bytes = max_request_bytes

    def _text(self, method: str) -> frozenset[str] | None:
        return None if method in self._self_checked else self._skip

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        async def parsing_continuation(d: grpc.HandlerCallDetails) -> Any:
            handler = await continuation(d)
            if handler is None:
                return None
            # The server receives up to the largest limit of its services; the others' methods keep their own.
            limit = None if d.method in self._self_checked else self._max_request_bytes
            return handler._replace(
                request_deserializer=_safe_deserializer(
                    handler.request_deserializer, limit, text_checked=self._text(d.method) is not None
                ),
                response_serializer=accepting_encoded(handler.response_serializer),
            )

        return await super().intercept_service(parsing_continuation, details)

    def _wrap_unary(self, behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
        return super()._wrap_unary(_guarded_unary(behavior, self._text(method)), method)

    def _wrap_stream(self, behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
        return super()._wrap_stream(_guarded_stream(behavior, self._text(method)), method)

    async def exit(self, call: CallInfo, context: aio.ServicerContext, exc: BaseException | None) -> None:
        # GeneratorExit: gRPC closed a server stream's generator at a yield because its caller went away (a
        # reflection client that drops its stream, as grpcurl does); the call is over, there is nothing to answer.
        if exc is None or isinstance(exc, (asyncio.CancelledError, aio.AbortError, GeneratorExit)):
            return
        if isinstance(exc, QimingError):
            status = to_status(exc, call.trace_id, call.traceresponse)
            # Same as abort_with_status() on the wire, but OpenTelemetry's context wrapper only hooks abort():
            # through it the server span records the status code instead of OK.
            await context.abort(status.code, status.details, status.trailing_metadata)
        log.exception("unhandled error in %s", call.method, exc_info=exc)
        await context.abort(
            grpc.StatusCode.INTERNAL,
            f"internal error in {call.method}; quote trace id {call.trace_id or '(none)'} to the operators",
            trailing_metadata=(("traceresponse", call.traceresponse),) if call.trace_id else (),
        )


# Both refuse unparsable requests (and, unless ``text`` is None, U+0000 in request text outside the message types it
# names) before the handler sees them; they are coroutines because a large request is walked off the event loop.


def _guarded_unary(behavior: Callable[..., Any], text: frozenset[str] | None) -> Callable[..., Any]:
    """For unary and client-streaming handlers."""

    async def guarded(request: Any, context: aio.ServicerContext) -> Any:
        if hasattr(request, "__aiter__"):
            return await behavior(_checked_stream(request, text), context)
        return await behavior(await _checked(request, text), context)

    return guarded


def _guarded_stream(behavior: Callable[..., Any], text: frozenset[str] | None) -> Callable[..., Any]:
    """For server-streaming and bidirectional handlers."""

    async def guarded(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
        request = _checked_stream(request, text) if hasattr(request, "__aiter__") else await _checked(request, text)
        result = behavior(request, context)
        if inspect.isawaitable(result):  # a handler that writes with context.write()
            await result
            return
        async for item in result:
            yield item

    return guarded
