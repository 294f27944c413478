"""``build_server()`` and ``serve()``: the one way every service (or the whole suite) runs."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_server_interceptor

from svc_common.config import ServerSettings
from svc_common.errors import ConfigError, StartupError
from svc_common.peers import forget_local, register_local
from svc_common.server._access_log import AccessLogInterceptor
from svc_common.server._dependencies import DependencyProbe, DependencyWatch
from svc_common.server._errors import ErrorInterceptor
from svc_common.server._hooks import (
    AnonymousAuthenticator,
    AuditAdmission,
    AuditInterceptor,
    AuditSink,
    Authenticator,
    AuthInterceptor,
    LogAuditSink,
)
from svc_common.server._starting import StartingGate

log = logging.getLogger("qiming.server")


@dataclass
class ServiceSpec:
    """One service as the server kit sees it: what it serves and how it starts and stops."""

    name: str
    """Short name: ``collect``, ``profile``, ``campaign`` or ``modeling``."""
    grpc_services: tuple[str, ...]
    """Full names of the gRPC services it registers (health and reflection list them)."""
    register: Callable[[aio.Server], None]
    """Adds the servicers to the server."""
    on_start: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """Run after the port is bound and before SERVING (background consumers start here)."""
    on_stop: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """Run after in-flight calls finished (flush, record the stop, close the database)."""
    self_checked_methods: tuple[str, ...] = ()
    """Full method names whose handlers check their request text themselves: the server's generic refusal of
    U+0000 in request strings skips them (svc_collect's ingest, whose hot path checks its own fields)."""
    self_checked_messages: tuple[str, ...] = ()
    """Full names of message types that refusal does not walk into: bulk data rows the service checks where it
    converts them (svc_modeling's ``qiming.modeling.v1.Row``)."""
    on_shutdown: Sequence[Callable[[], None]] = field(default_factory=list)
    """Run when the stop begins, before in-flight calls get their grace (end streams that never end by themselves)."""
    max_receive_message_bytes: int = 0
    """Receive messages up to this size (0: ``grpc_max_message_bytes``): a service that checks the size itself, to
    answer with its own reason. Only its ``self_checked_methods`` get the larger size; every other method on the
    port is refused above ``grpc_max_message_bytes`` (RESOURCE_EXHAUSTED, MESSAGE_TOO_LARGE)."""
    dependency_probes: Sequence[DependencyProbe] = field(default_factory=list)
    """What the service needs to answer (its database, its NATS): while one of them does not answer its probe, the
    service's health names (and ``""``) are NOT_SERVING (see ``_dependencies.py``)."""


@dataclass
class RunningServer:
    server: aio.Server
    health: HealthServicer
    port: int
    specs: Sequence[ServiceSpec]
    starting: StartingGate

    async def mark_serving(self) -> None:
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        for spec in self.specs:
            for name in spec.grpc_services:
                await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)


def build_server(
    specs: Sequence[ServiceSpec],
    settings: ServerSettings,
    *,
    authenticator: Authenticator | None = None,
    audit_sink: AuditSink | None = None,
    extra_interceptors: Sequence[aio.ServerInterceptor] = (),
) -> RunningServer:
    """A gRPC server with health, reflection, tracing, logging, error mapping and the auth/audit hooks.

    Interceptor order (outermost first): tracing → access log → errors → audit → auth → audit admission.
    Errors sits outside audit so that audit records the raw outcome, and audit outside auth so that refused
    calls are audited too; the audit admission (a full audit queue refuses a call before it runs) comes
    after auth so that the refusal's record names the caller.
    """
    audit_sink = audit_sink or LogAuditSink()
    interceptors = [
        aio_server_interceptor(),
        AccessLogInterceptor(),
        ErrorInterceptor(
            (method for spec in specs for method in spec.self_checked_methods),
            (name for spec in specs for name in spec.self_checked_messages),
            max_request_bytes=settings.grpc_max_message_bytes,
        ),
        AuditInterceptor(audit_sink),
        AuthInterceptor(authenticator or AnonymousAuthenticator()),
        AuditAdmission(audit_sink),
        starting := StartingGate(),
        *extra_interceptors,
    ]
    server = aio.server(
        interceptors=interceptors,
        options=[
            (
                "grpc.max_receive_message_length",
                max([settings.grpc_max_message_bytes] + [s.max_receive_message_bytes for s in specs]),
            ),
            ("grpc.max_send_message_length", settings.grpc_max_message_bytes),
            ("grpc.so_reuseport", 1 if settings.grpc_reuse_port else 0),
            *server_keepalive_options(settings).items(),
        ],
        maximum_concurrent_rpcs=settings.grpc_max_concurrent_rpcs,
    )
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    names = [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
    for spec in specs:
        spec.register(server)
        names.extend(spec.grpc_services)
    reflection.enable_server_reflection(names, server)
    address = f"{settings.grpc_host}:{settings.resolved_port()}"
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:
        why = why_not_bound(settings.grpc_host, settings.resolved_port())
        raise StartupError(f"cannot listen on {address}: {exc} ({why})") from None
    if port == 0:
        raise StartupError(
            f"cannot listen on {address} ({why_not_bound(settings.grpc_host, settings.resolved_port())})"
        )
    return RunningServer(server=server, health=health, port=port, specs=specs, starting=starting)


async def serve(
    specs: Sequence[ServiceSpec],
    settings: ServerSettings,
    *,
    stop: asyncio.Event | None = None,
    **build_kwargs: object,
) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set), then shut down gracefully.

    Shutdown: health turns NOT_SERVING; for ``shutdown_drain_seconds`` the server still answers (load balancers
    probing health see NOT_SERVING and drain it); then new calls are refused, in-flight calls get
    ``shutdown_grace_seconds`` to finish, and each service's ``on_stop`` runs.
    """
    running = build_server(specs, settings, **build_kwargs)  # type: ignore[arg-type]
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Until its start hooks are done a service answers UNAVAILABLE (STARTING), and health "" is NOT_SERVING:
    # grpc's servicer starts it SERVING, and load balancers probe "".
    running.starting.close(name for spec in specs for name in spec.grpc_services)
    await running.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    await running.server.start()
    stopped = False
    watch = DependencyWatch(running.health, [(spec.grpc_services, spec.dependency_probes) for spec in specs])
    watching: asyncio.Task[None] | None = None
    host = "127.0.0.1" if settings.grpc_host in ("0.0.0.0", "::", "[::]", "") else settings.grpc_host
    register_local([spec.name for spec in specs], f"{host}:{running.port}")
    try:
        for spec in specs:
            for hook in spec.on_start:
                await hook()
            running.starting.open(spec.grpc_services)
        await running.mark_serving()
        if watch:  # from SERVING on, health follows the services' dependencies
            watching = asyncio.create_task(watch.run(), name="dependency-probes")
        if settings.grpc_port_file:
            _write_port_file(settings, running.port)
        log.info(
            "serving",
            extra={
                "services": [s.name for s in specs],
                "grpc_address": f"{settings.grpc_host}:{running.port}",
            },
        )
        await stop.wait()
        _stop_watching(watch, watching)
        log.info(
            "shutting down",
            extra={
                "drain_seconds": settings.shutdown_drain_seconds,
                "grace_seconds": settings.shutdown_grace_seconds,
            },
        )
        await running.health.enter_graceful_shutdown()
        if settings.shutdown_drain_seconds > 0:
            await asyncio.sleep(settings.shutdown_drain_seconds)
        for hook in [hook for spec in specs for hook in spec.on_shutdown]:
            hook()
        await running.server.stop(settings.shutdown_grace_seconds)
        stopped = True
    finally:
        _stop_watching(watch, watching)
        if not stopped:  # a start hook failed: close the listener in this loop (else grpc complains at exit)
            await running.server.stop(None)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        for spec in reversed(specs):
            for hook in spec.on_stop:
                try:
                    await hook()
                except Exception:  # one service's failure to stop must not keep the others open
                    log.exception("stop hook of %s failed", spec.name)
        if settings.grpc_port_file and settings.grpc_port_file.exists():
            settings.grpc_port_file.unlink()
        forget_local()
    log.info("stopped")


def _stop_watching(watch: DependencyWatch, watching: asyncio.Task[None] | None) -> None:
    # Health turns NOT_SERVING for the stop next, and stays so: no probe may turn it back.
    if watching is not None:
        watching.cancel()
        watch.stop()


def why_not_bound(host: str, port: int) -> str:
    """The reason gRPC could not bind ``host:port``, found by binding a plain socket the same way (gRPC's own
    message says only "Failed to bind")."""
    try:
        addresses = socket.getaddrinfo(host.strip("[]") or None, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"grpc_host {host!r} is not a host name or address this machine can resolve: {exc.strerror}"
    for family, kind, protocol, _name, address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return f"port {port} is in use by another process"
                if exc.errno == errno.EADDRNOTAVAIL:
                    return f"grpc_host {host} is not an address of this machine"
                if exc.errno == errno.EACCES:
                    return f"port {port} needs privileges the service user lacks; choose one above 1023"
                return exc.strerror or str(exc)
    return "is the port in use?"


def _write_port_file(settings: ServerSettings, port: int) -> None:
    path = settings.grpc_port_file
    assert path is not None
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(f"{port}\n")
        tmp.replace(path)  # readers never see a half-written file
    except OSError as exc:
        raise ConfigError(
            f"grpc_port_file {path} cannot be written ({exc.strerror}); the service user must be able to write there"
        ) from None


def server_keepalive_options(settings: ServerSettings) -> dict[str, int]:
    """Ping callers whose calls went quiet (a dead peer's stream is cancelled, not kept forever), and accept the
    callers' own keepalive pings down to ``grpc_min_client_ping_interval_seconds``, also between calls: gRPC's
    default (one per 5 minutes) answers more frequent pings with GOAWAY ``too_many_pings``."""
    options = {
        **keepalive_options(settings.grpc_keepalive_time_seconds, settings.grpc_keepalive_timeout_seconds),
        "keepalive_permit_without_calls": 1,
        "http2.min_ping_interval_without_data_ms": _millis(settings.grpc_min_client_ping_interval_seconds),
    }
    return {f"grpc.{name}": value for name, value in options.items()}


def keepalive_options(time_seconds: float, timeout_seconds: float) -> dict[str, int]:
    """Options (without the ``grpc.`` prefix, as :func:`insecure_channel` takes them) that ping a connection
    carrying calls after ``time_seconds`` of silence and close it when a ping stays unanswered for
    ``timeout_seconds``. ``http2.ping_timeout_ms`` is what bounds the wait on grpcio 1.85 (``keepalive_timeout_ms``
    alone did not notice a black-holed connection); ``max_pings_without_data`` 0 keeps pinging a stream that is
    silent for hours (the default stops after 2 pings)."""
    return {
        "keepalive_time_ms": _millis(time_seconds),
        "keepalive_timeout_ms": _millis(timeout_seconds),
        "http2.ping_timeout_ms": _millis(timeout_seconds),
        "http2.max_pings_without_data": 0,
    }


def _millis(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def insecure_channel(target: str, **options: int) -> aio.Channel:
    """A client channel with the same message limits and OpenTelemetry propagation as the server."""
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return aio.insecure_channel(
        target,
        options=[(f"grpc.{k}", v) for k, v in options.items()],
        interceptors=aio_client_interceptors(),
    )


__all__ = [
    "RunningServer",
    "ServiceSpec",
    "build_server",
    "insecure_channel",
    "keepalive_options",
    "serve",
]
