"""Serving a ServiceSpec on a real server from ``build_server`` in a test, and reading refusals' field violations."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc import aio
from grpc_status import rpc_status

from svc_common.config import ServerSettings
from svc_common.server import ServiceSpec, build_server


@contextlib.asynccontextmanager
async def served_at(
    spec: ServiceSpec, settings: Any = None, *, hooks: bool = False, **build: Any
) -> AsyncIterator[tuple[aio.Channel, str]]:
    """``spec`` on a free port (``settings``, else the kit's defaults), a channel to it and its address; ``hooks``:
    its start hooks run once the port is open and its stop hooks at the end, as ``serve`` runs them."""
    running = build_server([spec], settings or ServerSettings(grpc_port=0), **build)
    await running.server.start()
    try:
        if hooks:
            for hook in spec.on_start:
                await hook()
            await running.mark_serving()
        address = f"127.0.0.1:{running.port}"
        async with aio.insecure_channel(address) as channel:
            yield channel, address
    finally:
        await running.server.stop(0)
        if hooks:
            for stop in reversed(spec.on_stop):
                await stop()


@contextlib.asynccontextmanager
async def served(
    spec: ServiceSpec, settings: Any = None, *, hooks: bool = False, **build: Any
) -> AsyncIterator[aio.Channel]:
    """:func:`served_at`, the channel only."""
    async with served_at(spec, settings, hooks=hooks, **build) as (channel, _):
        yield channel


def violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    """The (field, reason) pairs of a refusal's BadRequest details."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    out = []
    for item in status.details:
        if item.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            item.Unpack(bad)
            out.extend((v.field, v.reason) for v in bad.field_violations)
    return out
