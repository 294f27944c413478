"""U+0000 in request text is refused by the server kit before any handler, naming each field (review 2026-12-06 F6,
F9: on PostgreSQL it reached the database and came back INTERNAL, on SQLite it was stored)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from collect_helpers import collect_settings, make_event
from grpc import aio
from server_helpers import served, violations

from svc_collect.server import build_spec
from svc_collect.store import SCHEMA as COLLECT_SCHEMA
from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import ops_pb2, types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2
from svc_common.runtime import ServiceRuntime
from svc_common.server import ServiceSpec, build_server
from svc_common.server._text import nul_fields

SERVICE = "qiming.test.v1.TextProbe"


def test_nul_fields_names_nested_repeated_and_map_paths() -> None:
    request = profile_pb2.UpsertAttributesRequest(
        user=types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value="c\x001"),
        remove=["fine", "bad\x00"],
        source_system="crm",
    )
    request.attributes["branch"].string_value = "SH\x0001"
    request.attributes["k\x00"].string_value = "v"
    request.attributes["clean"].string_value = "ok"
    assert sorted(nul_fields(request)) == sorted(
        ["user.value", "remove[1]", "attributes[branch].string_value", "attributes['k\\x00']"]
    )
    assert nul_fields(profile_pb2.UpsertAttributesRequest(source_system="crm\t\u202e中文")) == []


def _spec(seen: list[str], self_checked: tuple[str, ...] = ()) -> ServiceSpec:
    async def echo(request: ops_pb2.PingRequest, context: aio.ServicerContext) -> ops_pb2.PingResponse:
        seen.append(request.payload)
        return ops_pb2.PingResponse(payload=request.payload)

    async def gather(requests: Any, context: aio.ServicerContext) -> ops_pb2.PingResponse:
        payloads = [request.payload async for request in requests]
        seen.extend(payloads)
        return ops_pb2.PingResponse(payload="|".join(payloads))

    kwargs: dict[str, Any] = {
        "request_deserializer": ops_pb2.PingRequest.FromString,
        "response_serializer": ops_pb2.PingResponse.SerializeToString,
    }
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(echo, **kwargs),
            "Trusted": grpc.unary_unary_rpc_method_handler(echo, **kwargs),
            "Gather": grpc.stream_unary_rpc_method_handler(gather, **kwargs),
        },
    )
    return ServiceSpec(
        "probe",
        (SERVICE,),
        lambda server: server.add_generic_rpc_handlers((handler,)),
        self_checked_methods=self_checked,
    )


def test_nul_is_invalid_argument_before_the_handler_and_the_server_keeps_serving() -> None:
    seen: list[str] = []

    async def scenario() -> None:
        async with served(_spec(seen, self_checked=(f"/{SERVICE}/Trusted",))) as channel:
            echo = channel.unary_unary(
                f"/{SERVICE}/Echo",
                request_serializer=ops_pb2.PingRequest.SerializeToString,
                response_deserializer=ops_pb2.PingResponse.FromString,
            )
            with pytest.raises(aio.AioRpcError) as raised:
                await echo(ops_pb2.PingRequest(payload="a\x00b"), timeout=10)
            assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "payload" in raised.value.details() and "U+0000" in raised.value.details()
            assert violations(raised.value) == [("payload", "VALUE_NOT_ALLOWED")]

            gather = channel.stream_unary(
                f"/{SERVICE}/Gather",
                request_serializer=ops_pb2.PingRequest.SerializeToString,
                response_deserializer=ops_pb2.PingResponse.FromString,
            )
            with pytest.raises(aio.AioRpcError) as raised:
                await gather(iter([ops_pb2.PingRequest(payload="ok"), ops_pb2.PingRequest(payload="\x00")]), timeout=10)
            assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT

            trusted = channel.unary_unary(
                f"/{SERVICE}/Trusted",
                request_serializer=ops_pb2.PingRequest.SerializeToString,
                response_deserializer=ops_pb2.PingResponse.FromString,
            )
            assert (await trusted(ops_pb2.PingRequest(payload="x\x00y"), timeout=10)).payload == "x\x00y"
            assert (await echo(ops_pb2.PingRequest(payload="fine"), timeout=10)).payload == "fine"

    asyncio.run(scenario())
    # The handler never saw a refused request; the streamed "ok" before the bad one is the only partial read.
    assert "a\x00b" not in seen and "\x00" not in seen
    assert seen[-2:] == ["x\x00y", "fine"]


def test_collect_ingest_keeps_nul_inside_property_values_and_other_methods_refuse_it(tmp_path) -> None:
    """Ingest is exempt (its hot path checks ids itself and stores property text verbatim, as issue 4 asks)."""

    async def scenario() -> None:
        settings = collect_settings(tmp_path, grpc_host="127.0.0.1", grpc_port=0)
        runtime = await asyncio.to_thread(ServiceRuntime.open, COLLECT_SCHEMA, settings)
        spec = build_spec(runtime)
        running = build_server([spec], settings)
        await running.server.start()
        for hook in spec.on_start:
            await hook()
        try:
            async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                stub = collect_pb2_grpc.CollectServiceStub(channel)
                event = make_event(note="a\x00b")
                response = await stub.Ingest(collect_pb2.IngestRequest(events=[event]), timeout=10)
                assert [r.status for r in response.results] == [collect_pb2.EVENT_STATUS_ACCEPTED]
                schemas = collect_pb2_grpc.EventSchemaServiceStub(channel)
                with pytest.raises(aio.AioRpcError) as raised:
                    await schemas.GetEventSchema(collect_pb2.GetEventSchemaRequest(event_type="t\x00"), timeout=10)
                assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
                assert violations(raised.value) == [("event_type", "VALUE_NOT_ALLOWED")]
        finally:
            await running.server.stop(0)
            for hook in spec.on_stop:
                await hook()

    asyncio.run(scenario())


def test_message_types_a_service_checks_itself_are_not_walked() -> None:
    """svc_modeling's data rows: walking 200,000 values held the event loop for 0.2 s; their values are checked where
    they are converted (a NUL in ImportRows is a row problem). The rest of the request is still checked."""
    rows = "qiming.modeling.v1.Row"
    seen: list[int] = []

    async def predict(
        request: modeling_pb2.PredictRequest, context: aio.ServicerContext
    ) -> modeling_pb2.PredictResponse:
        seen.append(len(request.rows))
        return modeling_pb2.PredictResponse()

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Predict": grpc.unary_unary_rpc_method_handler(
                predict,
                request_deserializer=modeling_pb2.PredictRequest.FromString,
                response_serializer=modeling_pb2.PredictResponse.SerializeToString,
            )
        },
    )
    spec = ServiceSpec(
        "probe", (SERVICE,), lambda server: server.add_generic_rpc_handlers((handler,)), self_checked_messages=(rows,)
    )
    request = modeling_pb2.PredictRequest(
        model_name="m", rows=[modeling_pb2.Row(values=[types_pb2.Value(string_value="a\x00")])]
    )
    assert nul_fields(request) == ["rows[0].values[0].string_value"]
    assert nul_fields(request, skip=frozenset({rows})) == []

    async def scenario() -> None:
        async with served(spec) as channel:
            call = channel.unary_unary(
                f"/{SERVICE}/Predict",
                request_serializer=modeling_pb2.PredictRequest.SerializeToString,
                response_deserializer=modeling_pb2.PredictResponse.FromString,
            )
            await call(request, timeout=10)
            request.model_name = "m\x00"
            with pytest.raises(aio.AioRpcError) as raised:
                await call(request, timeout=10)
            assert violations(raised.value) == [("model_name", "VALUE_NOT_ALLOWED")]

    asyncio.run(scenario())
    assert seen == [1]
