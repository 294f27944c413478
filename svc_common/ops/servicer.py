"""``qiming.common.v1.OpsService``: served by every process, for IT and for the demo."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
from collections.abc import Sequence

from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio

from svc_common import __version__
from svc_common.errors import FieldViolation, InvalidArgument, NotFound
from svc_common.ops._instances import Instance
from svc_common.paging import page_size
from svc_common.pb.qiming.common.v1 import ops_pb2, ops_pb2_grpc
from svc_common.runtime import ServiceRuntime
from svc_common.server import ServiceSpec

MAX_PING_DELAY_MILLIS = 10_000
_STARTED_AT = dt.datetime.now(dt.UTC)


def _ts(value: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _instance_proto(instance: Instance) -> ops_pb2.Instance:
    message = ops_pb2.Instance(
        instance_id=instance.instance_id,
        service=instance.service_name,
        version=instance.version,
        hostname=instance.host_name,
        pid=instance.pid,
        started_at=_ts(instance.started_at),
    )
    if instance.stopped_at is not None:
        message.stopped_at.CopyFrom(_ts(instance.stopped_at))
    return message


class OpsServicer(ops_pb2_grpc.OpsServiceServicer):
    def __init__(self, runtimes: Sequence[ServiceRuntime]) -> None:
        self._runtimes = {rt.name: rt for rt in runtimes}

    async def GetServerInfo(
        self, request: ops_pb2.GetServerInfoRequest, context: aio.ServicerContext
    ) -> ops_pb2.GetServerInfoResponse:
        services = []
        for rt in self._runtimes.values():
            revision = await asyncio.to_thread(rt.schema_revision)
            services.append(
                ops_pb2.ServiceInfo(
                    name=rt.name,
                    grpc_service=", ".join(rt.grpc_services),
                    database_dialect=rt.database.dialect,
                    schema_revision=revision,
                )
            )
        first = next(iter(self._runtimes.values()), None)
        return ops_pb2.GetServerInfoResponse(
            services=services,
            version=__version__,
            instance_id=first.instances.current.instance_id if first else "",
            hostname=socket.gethostname(),
            pid=os.getpid(),
            started_at=_ts(_STARTED_AT),
        )

    async def ListInstances(
        self, request: ops_pb2.ListInstancesRequest, context: aio.ServicerContext
    ) -> ops_pb2.ListInstancesResponse:
        if not request.service:
            raise InvalidArgument(
                "service is required",
                violations=[FieldViolation("service", f"one of: {', '.join(self._runtimes)}")],
            )
        runtime = self._runtimes.get(request.service)
        if runtime is None:
            raise NotFound(
                f"this process does not serve {request.service!r}; it serves {', '.join(self._runtimes)}",
                reason="SERVICE_NOT_HERE",
            )
        size = page_size(request.page.page_size)
        instances, token = await asyncio.to_thread(runtime.instances.list, size, request.page.page_token)
        return ops_pb2.ListInstancesResponse(instances=[_instance_proto(i) for i in instances], next_page_token=token)

    async def Ping(self, request: ops_pb2.PingRequest, context: aio.ServicerContext) -> ops_pb2.PingResponse:
        if request.delay_millis > MAX_PING_DELAY_MILLIS:
            raise InvalidArgument(
                f"delay_millis {request.delay_millis} is above the limit {MAX_PING_DELAY_MILLIS}",
                violations=[FieldViolation("delay_millis", f"at most {MAX_PING_DELAY_MILLIS}")],
            )
        if request.delay_millis:
            await asyncio.sleep(request.delay_millis / 1000)
        return ops_pb2.PingResponse(payload=request.payload, server_time=_ts(dt.datetime.now(dt.UTC)))


def ops_spec(runtimes: Sequence[ServiceRuntime]) -> ServiceSpec:
    servicer = OpsServicer(runtimes)
    full_name = ops_pb2.DESCRIPTOR.services_by_name["OpsService"].full_name
    return ServiceSpec(
        name="ops",
        grpc_services=(full_name,),
        register=lambda server: ops_pb2_grpc.add_OpsServiceServicer_to_server(servicer, server),
    )
