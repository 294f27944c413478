"""Lifecycle history after the log consumer merges profiles (acceptance walk of issue 5, session 15, finding 4): an
anonymous device that logs in as a new customer reads UNSPECIFIED → PROSPECT, then PROSPECT → NEW (not two entries
from UNSPECIFIED), and a device first seen after its customer adds nothing to the customer's story. svc_profile as a
real process following a real svc_collect (SQLite)."""

from __future__ import annotations

from pathlib import Path

import grpc
from profile_helpers import ANONYMOUS, collector, event, profile_process, publish, ref, wait_for

from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pb_grpc


def test_a_device_logging_in_as_a_customer_has_one_lifecycle_story(tmp_path: Path) -> None:
    with collector(tmp_path) as collect, profile_process(tmp_path, collect.address) as profile:
        profiles = pb_grpc.ProfileServiceStub(grpc.insecure_channel(profile.address))
        analytics = pb_grpc.AnalyticsServiceStub(grpc.insecure_channel(profile.address))

        def history(user) -> list[tuple[str, str]] | None:
            try:
                reply = profiles.ListLifecycleHistory(pb.ListLifecycleHistoryRequest(user=user), timeout=30)
            except grpc.RpcError:
                return None  # not consumed yet
            name = pb.LifecycleStage.Name
            return [(name(t.from_stage)[16:], name(t.to_stage)[16:]) for t in reversed(reply.transitions)]

        # A device browses, then logs in as a customer svc_profile has never seen (separate batches).
        publish(collect.address, [event("app_start", anonymous_id="dev_a"), event("page_view", anonymous_id="dev_a")])
        wait_for(lambda: history(ref("dev_a", ANONYMOUS)) == [("UNSPECIFIED", "PROSPECT")])
        publish(collect.address, [event("$identify", "cust_a", "dev_a")])
        story = [("UNSPECIFIED", "PROSPECT"), ("PROSPECT", "NEW")]
        wait_for(lambda: history(ref("cust_a")) is not None)
        assert history(ref("cust_a")) == story

        # A customer known first, then a new device of theirs logs in: the customer's story is unchanged.
        profiles.UpsertAttributes(pb.UpsertAttributesRequest(user=ref("cust_b")), timeout=30)
        publish(collect.address, [event("page_view", anonymous_id="dev_b")])
        wait_for(lambda: history(ref("dev_b", ANONYMOUS)) == [("UNSPECIFIED", "PROSPECT")])
        publish(collect.address, [event("login", "cust_b", "dev_b")])
        wait_for(lambda: history(ref("dev_b", ANONYMOUS)) == [("UNSPECIFIED", "NEW")])
        assert history(ref("cust_b")) == [("UNSPECIFIED", "NEW")]

        flows = analytics.ComputeLifecycleDistribution(pb.ComputeLifecycleDistributionRequest(), timeout=30).flows
        counted = {
            (pb.LifecycleStage.Name(f.from_stage)[16:], pb.LifecycleStage.Name(f.to_stage)[16:]): f.count for f in flows
        }
        assert counted == {("UNSPECIFIED", "PROSPECT"): 1, ("PROSPECT", "NEW"): 1, ("UNSPECIFIED", "NEW"): 1}
