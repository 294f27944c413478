"""The gRPC ProfileDirectory against a stand-in ProfileService over real gRPC: the profile is fetched by customer
number, reused within the cache time, NOT_FOUND is an unknown customer, an unreachable service is treated as
unknown for that step and asked again next time; rendering never shows a masked field."""

from __future__ import annotations

import time
from concurrent import futures

import grpc
import pytest
from campaign_helpers import profile

from svc_campaign.content import RenderRefused, render, risk_rating
from svc_campaign.profiles import GrpcProfileDirectory
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2, profile_pb2_grpc


class FakeProfiles(profile_pb2_grpc.ProfileServiceServicer):
    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []

    def GetProfile(self, request, context):
        self.calls.append((request.user.type, request.user.value))
        if request.user.value != "c1":
            context.abort(grpc.StatusCode.NOT_FOUND, "no such customer")
        found = profile("c1", risk="C4", segments=("hnw",), nickname="小王", phone="13800000000")
        found.masked_fields.append("attribute.phone")
        return profile_pb2.GetProfileResponse(profile=found)


@pytest.fixture
def profile_server():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    fake = FakeProfiles()
    profile_pb2_grpc.add_ProfileServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", fake, server
    server.stop(None)


def test_grpc_directory_caches_and_treats_not_found_and_outage_as_unknown(profile_server) -> None:
    address, fake, server = profile_server
    directory = GrpcProfileDirectory(address, cache_seconds=0.3, timeout_seconds=1)
    try:
        first = directory.get("c1")
        assert first is not None and risk_rating(first) == 4 and list(first.segment_ids) == ["hnw"]
        assert directory.get("c1") is not None and len(fake.calls) == 1  # cached
        assert directory.get("nobody") is None and directory.get("nobody") is None and len(fake.calls) == 2
        assert fake.calls[0] == (2, "c1")  # ID_TYPE_CUSTOMER
        time.sleep(0.35)
        server.stop(None)
        assert directory.get("c1") is None  # unreachable: unknown now, asked again next time
    finally:
        directory.close()


def test_render_refuses_masked_and_level_3_fields(profile_server) -> None:
    address, _, _ = profile_server
    directory = GrpcProfileDirectory(address)
    try:
        customer = directory.get("c1")
    finally:
        directory.close()
    greeting = pb.Template(title="{{attribute.nickname|您好}}", body="{{attribute.nickname}}，{{event.fund}} 已上架")
    assert render(greeting, customer, {"fund": "F001"}) == ("小王", "小王，F001 已上架", "")
    with pytest.raises(RenderRefused):
        render(pb.Template(body="{{attribute.phone}}"), customer, {})  # masked by svc_profile
    with pytest.raises(RenderRefused):
        render(pb.Template(body="{{attribute.id_number}}"), None, {}, ["id_number"])
