"""svc_profile's part of ``qiming demo``: a customer browses anonymously, logs in, is stitched into one profile,
gets finance tags, and enters a real-time segment whose ``$segment_entered`` lands in the event log."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import grpc

from svc_common.conditions import Money, to_proto
from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import event_pb2, types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pb_grpc


def _event(event_type: str, user_id: str = "", anonymous_id: str = "", **props: str) -> event_pb2.Event:
    e = event_pb2.Event(event_id=str(uuid.uuid4()), event_type=event_type, user_id=user_id, anonymous_id=anonymous_id)
    e.occurred_at.GetCurrentTime()
    e.channel = types_pb2.CHANNEL_APP
    for name, value in props.items():
        e.properties[name].string_value = value
    return e


def run(channel: grpc.Channel, step: Callable[[str], None]) -> None:
    profiles = pb_grpc.ProfileServiceStub(channel)
    segments = pb_grpc.SegmentServiceStub(channel)
    collect = collect_pb2_grpc.CollectServiceStub(channel)
    customer = types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value="C20261123")
    device = types_pb2.UserRef(type=types_pb2.ID_TYPE_ANONYMOUS, value="device-7f3a")

    step("svc_profile: CRM sends declared attributes (AUM 3,500,000 CNY, risk rating C3); amounts are sealed")
    reply = profiles.UpsertAttributes(
        pb.UpsertAttributesRequest(
            user=customer,
            attributes={"aum_fen": to_proto(Money(350_000_000)), "risk_rating": to_proto("C3")},
            source_system="crm",
        ),
        timeout=30,
    )
    tags = {
        t.name: t.value.WhichOneof("kind") and getattr(t.value, t.value.WhichOneof("kind")) for t in reply.profile.tags
    }
    print(
        f"  profile {reply.profile.profile_id}: tags {tags}; "
        f"masked for this caller: {list(reply.profile.masked_fields)}"
    )

    step("SegmentService/CreateSegment: high-net-worth customers who viewed a fund in the last 7 days")
    condition = C.Condition(
        all_of=C.ConditionList(
            conditions=[
                C.Condition(has_tag=C.TagPresence(tag_name="fin_high_net_worth")),
                C.Condition(event_count=C.EventCount(event_type="fund_view", min_count=1, window_seconds=7 * 86_400)),
            ]
        )
    )
    segments.CreateSegment(
        pb.CreateSegmentRequest(segment=pb.Segment(segment_id="hnw_fund_lookers", condition=condition))
    )

    step("the app sends events: anonymous fund view, then a login that stitches the device to the customer")
    sent = time.monotonic()
    collect.Ingest(
        collect_pb2.IngestRequest(
            events=[
                _event("fund_view", anonymous_id=device.value, product_category="fund", fund_type="equity"),
                _event("login", user_id=customer.value, anonymous_id=device.value),
            ]
        ),
        timeout=30,
    )
    entered = None
    deadline = time.monotonic() + 20
    while entered is None and time.monotonic() < deadline:
        for response in collect.ReadEvents(collect_pb2.ReadEventsRequest(event_types=["$segment_entered"]), timeout=10):
            entered = next(iter(response.events), entered)
        time.sleep(0.05)
    if entered is None:
        print("  no $segment_entered within 20 s (is the consumer configured?)")
        return
    props = entered.properties
    print(
        f"  $segment_entered for user {entered.user_id} in {(time.monotonic() - sent) * 1000:.0f} ms: "
        f"segment {props['segment_id'].string_value} (cause {props['cause'].string_value})"
    )
    profile = profiles.GetProfile(pb.GetProfileRequest(user=device), timeout=10).profile
    ids = [f"{types_pb2.IdType.Name(i.identity.type)}={i.identity.value} ({i.linked_by})" for i in profile.identities]
    print(f"  GetProfile by the device id: {profile.profile_id}, ids {ids}")
    print(f"  segments {list(profile.segment_ids)}, lifecycle {pb.LifecycleStage.Name(profile.lifecycle_stage)}")

    step("a wrong merge is refused: linking another customer's number to this profile")
    try:
        other = types_pb2.Identity(type=types_pb2.ID_TYPE_CUSTOMER, value="C99999999")
        profiles.UpsertAttributes(
            pb.UpsertAttributesRequest(user=types_pb2.UserRef(type=2, value=other.value)), timeout=10
        )
        profiles.LinkIdentities(pb.LinkIdentitiesRequest(user=customer, identity=other), timeout=10)
    except grpc.RpcError as exc:
        print(f"  {exc.code().name}: {exc.details()}")
