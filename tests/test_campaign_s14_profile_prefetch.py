"""Session 14 (issue 6, "a restart resumes them all within seconds"): a batch of due timers (or of events) reads its
customers' profiles with one BatchGetProfiles, not one GetProfile per send. The restart benchmark has no profile
service; a real one made 100,000 calls, one after the other, to resume 100,000 customers."""

from __future__ import annotations

from concurrent import futures

import grpc
import pytest
from campaign_helpers import T0, add_template, campaign_service, event, messages, profile, run_journey, wait_then_send

from svc_campaign.profiles import GrpcProfileDirectory
from svc_common.pb.qiming.profile.v1 import profile_pb2, profile_pb2_grpc


class CountingProfiles(profile_pb2_grpc.ProfileServiceServicer):
    """svc_profile's two reads, counting their calls; customers c0..c9 exist."""

    def __init__(self) -> None:
        self.single: list[str] = []
        self.batches: list[list[str]] = []

    def GetProfile(self, request, context):
        self.single.append(request.user.value)
        if not request.user.value.startswith("c"):
            context.abort(grpc.StatusCode.NOT_FOUND, "no such customer")
        return profile_pb2.GetProfileResponse(profile=profile(request.user.value, risk="C3"))

    def BatchGetProfiles(self, request, context):
        values = [u.value for u in request.users]
        self.batches.append(values)
        found = [profile(v, risk="C3") for v in values if v.startswith("c")]
        missing = [u for u in request.users if not u.value.startswith("c")]
        return profile_pb2.BatchGetProfilesResponse(profiles=found, not_found=missing)


@pytest.fixture
def counting_profiles():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    fake = CountingProfiles()
    profile_pb2_grpc.add_ProfileServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", fake
    server.stop(None)


def test_prefetch_reads_a_batch_in_one_call_and_keeps_unknown_customers_unknown(counting_profiles) -> None:
    address, fake = counting_profiles
    directory = GrpcProfileDirectory(address)
    try:
        directory.prefetch(["c1", "x-unknown", "c2", "c1", ""])
        assert fake.batches == [["c1", "c2", "x-unknown"]]
        assert directory.get("c2").profile_id == "p-c2"  # type: ignore[union-attr]
        assert directory.get("x-unknown") is None and directory.get("c1") is not None
        assert fake.single == []  # every answer came from the batch
        directory.prefetch(["c1", "c3"])  # only what is not cached yet
        assert fake.batches[-1] == ["c3"]
    finally:
        directory.close()


def test_a_batch_of_due_timers_asks_svc_profile_once(tmp_path, counting_profiles) -> None:
    address, fake = counting_profiles
    directory = GrpcProfileDirectory(address, cache_seconds=600)
    with campaign_service(tmp_path, profiles=directory) as service:
        add_template(service)
        run_journey(service, wait_then_send(3600))
        service.engine.handle([event("signup", f"c{i}", T0) for i in range(10)])
        calls_at_entry = (len(fake.single), len(fake.batches))
        directory._cache.clear()  # an hour later (a restart): nothing cached
        service.clock.advance(seconds=3601)
        fired = service.engine.fire_due_timers()
        assert fired.timers_fired == 10
        assert len(messages(service)) == 10
        assert (len(fake.single), len(fake.batches)) == (calls_at_entry[0], calls_at_entry[1] + 1)
        assert sorted(fake.batches[-1]) == sorted(f"c{i}" for i in range(10))
    directory.close()
