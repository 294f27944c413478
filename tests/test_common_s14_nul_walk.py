"""The NUL check must not stall the event loop (review walk-sec 2026-12-06 F6: a 16 MiB CreateSegment of 650,000 leaves
held svc_profile's loop for 3.7 s, health checks included). A request whose bytes hold no 0x00 byte is not walked; a
large one that must be walked is walked on a worker thread while the loop serves other calls. Structural checks only
(which thread walks, whether anything walks), no timing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc import aio
from server_helpers import served

from svc_common.pb.qiming.common.v1 import ops_pb2, types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2
from svc_common.server import ServiceSpec, _text

SERVICE = "qiming.test.v1.NulWalkProbe"


def _spec() -> ServiceSpec:
    async def echo(request: ops_pb2.PingRequest, context: aio.ServicerContext) -> ops_pb2.PingResponse:
        return ops_pb2.PingResponse(payload=request.payload[:10])

    async def upsert(
        request: profile_pb2.UpsertAttributesRequest, context: aio.ServicerContext
    ) -> profile_pb2.UpsertAttributesResponse:
        return profile_pb2.UpsertAttributesResponse()

    async def watch(request: ops_pb2.PingRequest, context: aio.ServicerContext) -> AsyncIterator[ops_pb2.PingResponse]:
        yield ops_pb2.PingResponse(payload=request.payload[:10])

    ping = {
        "request_deserializer": ops_pb2.PingRequest.FromString,
        "response_serializer": ops_pb2.PingResponse.SerializeToString,
    }
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(echo, **ping),
            "Watch": grpc.unary_stream_rpc_method_handler(watch, **ping),
            "Upsert": grpc.unary_unary_rpc_method_handler(
                upsert,
                request_deserializer=profile_pb2.UpsertAttributesRequest.FromString,
                response_serializer=profile_pb2.UpsertAttributesResponse.SerializeToString,
            ),
        },
    )
    return ServiceSpec("probe", (SERVICE,), lambda server: server.add_generic_rpc_handlers((handler,)))


def _method(channel: aio.Channel, name: str, request_type: Any, response_type: Any, stream: bool = False) -> Any:
    make = channel.unary_stream if stream else channel.unary_unary
    return make(
        f"/{SERVICE}/{name}",
        request_serializer=request_type.SerializeToString,
        response_deserializer=response_type.FromString,
    )


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The thread ident of every walk of a request."""
    seen: list[int] = []
    real = _text.nul_fields

    def counting(*args: Any, **kwargs: Any) -> list[str]:
        seen.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(_text, "nul_fields", counting)
    return seen


def _wide_upsert(entries: int) -> profile_pb2.UpsertAttributesRequest:
    """Each attribute is int_value 0: its bytes hold 0x00 bytes although no string holds U+0000."""
    request = profile_pb2.UpsertAttributesRequest(source_system="crm")
    for i in range(entries):
        request.attributes[f"a{i}"].int_value = 0
    return request


def test_a_request_without_a_zero_byte_is_not_walked(walks: list[int]) -> None:
    async def scenario() -> None:
        async with served(_spec()) as channel:
            echo = _method(channel, "Echo", ops_pb2.PingRequest, ops_pb2.PingResponse)
            big = ops_pb2.PingRequest(payload="x" * (2 * _text.OFF_LOOP_BYTES))
            assert (await echo(big, timeout=10)).payload == "x" * 10
            assert walks == []
            with pytest.raises(aio.AioRpcError) as raised:
                await echo(ops_pb2.PingRequest(payload="a\x00b"), timeout=10)
            assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "payload" in raised.value.details()
            assert len(walks) == 1

    asyncio.run(scenario())


def test_a_large_request_to_walk_is_walked_off_the_event_loop_and_nul_is_still_refused(walks: list[int]) -> None:
    request = _wide_upsert(_text.OFF_LOOP_BYTES // 8)
    assert request.ByteSize() > _text.OFF_LOOP_BYTES

    async def scenario() -> int:
        loop_thread = threading.get_ident()
        async with served(_spec()) as channel:
            upsert = _method(
                channel, "Upsert", profile_pb2.UpsertAttributesRequest, profile_pb2.UpsertAttributesResponse
            )
            await upsert(request, timeout=30)
            request.user.CopyFrom(types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value="c\x001"))
            with pytest.raises(aio.AioRpcError) as raised:
                await upsert(request, timeout=30)
            assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "user.value" in raised.value.details() and "U+0000" in raised.value.details()
            watch = _method(channel, "Watch", ops_pb2.PingRequest, ops_pb2.PingResponse, stream=True)
            big = ops_pb2.PingRequest(payload="\x00" + "y" * _text.OFF_LOOP_BYTES)
            with pytest.raises(aio.AioRpcError) as raised:
                async for _ in watch(big, timeout=30):
                    pass
            assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        return loop_thread

    loop_thread = asyncio.run(scenario())
    assert len(walks) == 3
    assert loop_thread not in walks


def test_the_server_answers_a_small_call_while_a_large_request_is_being_walked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The walk of the large request waits until a small call has been answered: on the event loop it would wait in
    vain (the small call could not be served), so ``answered_during_walk`` would stay False."""
    walk_started, small_answered = threading.Event(), threading.Event()
    answered_during_walk: list[bool] = []
    real = _text.nul_fields

    def slow_walk(message: Any, *args: Any, **kwargs: Any) -> list[str]:
        if message.ByteSize() > _text.OFF_LOOP_BYTES:
            walk_started.set()
            answered_during_walk.append(small_answered.wait(timeout=10))
        return real(message, *args, **kwargs)

    monkeypatch.setattr(_text, "nul_fields", slow_walk)

    async def scenario() -> None:
        async with served(_spec()) as channel:
            upsert = _method(
                channel, "Upsert", profile_pb2.UpsertAttributesRequest, profile_pb2.UpsertAttributesResponse
            )
            echo = _method(channel, "Echo", ops_pb2.PingRequest, ops_pb2.PingResponse)
            big = asyncio.ensure_future(upsert(_wide_upsert(_text.OFF_LOOP_BYTES // 8), timeout=60))
            while not walk_started.is_set():
                await asyncio.sleep(0.01)
            await echo(ops_pb2.PingRequest(payload="small"), timeout=30)
            small_answered.set()
            await big

    asyncio.run(scenario())
    assert answered_during_walk == [True]
