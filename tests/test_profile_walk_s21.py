"""What the acceptance walk of svc_profile on 2026-12-07 found (session 21): each test fails on the code before its
fix."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest
from profile_helpers import ANONYMOUS, CUSTOMER, event, profile_app, profile_process, profile_settings, ref

from svc_common.conditions import from_proto, to_proto
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pb_grpc


def _carrying(event_type: str, device: str, customer: str) -> object:
    carrier = event(event_type, anonymous_id=device, session_id="s1")
    carrier.identities.add(type=CUSTOMER, value=customer)
    return carrier


# Finding 1 (major): a person who gains a customer number from the log is evaluated in full, as one linked by
# LinkIdentities is: a stage and the dormant score depend on having a customer, which no event type's rules name.
@pytest.mark.parametrize("event_type", ["$alias", "page_view"])
def test_a_device_profile_that_gains_a_customer_number_from_the_log_is_evaluated_in_full(
    tmp_path: Path, database_url: str, event_type: str
) -> None:
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        app.consumer.handle([event("page_view", anonymous_id="dev-9", session_id="s0")], "c1")
        before = app.profiles.get(ref("dev-9", ANONYMOUS), ["tags"], frozenset())
        assert before.lifecycle_stage == pb.LIFECYCLE_STAGE_PROSPECT
        assert "fin_dormant_activation" not in {t.name for t in before.tags}
        app.consumer.handle([_carrying(event_type, "dev-9", "C9200")], "c2")
        after = app.profiles.get(ref("C9200"), ["tags"], frozenset())
        assert after.profile_id == before.profile_id
        tags = {t.name: from_proto(t.value) for t in after.tags}
        assert after.lifecycle_stage == pb.LIFECYCLE_STAGE_NEW
        assert tags["lifecycle_stage"] == "new" and tags["fin_dormant_activation"] == 0
        # What a full evaluation of everyone gives: the same.
        app.consumer.handle([event("page_view", user_id="C9200", session_id="s2")], "c3")
        again = app.profiles.get(ref("C9200"), ["tags"], frozenset())
        assert again.lifecycle_stage == pb.LIFECYCLE_STAGE_NEW


# Finding 4: CreateSegment without an id gets one (profile.proto: "Server-assigned unless given at creation").
def test_a_segment_created_without_an_id_gets_one_from_the_server(tmp_path: Path) -> None:
    branch = C.FieldRef(source=C.FieldRef.SOURCE_ATTRIBUTE, name="branch")
    north = C.Condition(comparison=C.Comparison(field=branch, operator=C.OPERATOR_EQ, value=to_proto("n")))
    with profile_process(tmp_path, QIMING_PROFILE_FINANCE_PACK="false") as profile:
        channel = grpc.insecure_channel(profile.address)
        pb_grpc.ProfileServiceStub(channel).UpsertAttributes(
            pb.UpsertAttributesRequest(user=ref("G1"), attributes={"branch": to_proto("n")}), timeout=30
        )
        segments = pb_grpc.SegmentServiceStub(channel)
        made = [
            segments.CreateSegment(pb.CreateSegmentRequest(segment=pb.Segment(condition=north)), timeout=30)
            for _ in range(2)
        ]
        ids = [m.segment.segment_id for m in made]
        assert all(re.fullmatch(r"seg_[0-9a-f]{16}", i) for i in ids) and ids[0] != ids[1], ids
        got = segments.GetSegment(pb.GetSegmentRequest(segment_id=ids[0]), timeout=30).segment
        assert got.segment_id == ids[0] and got.version == 1
        check = segments.CheckMembership(pb.CheckMembershipRequest(segment_id=ids[1], user=ref("G1")), timeout=30)
        assert check.member
        channel.close()


# Finding 3: archiving a tag removes its values (they were served as current for good).
def test_archiving_a_tag_removes_its_values_from_every_profile(tmp_path: Path, database_url: str) -> None:
    logged_in = C.Condition(event_count=C.EventCount(event_type="login", min_count=1, window_seconds=86_400))
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        app.definitions.create_tag(
            pb.TagDefinition(name="tmp_tag", value_type=types_pb2.VALUE_TYPE_BOOL, condition=logged_in)
        )
        app.definitions.create_tag(
            pb.TagDefinition(name="kept_tag", value_type=types_pb2.VALUE_TYPE_BOOL, condition=logged_in)
        )
        app.consumer.handle([event("login", user_id="C1"), event("login", user_id="C2")], "c1")
        for user in ("C1", "C2"):
            names = {t.name for t in app.profiles.get(ref(user), ["tags"], frozenset()).tags}
            assert {"tmp_tag", "kept_tag"} <= names
        assert app.definitions.archive_tag("tmp_tag").archived
        for user in ("C1", "C2"):
            names = {t.name for t in app.profiles.get(ref(user), ["tags"], frozenset()).tags}
            assert "tmp_tag" not in names and "kept_tag" in names
        app.consumer.handle([event("login", user_id="C1")], "c2")  # not evaluated again
        assert "tmp_tag" not in {t.name for t in app.profiles.get(ref("C1"), ["tags"], frozenset()).tags}
