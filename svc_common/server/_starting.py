"""Calls that arrive while a service is still starting: UNAVAILABLE, retryable, instead of an answer from a service
whose start (its database, its log, its cursors) is not done.

The port opens before the services' start hooks run (a suite's services call each other while they start), so a
call could reach a half-started service: svc_collect called a valid cursor "not a cursor of this log" before it
knew its log's tag, and answered INTERNAL before its JetStream connection existed. ``serve`` closes the gate of
every service before the port opens and opens each one once its own hooks are done; a server built without
``serve`` (tests) has no closed gate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from grpc import aio

from svc_common.errors import Unavailable
from svc_common.server._call import CallInfo, CallInterceptor


class StartingGate(CallInterceptor):
    """Refuses the calls of the gRPC services that are still starting (health and reflection always answer)."""

    def __init__(self) -> None:
        self._starting: set[str] = set()

    def close(self, services: Iterable[str]) -> None:
        self._starting.update(services)

    def open(self, services: Iterable[str]) -> None:
        self._starting.difference_update(services)

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        if not self._starting:  # started (or built without serve): the call's handler is not wrapped at all
            return await continuation(details)
        return await super().intercept_service(continuation, details)

    async def enter(self, call: CallInfo, context: aio.ServicerContext) -> None:
        if self._starting and call.service in self._starting:
            raise Unavailable(
                f"{call.service} is starting and does not answer yet; retry with backoff", reason="STARTING"
            )
