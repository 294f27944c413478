"""Each service as a real process: starts on port 0, SERVING on health, listed by reflection, and stops
on SIGTERM only after in-flight calls finished."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from svc_common.pb.qiming.common.v1 import ops_pb2, ops_pb2_grpc
from svc_common.process import ServerProcess
from svc_common.server import contract_services
from svc_common.suite import entries


@pytest.mark.parametrize("service", ["collect", "profile", "campaign", "modeling"])
def test_service_serves_and_stops_gracefully(service: str, tmp_path) -> None:
    server = ServerProcess(service, work_dir=tmp_path).start()
    try:
        expected = set(contract_services(service))
        with grpc.insecure_channel(server.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for name in ["", *expected, "qiming.common.v1.OpsService"]:
                status = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status
                assert status == health_pb2.HealthCheckResponse.SERVING, name
            with pytest.raises(grpc.RpcError) as unknown:
                health.Check(health_pb2.HealthCheckRequest(service="qiming.nope.v1.Nope"), timeout=5)
            assert unknown.value.code() == grpc.StatusCode.NOT_FOUND

            listed = set(ProtoReflectionDescriptorDatabase(channel).get_services())
            assert expected | {"qiming.common.v1.OpsService", "grpc.health.v1.Health"} <= listed

            ops = ops_pb2_grpc.OpsServiceStub(channel)
            info = ops.GetServerInfo(ops_pb2.GetServerInfoRequest(), timeout=5)
            assert [s.name for s in info.services] == [service]
            assert info.services[0].schema_revision == entries([service])[0].schema.migrations.head()

            # A call in flight when SIGTERM arrives still completes.
            outcome: dict[str, object] = {}

            def slow_call() -> None:
                try:
                    outcome["reply"] = ops.Ping(ops_pb2.PingRequest(payload="in-flight", delay_millis=1500), timeout=20)
                except grpc.RpcError as exc:  # pragma: no cover - the assertion below reports it
                    outcome["error"] = exc

            caller = threading.Thread(target=slow_call)
            caller.start()
            time.sleep(0.5)
            sent_term = time.monotonic()
            assert server.terminate(timeout_seconds=30) == 0
            caller.join(timeout=10)
            assert "error" not in outcome, outcome.get("error")
            assert outcome["reply"].payload == "in-flight"
            assert time.monotonic() - sent_term >= 0.5  # it waited for the call
    finally:
        server.kill()
    log = server.log_path.read_text()
    assert '"message": "stopped"' in log


def test_instances_are_recorded_across_restarts(tmp_path) -> None:
    for _ in range(2):
        with ServerProcess("collect", work_dir=tmp_path):
            pass
    with (
        ServerProcess("collect", work_dir=tmp_path) as server,
        grpc.insecure_channel(server.address) as channel,
    ):
        ops = ops_pb2_grpc.OpsServiceStub(channel)
        first = ops.ListInstances(ops_pb2.ListInstancesRequest(service="collect", page={"page_size": 2}), timeout=5)
        assert len(first.instances) == 2 and first.next_page_token
        assert not first.instances[0].HasField("stopped_at")  # the running one, newest first
        rest = ops.ListInstances(
            ops_pb2.ListInstancesRequest(service="collect", page={"page_token": first.next_page_token}),
            timeout=5,
        )
        assert len(rest.instances) == 1 and rest.instances[0].HasField("stopped_at")
        with pytest.raises(grpc.RpcError) as err:
            ops.ListInstances(ops_pb2.ListInstancesRequest(service="profile"), timeout=5)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as err:
            ops.ListInstances(
                ops_pb2.ListInstancesRequest(service="collect", page={"page_token": "garbage"}), timeout=5
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
