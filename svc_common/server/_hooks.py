"""Where authentication and audit plug in. The defaults let every call through and log an audit line;
the security issue replaces them with per-system credentials, roles and the SM3 hash chain."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from grpc import aio

from svc_common.errors import AuditBacklog
from svc_common.logs import AUDIT_LOGGER
from svc_common.server._call import ANONYMOUS, CallInfo, CallInterceptor, Principal, status_of


class Authenticator(Protocol):
    """Decides who is calling; raises ``Unauthenticated`` or ``PermissionDenied`` to refuse the call."""

    async def authenticate(self, method: str, metadata: Mapping[str, str], peer: str) -> Principal: ...


@dataclass(frozen=True)
class AuditRecord:
    """One audited RPC: who, what, when, the outcome, the trace, which customers it touched, and the small facts
    its handler attached (``detail``, see ``note_audit_detail``: empty for most calls, and then not written)."""

    at: datetime
    principal: str
    roles: tuple[str, ...]
    method: str
    peer: str
    trace_id: str
    status: str
    customers: tuple[str, ...] = field(default=())
    detail: Mapping[str, Any] = field(default_factory=dict)


class AuditSink(Protocol):
    async def record(self, record: AuditRecord) -> None: ...


class AnonymousAuthenticator:
    """Until credentials are configured: every caller is ``anonymous`` with no roles."""

    async def authenticate(self, method: str, metadata: Mapping[str, str], peer: str) -> Principal:
        return ANONYMOUS


AUDIT_CUSTOMERS_PER_LINE = 1000


def customer_parts(customers: Sequence[str]) -> list[tuple[list[str], int, int]]:
    """The customers of one audit record as the lines that name them, ``(chunk, part, parts)``: one line with part
    and parts 0 when they fit in one, else parts of at most ``AUDIT_CUSTOMERS_PER_LINE`` numbered from 1 (a bulk
    tag write of a million scores is not one 15 MB line). The log lines and the chained file split alike."""
    size = AUDIT_CUSTOMERS_PER_LINE
    if len(customers) <= size:
        return [(list(customers), 0, 0)]
    parts = -(-len(customers) // size)
    return [(list(customers[i * size : (i + 1) * size]), i + 1, parts) for i in range(parts)]


"""A call that touched more customers (a bulk tag write, an import) is written as several lines, each naming up to
this many, with ``audit_part`` and ``audit_parts``: every customer is named, and no line grows to megabytes."""


class LogAuditSink:
    """Writes each audit record as a structured line on the ``qiming.audit`` logger (several for a bulk call)."""

    def __init__(self) -> None:
        self._log = logging.getLogger(AUDIT_LOGGER)

    async def record(self, record: AuditRecord) -> None:
        base = {
            "audit_principal": record.principal,
            "audit_roles": list(record.roles),
            "rpc_method": record.method,
            "rpc_status": record.status,
            "peer": record.peer,
            "audit_trace_id": record.trace_id,
        }
        if record.detail:
            base["audit_detail"] = dict(record.detail)
        for chunk, part, parts in customer_parts(record.customers):
            numbered = {"audit_part": part, "audit_parts": parts} if parts else {}
            self._log.info("audit", extra={**base, "audit_customers": chunk, **numbered})


class AuthInterceptor(CallInterceptor):
    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    async def enter(self, call: CallInfo, context: aio.ServicerContext) -> None:
        if call.is_infra:
            return  # health and reflection stay open for load balancers and grpcurl
        call.principal = await self._authenticator.authenticate(call.method, call.metadata, call.peer)


class AuditInterceptor(CallInterceptor):
    """One audit record per call, at its end. A call that ``AuditAdmission`` refused before it ran is recorded with
    the sink's ``refused`` where it has one (no wait for room the sink just found missing)."""

    def __init__(self, sink: AuditSink) -> None:
        self._sink = sink

    async def exit(self, call: CallInfo, context: aio.ServicerContext, exc: BaseException | None) -> None:
        if call.is_infra:
            return
        record = self._sink.record
        if isinstance(exc, AuditBacklog):
            record = getattr(self._sink, "refused", record)
        await record(_record_of(call, context, exc))


class AuditAdmission(CallInterceptor):
    """Innermost, after authentication: a sink with ``admit`` (the chained audit file and its bounded queue) may refuse
    a call before its handler runs (``AuditBacklog``), so that a refused call did nothing (an ingest stored no event
    the audit trail could not record). ``AuditInterceptor`` records the refusal."""

    def __init__(self, sink: AuditSink) -> None:
        self._admit = getattr(sink, "admit", None)

    async def enter(self, call: CallInfo, context: aio.ServicerContext) -> None:
        if self._admit is not None and not call.is_infra:
            await self._admit()


def _record_of(call: CallInfo, context: aio.ServicerContext, exc: BaseException | None) -> AuditRecord:
    return AuditRecord(
        at=datetime.now(UTC),
        principal=call.principal.subject,
        roles=tuple(sorted(call.principal.roles)),
        method=call.method,
        peer=call.peer,
        trace_id=call.trace_id,
        status=status_of(exc, context).name,
        customers=tuple(sorted(call.customers)),
        detail=dict(call.detail),
    )
