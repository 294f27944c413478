"""The server kit's interceptors, in process: a real grpc.aio server from ``build_server`` on a free port, an
OpsService on a migrated SQLite database, and real calls over a channel.

Covered: W3C trace context in (``traceparent``) and out (``traceresponse``), DB spans in the caller's trace,
trace ids on log lines, QimingError → status with google.rpc rich details, unparsable request bytes →
INVALID_ARGUMENT, unexpected exceptions → INTERNAL quoting the trace id, the auth and audit hooks, and the
UNIMPLEMENTED placeholder of services not built yet.

pytest-asyncio is not a dependency: each test runs its coroutine with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from audit_helpers import ListAuditSink
from google.protobuf import descriptor_pool
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from svc_collect.config import CollectSettings
from svc_collect.store import SCHEMA as COLLECT_SCHEMA
from svc_common.errors import PermissionDenied, Unauthenticated
from svc_common.logs import TraceContextFilter
from svc_common.ops.servicer import MAX_PING_DELAY_MILLIS, ops_spec
from svc_common.pb.qiming.common.v1 import ops_pb2, ops_pb2_grpc
from svc_common.runtime import ServiceRuntime
from svc_common.server import (
    AnonymousAuthenticator,
    AuditRecord,
    Authenticator,
    Principal,
    ServiceSpec,
    build_server,
    register_not_yet_built,
)

PING = "/qiming.common.v1.OpsService/Ping"
LIST_INSTANCES = "/qiming.common.v1.OpsService/ListInstances"
PROBE_SERVICE = "qiming.test.v1.ProbeService"
PROBE_ECHO = f"/{PROBE_SERVICE}/Echo"
PROBE_EXPLODE = f"/{PROBE_SERVICE}/Explode"
TIMEOUT = 10
probe_log = logging.getLogger("qiming.test.probe")


@pytest.fixture(autouse=True)
def _tracing(span_exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    """Tracing (and the SQLAlchemy instrumentation) must be in place before the test's engine is created."""
    return span_exporter


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog for the ``qiming`` loggers, with the filter configure_logging() puts on the real handler."""
    caplog.set_level(logging.DEBUG, logger="qiming")
    trace_filter = TraceContextFilter()
    caplog.handler.addFilter(trace_filter)
    yield caplog
    caplog.handler.removeFilter(trace_filter)


# --- a tiny servicer of the test's own, registered through a ServiceSpec ------------------------------


async def _echo(request: ops_pb2.PingRequest, context: aio.ServicerContext) -> ops_pb2.PingResponse:
    probe_log.info("probe echo", extra={"probe_payload": request.payload})
    return ops_pb2.PingResponse(payload=request.payload)


async def _explode(request: ops_pb2.PingRequest, context: aio.ServicerContext) -> ops_pb2.PingResponse:
    raise RuntimeError("the probe blew up (a bug, not a domain error)")


def _probe_spec() -> ServiceSpec:
    def unary(behavior: Callable[..., Awaitable[Any]]) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=ops_pb2.PingRequest.FromString,
            response_serializer=ops_pb2.PingResponse.SerializeToString,
        )

    handler = grpc.method_handlers_generic_handler(PROBE_SERVICE, {"Echo": unary(_echo), "Explode": unary(_explode)})
    return ServiceSpec(
        name="probe",
        grpc_services=(PROBE_SERVICE,),
        register=lambda server: server.add_generic_rpc_handlers((handler,)),
    )


def trace_ids(values: list[str]) -> list[str]:
    """The trace ids of W3C ``traceresponse`` values (``00-<trace>-<span>-<flags>``), checking their form."""
    ids = []
    for value in values:
        version, trace_id, span_id, flags = value.split("-")
        assert (version, len(trace_id), len(span_id), len(flags)) == ("00", 32, 16, 2), value
        ids.append(trace_id)
    return ids


# --- the server under test ---------------------------------------------------------------------------


@dataclass
class Harness:
    channel: aio.Channel
    runtime: ServiceRuntime
    audit: ListAuditSink
    pending_services: Sequence[str]

    @property
    def ops(self) -> ops_pb2_grpc.OpsServiceStub:
        return ops_pb2_grpc.OpsServiceStub(self.channel)


@asynccontextmanager
async def serving(
    tmp_path: Path, authenticator: Authenticator | None = None, missing_extra: str | None = None
) -> AsyncIterator[Harness]:
    """collect's runtime (migrated SQLite, instance recorded), modeling's pending contract, OpsService, the probe."""
    settings = CollectSettings(
        database_url=f"sqlite:///{(tmp_path / 'collect.db').as_posix()}", grpc_host="127.0.0.1", grpc_port=0
    )
    runtime = await asyncio.to_thread(ServiceRuntime.open, COLLECT_SCHEMA, settings)
    pending, register_pending = register_not_yet_built("modeling", missing_extra=missing_extra)
    specs = [runtime.spec(pending, register_pending), ops_spec([runtime]), _probe_spec()]
    audit = ListAuditSink()
    running = build_server(specs, settings, authenticator=authenticator or AnonymousAuthenticator(), audit_sink=audit)
    await running.server.start()
    try:
        for spec in specs:
            for hook in spec.on_start:
                await hook()
        await running.mark_serving()
        async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield Harness(channel=channel, runtime=runtime, audit=audit, pending_services=pending)
    finally:
        await running.server.stop(None)
        for spec in reversed(specs):
            for hook in spec.on_stop:
                await hook()


def new_trace() -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """A fresh (trace id, parent span id, metadata carrying the W3C traceparent header, sampled)."""
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, parent_id, (("traceparent", f"00-{trace_id}-{parent_id}-01"),)


def hex_trace(span: ReadableSpan) -> str:
    return format(span.context.trace_id, "032x")


async def spans_of(
    exporter: InMemorySpanExporter, trace_id: str, until: Callable[[list[ReadableSpan]], bool]
) -> list[ReadableSpan]:
    """The finished spans of ``trace_id`` once ``until`` holds (spans end as the server unwinds the call)."""
    for _ in range(200):
        spans = [s for s in exporter.get_finished_spans() if hex_trace(s) == trace_id]
        if until(spans):
            return spans
        await asyncio.sleep(0.01)
    return spans


def server_spans(spans: Sequence[ReadableSpan], method: str) -> list[ReadableSpan]:
    return [s for s in spans if s.kind is SpanKind.SERVER and s.name == method]


def details_of(error: grpc.RpcError) -> tuple[status_pb2.Status, dict[type, Any]]:
    """The google.rpc.Status of a failed call and its details unpacked by type."""
    status = rpc_status.from_call(error)
    assert status is not None, f"no rich status in {error.code()}: {error.details()}"
    unpacked: dict[type, Any] = {}
    for item in status.details:
        for kind in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest):
            if item.Is(kind.DESCRIPTOR):
                message = kind()
                item.Unpack(message)
                unpacked[kind] = message
    return status, unpacked


def trailing(error_or_metadata: Any, key: str) -> list[str]:
    metadata = (
        error_or_metadata.trailing_metadata() if isinstance(error_or_metadata, grpc.RpcError) else error_or_metadata
    )
    return [value for k, value in (metadata or ()) if k == key]


# --- tracing -----------------------------------------------------------------------------------------


def test_traceparent_is_continued_and_returned_as_traceresponse(tmp_path, span_exporter) -> None:
    async def scenario() -> None:
        async with serving(tmp_path) as h:
            trace_id, parent_id, metadata = new_trace()
            call = h.ops.Ping(ops_pb2.PingRequest(payload="hello"), metadata=metadata, timeout=TIMEOUT)
            reply = await call
            assert reply.payload == "hello"
            assert trace_ids(trailing(await call.trailing_metadata(), "traceresponse")) == [trace_id]

            spans = await spans_of(span_exporter, trace_id, lambda s: bool(server_spans(s, PING)))
            (server,) = server_spans(spans, PING)
            assert server.parent is not None and server.parent.is_remote
            assert format(server.parent.span_id, "016x") == parent_id
            assert server.status.is_ok

            # Without a traceparent the server starts a trace of its own, and still reports it.
            call = h.ops.Ping(ops_pb2.PingRequest(), timeout=TIMEOUT)
            await call
            (own,) = trace_ids(trailing(await call.trailing_metadata(), "traceresponse"))
            assert len(own) == 32 and own != trace_id and int(own, 16) != 0

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("method", "request_message"),
    [
        (LIST_INSTANCES, ops_pb2.ListInstancesRequest(service="collect")),
        ("/qiming.common.v1.OpsService/GetServerInfo", ops_pb2.GetServerInfoRequest()),
    ],
    ids=["ListInstances", "GetServerInfo"],
)
def test_database_spans_are_children_in_the_callers_trace(
    tmp_path, span_exporter, method: str, request_message: Any
) -> None:
    async def scenario() -> None:
        async with serving(tmp_path) as h:
            trace_id, _, metadata = new_trace()
            rpc = getattr(h.ops, method.rsplit("/", 1)[-1])
            reply = await rpc(request_message, metadata=metadata, timeout=TIMEOUT)
            if method == LIST_INSTANCES:
                assert [i.instance_id for i in reply.instances] == [h.runtime.instances.current.instance_id]
            else:
                assert reply.services[0].schema_revision == COLLECT_SCHEMA.migrations.head()

            def done(spans: list[ReadableSpan]) -> bool:
                return bool(server_spans(spans, method)) and any(_is_db_span(s) for s in spans)

            spans = await spans_of(span_exporter, trace_id, done)
            (server,) = server_spans(spans, method)
            db_spans = [s for s in spans if _is_db_span(s)]
            assert db_spans, f"no DB span in trace {trace_id}: {[s.name for s in spans]}"
            by_id = {s.context.span_id: s for s in spans}
            for db_span in db_spans:
                assert db_span.kind is SpanKind.CLIENT
                # Walk up: every DB span hangs (directly or through other spans) under the server span.
                node = db_span
                while node.parent is not None and node.parent.span_id in by_id:
                    node = by_id[node.parent.span_id]
                assert node is server, f"{db_span.name} is not under the server span of {method}"
            assert all("sqlite" in str(dict(s.attributes or {}).values()) for s in db_spans)

    asyncio.run(scenario())


def _is_db_span(span: ReadableSpan) -> bool:
    attributes = dict(span.attributes or {})
    return any(key in attributes for key in ("db.system", "db.system.name"))


# --- logging -----------------------------------------------------------------------------------------


def test_log_records_of_a_call_carry_its_trace_id(tmp_path, logs: pytest.LogCaptureFixture) -> None:
    async def scenario() -> str:
        async with serving(tmp_path) as h:
            trace_id, _, metadata = new_trace()
            channel_call = h.channel.unary_unary(
                PROBE_ECHO,
                request_serializer=ops_pb2.PingRequest.SerializeToString,
                response_deserializer=ops_pb2.PingResponse.FromString,
            )
            reply = await channel_call(ops_pb2.PingRequest(payload="log me"), metadata=metadata, timeout=TIMEOUT)
            assert reply.payload == "log me"
            return trace_id

    trace_id = asyncio.run(scenario())
    handler_lines = [r for r in logs.records if r.name == probe_log.name]
    access_lines = [r for r in logs.records if r.name == "qiming.access" and r.rpc_method == PROBE_ECHO]
    assert len(handler_lines) == 1 and len(access_lines) == 1
    for record in (*handler_lines, *access_lines):
        assert record.trace_id == trace_id, f"{record.name}: {record.getMessage()}"
        assert len(record.span_id) == 16 and int(record.span_id, 16) != 0
    assert access_lines[0].rpc_status == "OK" and access_lines[0].duration_millis >= 0
    # A line outside any call has no trace id (rather than a stale one).
    probe_log.info("after the call")
    assert logs.records[-1].getMessage() == "after the call" and logs.records[-1].trace_id == ""
    audit_lines = [r for r in logs.records if r.name == "qiming.audit"]
    assert audit_lines == []  # the test's own sink replaced the log sink


def test_default_audit_log_line_carries_the_trace_id(tmp_path, logs: pytest.LogCaptureFixture) -> None:
    """With the default LogAuditSink the audit line names the trace as well."""

    async def scenario() -> str:
        settings = CollectSettings(
            database_url=f"sqlite:///{(tmp_path / 'collect.db').as_posix()}",
            grpc_host="127.0.0.1",
            grpc_port=0,
        )
        runtime = await asyncio.to_thread(ServiceRuntime.open, COLLECT_SCHEMA, settings)
        running = build_server([ops_spec([runtime])], settings)  # default authenticator and audit sink
        await running.server.start()
        try:
            async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                trace_id, _, metadata = new_trace()
                await ops_pb2_grpc.OpsServiceStub(channel).Ping(
                    ops_pb2.PingRequest(), metadata=metadata, timeout=TIMEOUT
                )
                return trace_id
        finally:
            await running.server.stop(None)
            runtime.database.dispose()

    trace_id = asyncio.run(scenario())
    (audit,) = [r for r in logs.records if r.name == "qiming.audit"]
    assert audit.audit_trace_id == trace_id and audit.trace_id == trace_id
    assert audit.rpc_method == PING and audit.rpc_status == "OK" and audit.audit_principal == "anonymous"


# --- error mapping -----------------------------------------------------------------------------------


def test_domain_error_arrives_with_its_status_and_rich_details(
    tmp_path, span_exporter, logs: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with serving(tmp_path) as h:
            trace_id, _, metadata = new_trace()
            with pytest.raises(grpc.RpcError) as raised:
                await h.ops.Ping(
                    ops_pb2.PingRequest(delay_millis=MAX_PING_DELAY_MILLIS + 1),
                    metadata=metadata,
                    timeout=TIMEOUT,
                )
            error = raised.value
            assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "delay_millis" in error.details()

            status, details = details_of(error)
            assert status.code == code_pb2.INVALID_ARGUMENT and status.message == error.details()
            info = details[error_details_pb2.ErrorInfo]
            assert info.domain == "qiming" and info.reason == "INVALID_ARGUMENT"
            assert info.metadata["trace_id"] == trace_id
            violations = details[error_details_pb2.BadRequest].field_violations
            assert [v.field for v in violations] == ["delay_millis"]
            assert str(MAX_PING_DELAY_MILLIS) in violations[0].description
            assert trace_ids(trailing(error, "traceresponse")) == [trace_id]
            # The server span records the status the caller saw (not OK).
            spans = await spans_of(span_exporter, trace_id, lambda s: bool(server_spans(s, PING)))
            (server,) = server_spans(spans, PING)
            assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]

            # Another domain error with a reason of its own (no field violations).
            with pytest.raises(grpc.RpcError) as raised:
                await h.ops.ListInstances(ops_pb2.ListInstancesRequest(service="nope"), timeout=TIMEOUT)
            assert raised.value.code() is grpc.StatusCode.NOT_FOUND
            _, details = details_of(raised.value)
            assert details[error_details_pb2.ErrorInfo].reason == "SERVICE_NOT_HERE"
            assert error_details_pb2.BadRequest not in details

    asyncio.run(scenario())
    access = [r.rpc_status for r in logs.records if r.name == "qiming.access"]
    assert access == ["INVALID_ARGUMENT", "NOT_FOUND"]
    assert all(r.levelno == logging.WARNING for r in logs.records if r.name == "qiming.access")


def test_unparsable_request_bytes_are_invalid_argument_and_the_server_keeps_serving(tmp_path) -> None:
    async def scenario() -> None:
        async with serving(tmp_path) as h:
            raw_ping = h.channel.unary_unary(PING)  # no serializers: the bytes go out as they are
            for garbage in (b"\xff\xff\xff", b"\x0a\x05ab"):  # a bad varint; a string longer than the body
                with pytest.raises(grpc.RpcError) as raised:
                    await raw_ping(garbage, timeout=TIMEOUT)
                error = raised.value
                assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
                _, details = details_of(error)
                assert details[error_details_pb2.ErrorInfo].reason == "MALFORMED_REQUEST"
                assert len(details[error_details_pb2.BadRequest].field_violations) == 1
            # Valid bytes through the same raw path, then a normal stub call: the server is fine.
            reply = await raw_ping(ops_pb2.PingRequest(payload="still here").SerializeToString(), timeout=TIMEOUT)
            assert ops_pb2.PingResponse.FromString(reply).payload == "still here"
            assert (await h.ops.Ping(ops_pb2.PingRequest(payload="ok"), timeout=TIMEOUT)).payload == "ok"
            # (Refused before the audit and auth hooks run: no audit record is asserted for the garbage.)
            assert [r.status for r in h.audit.records if r.method == PING][-2:] == ["OK", "OK"]

    asyncio.run(scenario())


def test_unexpected_exception_is_internal_and_quotes_the_trace_id(
    tmp_path, span_exporter, logs: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> tuple[str, list[AuditRecord]]:
        async with serving(tmp_path) as h:
            trace_id, _, metadata = new_trace()
            explode = h.channel.unary_unary(
                PROBE_EXPLODE,
                request_serializer=ops_pb2.PingRequest.SerializeToString,
                response_deserializer=ops_pb2.PingResponse.FromString,
            )
            with pytest.raises(grpc.RpcError) as raised:
                await explode(ops_pb2.PingRequest(), metadata=metadata, timeout=TIMEOUT)
            error = raised.value
            assert error.code() is grpc.StatusCode.INTERNAL
            assert trace_id in error.details() and PROBE_EXPLODE in error.details()
            assert "blew up" not in error.details()  # internals stay in the server log
            assert trace_ids(trailing(error, "traceresponse")) == [trace_id]
            spans = await spans_of(span_exporter, trace_id, lambda s: bool(server_spans(s, PROBE_EXPLODE)))
            (server,) = server_spans(spans, PROBE_EXPLODE)
            assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INTERNAL.value[0]
            assert server.status.status_code is StatusCode.ERROR
            # The server is still serving.
            assert (await h.ops.Ping(ops_pb2.PingRequest(payload="after"), timeout=TIMEOUT)).payload == "after"
            return trace_id, list(h.audit.records)

    trace_id, audited = asyncio.run(scenario())
    (logged,) = [r for r in logs.records if r.name == "qiming.server" and r.levelno == logging.ERROR]
    assert PROBE_EXPLODE in logged.getMessage() and logged.exc_info is not None
    assert isinstance(logged.exc_info[1], RuntimeError)
    (record,) = [r for r in audited if r.method == PROBE_EXPLODE]
    assert record.trace_id == trace_id and record.status in ("UNKNOWN", "INTERNAL")
    (access,) = [r for r in logs.records if r.name == "qiming.access" and r.rpc_method == PROBE_EXPLODE]
    assert access.rpc_status == "INTERNAL" and access.trace_id == trace_id


# --- auth and audit hooks ----------------------------------------------------------------------------


class TokenAuthenticator:
    """``authorization: Bearer ops`` may do anything; ``Bearer reader`` may not Ping; no token is refused."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def authenticate(self, method: str, metadata: Mapping[str, str], peer: str) -> Principal:
        self.seen.append(method)
        token = metadata.get("authorization", "")
        if token == "Bearer ops":
            return Principal(subject="ops-console", roles=frozenset({"ops", "reader"}), authenticated=True)
        if token == "Bearer reader":
            if method == PING:
                raise PermissionDenied(f"reader may not call {method}", reason="ROLE_MISSING")
            return Principal(subject="dashboard", roles=frozenset({"reader"}), authenticated=True)
        raise Unauthenticated("no credentials", reason="CREDENTIALS_MISSING")


def test_auth_hook_refuses_calls_and_audit_records_them(tmp_path, span_exporter) -> None:
    authenticator = TokenAuthenticator()

    async def scenario() -> None:
        async with serving(tmp_path, authenticator=authenticator) as h:
            cases = [
                ((), grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_MISSING"),
                ((("authorization", "Bearer reader"),), grpc.StatusCode.PERMISSION_DENIED, "ROLE_MISSING"),
            ]
            for auth, code, reason in cases:
                trace_id, _, metadata = new_trace()
                with pytest.raises(grpc.RpcError) as raised:
                    await h.ops.Ping(ops_pb2.PingRequest(), metadata=(*metadata, *auth), timeout=TIMEOUT)
                assert raised.value.code() is code
                _, details = details_of(raised.value)
                info = details[error_details_pb2.ErrorInfo]
                assert info.domain == "qiming" and info.reason == reason
                record = h.audit.records[-1]
                assert (record.method, record.status, record.trace_id) == (PING, code.name, trace_id)
                assert record.principal == "anonymous" and record.roles == ()
                spans = await spans_of(span_exporter, trace_id, lambda s: bool(server_spans(s, PING)))
                assert server_spans(spans, PING)[0].attributes["rpc.grpc.status_code"] == code.value[0]

            # Allowed calls are audited with the principal the authenticator returned.
            trace_id, _, metadata = new_trace()
            reply = await h.ops.Ping(
                ops_pb2.PingRequest(payload="hi"),
                metadata=(*metadata, ("authorization", "Bearer ops")),
                timeout=TIMEOUT,
            )
            assert reply.payload == "hi"
            record = h.audit.records[-1]
            assert (record.principal, record.roles, record.status) == ("ops-console", ("ops", "reader"), "OK")
            assert record.trace_id == trace_id and record.peer and record.at.tzinfo is not None

            # Health stays open to load balancers without credentials: neither authenticated nor audited.
            audited = len(h.audit.records)
            health = await health_pb2_grpc.HealthStub(h.channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            assert len(h.audit.records) == audited
            assert not any("grpc.health" in m for m in authenticator.seen)

    asyncio.run(scenario())


# --- services not built yet --------------------------------------------------------------------------


def test_services_of_a_missing_extra_answer_unimplemented_naming_what_to_install(tmp_path) -> None:
    async def scenario() -> grpc.aio.AioRpcError:
        async with serving(tmp_path, missing_extra="modeling") as h:
            return await _call_raw(h.channel, "/qiming.modeling.v1.DatasetService/GetDataset", False, False)

    error = asyncio.run(scenario())
    assert error.code() is grpc.StatusCode.UNIMPLEMENTED
    assert error.details() == (
        "qiming.modeling.v1.DatasetService/GetDataset needs the 'modeling' extra on the server, not installed there: "
        "pip install 'qiming[modeling]'"
    )
    _, details = details_of(error)
    assert details[error_details_pb2.ErrorInfo].reason == "EXTRA_NOT_INSTALLED"


def test_not_yet_built_services_answer_unimplemented_naming_the_method(tmp_path) -> None:
    async def scenario() -> list[str]:
        async with serving(tmp_path) as h:
            assert h.pending_services, "modeling's contract has no services?"
            checked = []
            for service_name in h.pending_services:
                service = descriptor_pool.Default().FindServiceByName(service_name)
                for method in service.methods:
                    path = f"/{service.full_name}/{method.name}"
                    error = await _call_raw(h.channel, path, method.client_streaming, method.server_streaming)
                    assert error.code() is grpc.StatusCode.UNIMPLEMENTED, f"{path}: {error.code()}"
                    assert f"{service.full_name}/{method.name}" in error.details(), error.details()
                    _, details = details_of(error)
                    assert details[error_details_pb2.ErrorInfo].reason == "NOT_YET_AVAILABLE"
                    checked.append(path)
            # A method that is in no contract gets gRPC's own UNIMPLEMENTED, and no audit record.
            audited = len(h.audit.records)
            with pytest.raises(grpc.RpcError) as raised:
                await h.channel.unary_unary("/qiming.modeling.v1.ModelService/NoSuchMethod")(b"", timeout=TIMEOUT)
            assert raised.value.code() is grpc.StatusCode.UNIMPLEMENTED
            assert len(h.audit.records) == audited
            return checked

    checked = asyncio.run(scenario())
    assert "/qiming.modeling.v1.ModelService/TrainModel" in checked
    assert "/qiming.modeling.v1.DatasetService/ImportRows" in checked  # a client stream
    assert "/qiming.modeling.v1.JobService/WatchJob" in checked  # a server stream


async def _call_raw(channel: aio.Channel, path: str, client_streaming: bool, server_streaming: bool) -> grpc.RpcError:
    """Call ``path`` with one empty request message in the right shape; return the error it must end with."""
    try:
        if client_streaming and server_streaming:
            async for _ in channel.stream_stream(path)(iter([b""]), timeout=TIMEOUT):
                pass
        elif client_streaming:
            await channel.stream_unary(path)(iter([b""]), timeout=TIMEOUT)
        elif server_streaming:
            async for _ in channel.unary_stream(path)(b"", timeout=TIMEOUT):
                pass
        else:
            await channel.unary_unary(path)(b"", timeout=TIMEOUT)
    except grpc.RpcError as error:
        return error
    raise AssertionError(f"{path} succeeded")
