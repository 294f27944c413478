"""One structured log line per RPC: method, status, duration, caller — and the trace id (via the log filter)."""

from __future__ import annotations

import logging
import time

from grpc import aio

from svc_common.server._call import CallInfo, CallInterceptor, status_of

log = logging.getLogger("qiming.access")


class AccessLogInterceptor(CallInterceptor):
    async def enter(self, call: CallInfo, context: aio.ServicerContext) -> None:
        # W3C trace-context level 2: tell the caller which trace to quote (also for calls that fail).
        if call.trace_id:
            context.set_trailing_metadata((("traceresponse", call.traceresponse),))

    async def exit(self, call: CallInfo, context: aio.ServicerContext, exc: BaseException | None) -> None:
        status = status_of(exc, context)
        level = logging.DEBUG if call.is_infra else (logging.INFO if exc is None else logging.WARNING)
        log.log(
            level,
            "rpc",
            extra={
                "rpc_method": call.method,
                "rpc_status": status.name,
                "duration_millis": round((time.monotonic() - call.started_monotonic) * 1000, 3),
                "peer": call.peer,
                "principal": call.principal.subject,
            },
        )
