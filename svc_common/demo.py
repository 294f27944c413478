"""``qiming demo``: start the suite on SQLite, drive it over real gRPC, print what happened, stop.

It grows with the services: each step below is a real call to the running suite.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from svc_campaign import demo as campaign_demo
from svc_collect import demo as collect_demo
from svc_common.pb.qiming.common.v1 import ops_pb2, ops_pb2_grpc
from svc_common.process import ServerProcess
from svc_modeling import demo as modeling_demo
from svc_profile import demo as profile_demo


def _step(title: str) -> None:
    print(f"\n== {title}")


def run_demo(data_dir: Path | None = None) -> int:
    work_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="qiming-demo-"))
    started = time.monotonic()
    _step(f"starting `qiming serve all` (four services, one process, SQLite under {work_dir})")
    suite = ServerProcess("all", work_dir=work_dir).start()
    try:
        print(f"serving on {suite.address} after {time.monotonic() - started:.1f} s")
        with grpc.insecure_channel(suite.address) as channel:
            services = _show_reflection(channel)
            _show_health(channel, services)
            _show_ops(channel)
            collect_demo.run(channel, _step)
            profile_demo.run(channel, _step)
            modeling_demo.run(channel, _step)
            campaign_demo.run(channel, _step)
        _step("stopping with SIGTERM (graceful: in-flight calls finish, health turns NOT_SERVING)")
        code = suite.terminate()
        print(f"exit code {code}")
        return 0 if code == 0 else 1
    except Exception:
        print("\n-- server log tail --\n" + suite.log_tail())
        raise
    finally:
        suite.kill()
        if data_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)


def _show_health(channel: grpc.Channel, services: list[str]) -> None:
    _step("grpc.health.v1.Health/Check: the whole server and each Qiming service")
    stub = health_pb2_grpc.HealthStub(channel)
    for name in ["", *(s for s in services if s.startswith("qiming."))]:
        try:
            status = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status
            shown = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
        except grpc.RpcError as exc:
            shown = f"{exc.code().name}: {exc.details()}"
        print(f"  {name or '(whole server)':40} {shown}")


def _show_reflection(channel: grpc.Channel) -> list[str]:
    _step("server reflection: the services this process answers")
    services = sorted(ProtoReflectionDescriptorDatabase(channel).get_services())
    for name in services:
        print(f"  {name}")
    return services


def _show_ops(channel: grpc.Channel) -> None:
    ops = ops_pb2_grpc.OpsServiceStub(channel)
    _step("qiming.common.v1.OpsService/GetServerInfo")
    info = ops.GetServerInfo(ops_pb2.GetServerInfoRequest(), timeout=10)
    print(f"  qiming {info.version}, pid {info.pid} on {info.hostname}")
    for service in info.services:
        print(f"  {service.name:9} database={service.database_dialect:10} schema revision={service.schema_revision}")
    _step("OpsService/ListInstances (each process records its start and stop)")
    listing = ops.ListInstances(ops_pb2.ListInstancesRequest(service="collect"), timeout=10)
    for instance in listing.instances:
        stopped = instance.stopped_at.ToJsonString() if instance.HasField("stopped_at") else "running"
        print(f"  {instance.instance_id}  started {instance.started_at.ToJsonString()}  {stopped}")
    _step("OpsService/Ping with a 200 ms server-side delay; the trace id comes back in trailing metadata")
    sent = time.monotonic()
    reply, call = ops.Ping.with_call(ops_pb2.PingRequest(payload="你好, 启明", delay_millis=200), timeout=10)
    traceresponse = dict(call.trailing_metadata() or ()).get("traceresponse", "")
    trace_id = traceresponse.split("-")[1] if traceresponse.count("-") == 3 else traceresponse
    print(f"  echoed {reply.payload!r} in {(time.monotonic() - sent) * 1000:.0f} ms, trace id {trace_id}")
    _step("a bad request gets a precise status: Ping with delay_millis above the limit")
    try:
        ops.Ping(ops_pb2.PingRequest(delay_millis=60_000), timeout=10)
    except grpc.RpcError as exc:
        print(f"  {exc.code().name}: {exc.details()}")
