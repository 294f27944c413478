"""A server stream closed at a yield because its caller went away (GeneratorExit: a reflection client dropping its
stream, as grpcurl does) is a cancelled call: no "unhandled error" at ERROR, no abort of the finished call, and
the access log and audit say CANCELLED."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest

from svc_common.server._access_log import AccessLogInterceptor
from svc_common.server._call import status_of
from svc_common.server._errors import ErrorInterceptor


class _FinishedContext:
    """What a stream's context looks like once its caller has gone: aborting it is a misuse."""

    def __init__(self) -> None:
        self.aborts: list[grpc.StatusCode] = []

    def invocation_metadata(self):
        return ()

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"

    def code(self):
        return None

    async def abort(self, code, details="", trailing_metadata=()):
        self.aborts.append(code)
        raise RuntimeError("abort on a finished call")


async def _answers(request, context):
    for n in range(3):
        yield n


def test_a_stream_dropped_at_a_yield_is_cancelled_not_an_unhandled_error(caplog: pytest.LogCaptureFixture) -> None:
    context = _FinishedContext()

    async def scenario() -> None:
        for interceptor in (ErrorInterceptor(), AccessLogInterceptor()):
            stream = interceptor._wrap_stream(_answers, "/grpc.reflection.v1alpha.ServerReflection/Info")(None, context)
            assert await stream.__anext__() == 0
            await stream.aclose()  # what gRPC does when the caller goes away while the stream waits at a yield

    with caplog.at_level(logging.DEBUG):
        asyncio.run(scenario())
    assert context.aborts == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert status_of(GeneratorExit(), context) == grpc.StatusCode.CANCELLED
