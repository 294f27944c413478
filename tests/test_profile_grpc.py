"""svc_profile as a real process following a real svc_collect: statuses over gRPC, tags, segments that change
the moment an event arrives and publish $segment_entered / $segment_exited into the log."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from profile_helpers import ANONYMOUS, collector, event, profile_process, publish, read_batches, ref, wait_for

from svc_common.conditions import Money, to_proto
from svc_common.pb.qiming.common.v1 import condition_pb2, types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pb_grpc

C = condition_pb2


def count_condition(event_type: str, n: int, days: int, node_id: str = "") -> C.Condition:
    return C.Condition(
        node_id=node_id, event_count=C.EventCount(event_type=event_type, min_count=n, window_seconds=days * 86_400)
    )


def attr(name: str, op: int, value) -> C.Condition:
    return C.Condition(
        comparison=C.Comparison(
            field=C.FieldRef(source=C.FieldRef.SOURCE_ATTRIBUTE, name=name), operator=op, value=to_proto(value)
        )
    )


def _code(call, *args) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as raised:
        call(*args, timeout=30)
    return raised.value.code(), raised.value.details()


def segment_events(address: str) -> list:
    return [e for batch, _ in read_batches(address) for e in batch if e.event_type.startswith("$segment_")]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_real_time_segments_tags_and_statuses(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("database_url_postgresql") if backend == "postgresql" else ""
    with collector(tmp_path) as collect, profile_process(tmp_path, collect.address, url) as profile:
        channel = grpc.insecure_channel(profile.address)
        profiles = pb_grpc.ProfileServiceStub(channel)
        tags = pb_grpc.TagServiceStub(channel)
        segments = pb_grpc.SegmentServiceStub(channel)

        # Statuses: unknown ids, placeholders, bad conditions (naming the node), collisions, cycles.
        code, _ = _code(profiles.GetProfile, pb.GetProfileRequest(user=ref("nobody")))
        assert code == grpc.StatusCode.NOT_FOUND
        code, _ = _code(profiles.GetProfile, pb.GetProfileRequest(user=ref("null", ANONYMOUS)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        bad = C.Condition(all_of=C.ConditionList(conditions=[count_condition("login", 0, 7, "logins")]))
        code, details = _code(
            tags.CreateTagDefinition,
            pb.CreateTagDefinitionRequest(definition=pb.TagDefinition(name="t1", condition=bad)),
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "'logins'" in details and "min_count" in details
        deep = count_condition("login", 1, 7)
        for _ in range(20):
            deep = C.Condition(**{"not": deep})
        code, details = _code(
            segments.CreateSegment, pb.CreateSegmentRequest(segment=pb.Segment(segment_id="deep", condition=deep))
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "deeper" in details
        code, _ = _code(
            tags.CreateTagDefinition,
            pb.CreateTagDefinitionRequest(definition=pb.TagDefinition(name="fin_high_net_worth", condition=deep)),
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT  # fin_ is reserved for the pack
        active = pb.TagDefinition(name="active_trader", condition=count_condition("trade_filled", 2, 7))
        tags.CreateTagDefinition(pb.CreateTagDefinitionRequest(definition=active), timeout=30)
        code, _ = _code(tags.CreateTagDefinition, pb.CreateTagDefinitionRequest(definition=active))
        assert code == grpc.StatusCode.ALREADY_EXISTS
        code, _ = _code(tags.GetTagDefinition, pb.GetTagDefinitionRequest(name="nope"))
        assert code == grpc.StatusCode.NOT_FOUND

        traders = pb.Segment(
            segment_id="traders", condition=C.Condition(has_tag=C.TagPresence(tag_name="active_trader"))
        )
        created = segments.CreateSegment(pb.CreateSegmentRequest(segment=traders), timeout=30)
        assert created.segment.version == 1 and created.job.state == 3
        loop = pb.Segment(
            segment_id="loop_a", condition=C.Condition(in_segment=C.SegmentMembership(segment_id="loop_a"))
        )
        code, details = _code(segments.CreateSegment, pb.CreateSegmentRequest(segment=loop))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "cycle" in details
        code, _ = _code(segments.CreateSegment, pb.CreateSegmentRequest(segment=traders))
        assert code == grpc.StatusCode.ALREADY_EXISTS
        code, _ = _code(segments.GetSegmentSize, pb.GetSegmentSizeRequest(segment_id="nope"))
        assert code == grpc.StatusCode.NOT_FOUND
        rich = pb.Segment(segment_id="rich", condition=attr("aum_fen", C.OPERATOR_GTE, Money(300_000_000)))
        segments.CreateSegment(pb.CreateSegmentRequest(segment=rich), timeout=30)

        # Real time: the second trade of C1 makes the tag true and the segment entered, published to the log.
        publish(collect.address, [event("login", user_id="C1", anonymous_id="d1"), event("trade_filled", user_id="C1")])

        def known() -> bool:
            try:
                return bool(profiles.GetProfile(pb.GetProfileRequest(user=ref("d1", ANONYMOUS)), timeout=10).profile)
            except grpc.RpcError:
                return False

        wait_for(known)
        sent = time.monotonic()
        trigger = event("trade_filled", user_id="C1")
        publish(collect.address, [trigger])
        entered = wait_for(lambda: segment_events(collect.address))
        latency = time.monotonic() - sent
        assert latency < 5, latency
        (change,) = entered
        props = change.properties
        assert change.event_type == "$segment_entered" and change.user_id == "C1"
        assert props["segment_id"].string_value == "traders" and props["cause"].string_value == "event"
        assert props["trigger_event_id"].string_value == trigger.event_id and props["segment_version"].int_value == 1
        profile = profiles.GetProfile(pb.GetProfileRequest(user=ref("C1")), timeout=10).profile
        assert "traders" in profile.segment_ids and props["profile_id"].string_value == profile.profile_id
        member = segments.CheckMembership(pb.CheckMembershipRequest(segment_id="traders", user=ref("d1", ANONYMOUS)))
        assert member.member

        # Attributes from CRM: the rich segment is entered (cause event) and the HNW tag is set.
        profiles.UpsertAttributes(
            pb.UpsertAttributesRequest(user=ref("C1"), attributes={"aum_fen": to_proto(Money(350_000_000))}), timeout=30
        )
        wait_for(lambda: len(segment_events(collect.address)) == 2)
        listed = tags.ListUserTags(pb.ListUserTagsRequest(user=ref("C1")), timeout=10)
        assert {t.name for t in listed.tags} >= {"active_trader", "fin_high_net_worth", "lifecycle_stage"}

        # Model scores through WriteTags with provenance.
        score = pb.TagDefinition(
            name="churn_score", value_type=types_pb2.VALUE_TYPE_DOUBLE, external=pb.ExternalTag(writer="svc_modeling")
        )
        tags.CreateTagDefinition(pb.CreateTagDefinitionRequest(definition=score), timeout=30)
        provenance = types_pb2.Provenance(
            source=types_pb2.Provenance.SOURCE_MODEL, writer="model:churn_60d", writer_version="3"
        )
        reply = tags.WriteTags(
            pb.WriteTagsRequest(
                writes=[
                    pb.TagWrite(user=ref("C1"), tag_name="churn_score", value=to_proto(0.83)),
                    pb.TagWrite(user=ref("C404"), tag_name="churn_score", value=to_proto(0.1)),
                    pb.TagWrite(user=ref("C1"), tag_name="active_trader", value=to_proto(True)),
                ],
                provenance=provenance,
            ),
            timeout=30,
        )
        assert reply.written_count == 1 and [e.row_index for e in reply.errors] == [1, 2]
        churn = next(
            t for t in tags.ListUserTags(pb.ListUserTagsRequest(user=ref("C1"))).tags if t.name == "churn_score"
        )
        assert churn.provenance.source == types_pb2.Provenance.SOURCE_MODEL and churn.provenance.writer_version == "3"

        # Size, sample, export, recompute; static lists.
        size = segments.GetSegmentSize(pb.GetSegmentSizeRequest(segment_id="traders", sample_size=5))
        assert size.size == 1 and size.sample_profile_ids == [profile.profile_id]
        pages = list(
            segments.ExportMembers(pb.ExportMembersRequest(segment_id="rich", id_types=[types_pb2.ID_TYPE_CUSTOMER]))
        )
        assert [(m.profile_id, [i.value for i in m.identities]) for p in pages for m in p.members] == [
            (profile.profile_id, ["C1"])
        ]
        recomputed = segments.RecomputeSegment(pb.RecomputeSegmentRequest(segment_id="traders"), timeout=60)
        assert recomputed.job.state == 3
        static = pb.Segment(segment_id="vip_list", static_list=pb.StaticSegment(source="svc_modeling:uplift/1"))
        segments.CreateSegment(pb.CreateSegmentRequest(segment=static), timeout=30)
        reply = segments.SetStaticMembers(
            iter([pb.SetStaticMembersRequest(segment_id="vip_list", users=[ref("C1"), ref("C404")], replace=True)])
        )
        assert reply.member_count == 1 and [u.value for u in reply.not_found] == ["C404"]
        wait_for(lambda: len(segment_events(collect.address)) == 3)
        causes = [e.properties["cause"].string_value for e in segment_events(collect.address)]
        assert causes == ["event", "event", "static"]

        # Analytics over gRPC.
        analytics = pb_grpc.AnalyticsServiceStub(channel)
        steps = [pb.FunnelStep(event_type="login"), pb.FunnelStep(event_type="trade_filled")]
        funnel = analytics.ComputeFunnel(
            pb.ComputeFunnelRequest(steps=steps, conversion_window_seconds=3600), timeout=30
        )
        assert [s.count for s in funnel.results[0].steps] == [1, 1]
        assert funnel.results[0].steps[1].conversion_from_start == 1.0
        code, _ = _code(analytics.ComputeFunnel, pb.ComputeFunnelRequest(steps=steps[:1], conversion_window_seconds=60))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        paths = analytics.ComputePaths(pb.ComputePathsRequest(screen="nowhere"), timeout=30)
        assert paths.total_sessions == 0
        stages = analytics.ComputeLifecycleDistribution(pb.ComputeLifecycleDistributionRequest(), timeout=30)
        assert sum(s.count for s in stages.stages) == 1
        channel.close()
