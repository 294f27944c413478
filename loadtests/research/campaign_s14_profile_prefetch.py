"""Session 14: firing N due timers with a real svc_profile (in this process, over gRPC): with the batch's
BatchGetProfiles, and with it turned off (a GetProfile per send, as before).

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/campaign_s14_profile_prefetch.py 2000 on|off
"""

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
import grpc
from campaign_helpers import T0, add_template, campaign_service, event, profile_server, run_journey, wait_then_send

from svc_campaign.profiles import GrpcProfileDirectory
from svc_common.conditions import to_proto
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2, profile_pb2_grpc

N = int(sys.argv[1])
mode = sys.argv[2]
if mode == "off":
    GrpcProfileDirectory.prefetch = None  # type: ignore[assignment]  # getattr finds None: the old path
with tempfile.TemporaryDirectory() as tmp, profile_server(Path(tmp)) as address:
    stub = profile_pb2_grpc.ProfileServiceStub(grpc.insecure_channel(address))
    for i in range(N):
        stub.UpsertAttributes(
            profile_pb2.UpsertAttributesRequest(
                user=types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=f"c{i}"),
                attributes={"risk_rating": to_proto("C3")},
                source_system="crm",
            )
        )
    directory = GrpcProfileDirectory(address, cache_seconds=600)
    with campaign_service(Path(tmp) / "c", profiles=directory) as service:
        add_template(service)
        run_journey(service, wait_then_send(3600))
        for s in range(0, N, 500):
            service.engine.handle([event("signup", f"c{i}", T0) for i in range(s, min(N, s + 500))])
        directory._cache.clear()
        service.clock.advance(seconds=3601)
        started, cpu = time.perf_counter(), time.process_time()
        fired = 0
        while True:
            batch = service.engine.fire_due_timers()
            if not batch.timers_fired:
                break
            fired += batch.timers_fired
        wall, used = time.perf_counter() - started, time.process_time() - cpu
        print(f"{mode}: {fired} timers fired in {wall:.2f} s (process CPU {used:.2f} s)")
    directory.close()
