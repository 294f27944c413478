"""The gRPC server kit: one ``build_server()`` for every service."""

from svc_common.peers import peer_address
from svc_common.server._app import (
    RunningServer,
    ServiceSpec,
    build_server,
    insecure_channel,
    keepalive_options,
    serve,
)
from svc_common.server._call import (
    ANONYMOUS,
    CallInfo,
    CallInterceptor,
    Principal,
    current_call,
    note_audit_detail,
    note_customers,
)
from svc_common.server._client import blocking_channel
from svc_common.server._dependencies import DEFAULT_PROBE_INTERVAL_MILLIS, DependencyProbe
from svc_common.server._encoded import Encoded
from svc_common.server._errors import ErrorInterceptor, to_status
from svc_common.server._hooks import (
    AnonymousAuthenticator,
    AuditRecord,
    AuditSink,
    Authenticator,
    LogAuditSink,
)
from svc_common.server._pending import contract_services, register_not_yet_built

__all__ = [
    "ANONYMOUS",
    "DEFAULT_PROBE_INTERVAL_MILLIS",
    "AnonymousAuthenticator",
    "AuditRecord",
    "AuditSink",
    "Authenticator",
    "CallInfo",
    "CallInterceptor",
    "DependencyProbe",
    "Encoded",
    "ErrorInterceptor",
    "LogAuditSink",
    "Principal",
    "RunningServer",
    "ServiceSpec",
    "blocking_channel",
    "build_server",
    "contract_services",
    "current_call",
    "insecure_channel",
    "keepalive_options",
    "note_audit_detail",
    "note_customers",
    "peer_address",
    "register_not_yet_built",
    "serve",
    "to_status",
]
