"""svc_profile as a real process (following a real svc_collect, SQLite) refuses what could never work (acceptance walk
of issue 5, session 15): conditions naming a feature it never computes or a tag nobody defined (finding 1), unknown
enum numbers (finding 3), a risk rating other than C1-C5 (finding 8); and LinkIdentities keeps one lifecycle story
for the merged person (finding 4)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from profile_helpers import ANONYMOUS, collector, event, profile_process, publish, ref, wait_for

from svc_common.conditions import Money, to_proto
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import errors_pb2, types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pb_grpc
from svc_profile.known import FEATURES

FEATURE, ATTRIBUTE, TAG, EVENT = (
    C.FieldRef.SOURCE_FEATURE,
    C.FieldRef.SOURCE_ATTRIBUTE,
    C.FieldRef.SOURCE_TAG,
    C.FieldRef.SOURCE_EVENT,
)


class Stubs:
    def __init__(self, address: str, collect_address: str) -> None:
        channel = grpc.insecure_channel(address)
        self.profiles = pb_grpc.ProfileServiceStub(channel)
        self.tags = pb_grpc.TagServiceStub(channel)
        self.segments = pb_grpc.SegmentServiceStub(channel)
        self.analytics = pb_grpc.AnalyticsServiceStub(channel)
        self.collect = collect_address


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stubs]:
    work = tmp_path_factory.mktemp("fixprof15")
    with collector(work) as collect, profile_process(work, collect.address) as profile:
        yield Stubs(profile.address, collect.address)


def refused(call: Any, request: Any) -> tuple[grpc.StatusCode, str, list[str], str]:
    """(status, ErrorInfo reason, BadRequest fields, message) of a call that must fail."""
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=30)
    status = rpc_status.from_call(caught.value)
    reason, fields = "", []
    for item in status.details if status is not None else ():
        if item.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            item.Unpack(info)
            reason = info.reason
        elif item.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            item.Unpack(bad)
            fields = [v.field for v in bad.field_violations]
    return caught.value.code(), reason, fields, caught.value.details() or ""


def compare(source: int, name: str, value: Any, node_id: str = "box-1") -> C.Condition:
    return C.Condition(
        node_id=node_id,
        comparison=C.Comparison(
            field=C.FieldRef(source=source, name=name), operator=C.OPERATOR_GT, value=to_proto(value)
        ),
    )


def has_tag(name: str) -> C.Condition:
    return C.Condition(node_id="box-2", has_tag=C.TagPresence(tag_name=name))


def new_tag(svc: Stubs, name: str, condition: C.Condition) -> Any:
    request = pb.CreateTagDefinitionRequest(definition=pb.TagDefinition(name=name, condition=condition))
    return svc.tags.CreateTagDefinition(request, timeout=30)


def bad_tag(svc: Stubs, name: str, condition: C.Condition) -> tuple[grpc.StatusCode, str, list[str], str]:
    request = pb.CreateTagDefinitionRequest(definition=pb.TagDefinition(name=name, condition=condition))
    return refused(svc.tags.CreateTagDefinition, request)


# -- finding 1: conditions that could never match --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("feature", "why"),
    [
        ("count.fund_view.401d", "N from 1 to 400"),
        ("count.fund_view.0d", "N from 1 to 400"),
        ("count.fund_view.1000d", "N from 1 to 400"),
        ("turnover_fen.401d", "N from 1 to 400"),
        ("evnts_total", "events_total"),
        ("views.Stock", "lower case"),
        ("risk_views.R6", "R1 to risk_views.R5"),
        ("fund_pref.gold", "money_market"),
    ],
)
def test_a_feature_svc_profile_never_computes_is_refused_naming_the_node(svc: Stubs, feature: str, why: str) -> None:
    code, reason, fields, message = bad_tag(svc, "never", compare(FEATURE, feature, 1))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CONDITION")
    assert fields == ["definition.condition.comparison.field.name"]
    assert "'box-1'" in message and f"unknown feature {feature!r}" in message and why in message
    segment = pb.Segment(segment_id="never", condition=compare(FEATURE, feature, 1))
    code, _, fields, _ = refused(svc.segments.CreateSegment, pb.CreateSegmentRequest(segment=segment))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and fields == ["segment.condition.comparison.field.name"]


def test_features_svc_profile_computes_are_accepted_and_every_profile_feature_is_known(svc: Stubs) -> None:
    for i, feature in enumerate(
        ["count.fund_view.400d", "count.fund_view.1d", "events_total", "turnover_fen.30d", "fund_pref.bond"]
    ):
        new_tag(svc, f"ok_feature_{i}", compare(FEATURE, feature, 0))
    # Whatever a profile shows under features is a name a condition may read (the catalog follows features.py).
    trade = event("trade_filled", "fx_c1", amount_fen=Money(100), product_risk_level=3, session_id="s1")
    view = event("fund_view", "fx_c1", product_category="fund", fund_type="bond", product_risk_level="R2")
    publish(svc.collect, [trade, view, event("page_view", "fx_c1", session_id="s2")])
    request = pb.GetProfileRequest(user=ref("fx_c1"), parts=["features"])

    def profile() -> Any:
        try:
            found = svc.profiles.GetProfile(request, timeout=30).profile
        except grpc.RpcError:
            return None
        return found if "views.fund.bond" in found.features and "trade_count" in found.features else None

    features = set(wait_for(profile).features)
    assert {"events_total", "sessions", "trade_count", "count.fund_view.7d", "risk_views.R2"} <= features
    assert [name for name in sorted(features) if name not in FEATURES] == []


def test_has_tag_and_tag_fields_must_name_a_defined_tag(svc: Stubs) -> None:
    code, reason, fields, message = bad_tag(svc, "ghost", has_tag("no_such_tag"))
    assert (code, reason, fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_CONDITION",
        ["definition.condition.has_tag.tag_name"],
    )
    assert "'box-2'" in message and "unknown tag 'no_such_tag'" in message
    segment = pb.Segment(segment_id="ghost", condition=compare(TAG, "no_such_tag", 1))
    code, _, fields, message = refused(svc.segments.CreateSegment, pb.CreateSegmentRequest(segment=segment))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "unknown tag 'no_such_tag'" in message
    assert fields == ["segment.condition.comparison.field.name"]
    new_tag(svc, "real_tag", compare(ATTRIBUTE, "age", 30))
    new_tag(svc, "reads_real_tag", has_tag("real_tag"))
    svc.segments.CreateSegment(
        pb.CreateSegmentRequest(segment=pb.Segment(segment_id="reads_pack_tag", condition=has_tag("lifecycle_stage"))),
        timeout=30,
    )
    # A tag reading itself is still reported as a cycle, not as an unknown tag.
    code, _, _, message = bad_tag(svc, "selfish", has_tag("selfish"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "cycle" in message


def test_attributes_stay_open_ended(svc: Stubs) -> None:
    """Declared attributes come from the broker's systems under any lower_snake_case name: not checked."""
    new_tag(svc, "any_attribute", compare(ATTRIBUTE, "finacial_assets_fen", 1))


# -- finding 3: unknown enum numbers -----------------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["value_type", "sensitivity"])
def test_a_tag_definition_with_an_unknown_enum_number_is_refused(svc: Stubs, field: str) -> None:
    definition = pb.TagDefinition(name=f"enum_{field}", external=pb.ExternalTag(writer="x"), **{field: 99})
    code, reason, fields, message = refused(
        svc.tags.CreateTagDefinition, pb.CreateTagDefinitionRequest(definition=definition)
    )
    assert (code, reason, fields) == (grpc.StatusCode.INVALID_ARGUMENT, "VALUE_NOT_ALLOWED", [f"definition.{field}"])
    assert "99" in message
    known = pb.TagDefinition(name=f"enum_{field}", external=pb.ExternalTag(writer="x"), **{field: 1})
    svc.tags.CreateTagDefinition(pb.CreateTagDefinitionRequest(definition=known), timeout=30)
    definition.version = 1
    code, _, fields, _ = refused(
        svc.tags.UpdateTagDefinition, pb.UpdateTagDefinitionRequest(definition=definition, expected_version=1)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and fields == [f"definition.{field}"]


def test_compute_paths_refuses_an_unknown_direction(svc: Stubs) -> None:
    code, reason, fields, _ = refused(
        svc.analytics.ComputePaths, pb.ComputePathsRequest(screen="home", depth=1, direction=99)
    )
    assert (code, reason, fields) == (grpc.StatusCode.INVALID_ARGUMENT, "VALUE_NOT_ALLOWED", ["direction"])
    for direction in (0, 1, 2):  # unset is NEXT
        svc.analytics.ComputePaths(pb.ComputePathsRequest(screen="home", depth=1, direction=direction), timeout=30)


@pytest.mark.parametrize("value", [types_pb2.Value(int_value=99), types_pb2.Value(int_value=types_pb2.CHANNEL_APP)])
def test_an_event_filter_comparing_channel_with_a_number_is_refused(svc: Stubs, value: types_pb2.Value) -> None:
    on_channel = C.Condition(
        comparison=C.Comparison(field=C.FieldRef(source=EVENT, name="channel"), operator=C.OPERATOR_EQ, value=value)
    )
    counted = C.Condition(
        event_count=C.EventCount(event_type="page_view", min_count=1, window_seconds=86_400, filter=on_channel)
    )
    segment = pb.Segment(segment_id=f"by_channel_{value.int_value}", condition=counted)
    code, reason, fields, message = refused(svc.segments.CreateSegment, pb.CreateSegmentRequest(segment=segment))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CONDITION")
    assert fields == ["segment.condition.event_count.filter.comparison.value"] and "by its name" in message
    steps = [pb.FunnelStep(event_type="page_view", filter=on_channel), pb.FunnelStep(event_type="login")]
    code, _, fields, _ = refused(
        svc.analytics.ComputeFunnel, pb.ComputeFunnelRequest(steps=steps, conversion_window_seconds=3600)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and fields == ["steps[0].filter.comparison.value"]
    segment.condition.event_count.filter.comparison.value.CopyFrom(types_pb2.Value(string_value="app"))
    svc.segments.CreateSegment(pb.CreateSegmentRequest(segment=segment), timeout=30)


# -- finding 8: risk_rating is C1-C5 ------------------------------------------------------------------------------
def test_a_risk_rating_other_than_c1_to_c5_is_refused(svc: Stubs) -> None:
    def upsert(user: str, value: types_pb2.Value) -> pb.UpsertAttributesRequest:
        return pb.UpsertAttributesRequest(user=ref(user), attributes={"risk_rating": value})

    for value, reason in [
        (types_pb2.Value(string_value="C9"), "VALUE_NOT_ALLOWED"),
        (types_pb2.Value(string_value="C0"), "VALUE_NOT_ALLOWED"),
        (types_pb2.Value(string_value=" C3"), "VALUE_NOT_ALLOWED"),
        (types_pb2.Value(string_value="Ｃ３"), "VALUE_NOT_ALLOWED"),  # full width: the finance pack reads ASCII
        (types_pb2.Value(string_value="R3"), "VALUE_NOT_ALLOWED"),
        (types_pb2.Value(int_value=3), "PROPERTY_TYPE_MISMATCH"),
    ]:
        code, got, fields, _ = refused(svc.profiles.UpsertAttributes, upsert("fx_r1", value))
        assert (code, got, fields) == (grpc.StatusCode.INVALID_ARGUMENT, reason, ["attributes[risk_rating]"]), value
    reply = svc.profiles.UpsertAttributes(upsert("fx_r1", types_pb2.Value(string_value="c4")), timeout=30)
    assert reply.profile.attributes["risk_rating"].string_value == "C4"  # stored as conditions compare it

    rows = [
        upsert("fx_r2", types_pb2.Value(string_value="C2")),
        upsert("fx_r3", types_pb2.Value(string_value="C9")),
        upsert("fx_r4", types_pb2.Value(string_value="C5")),
    ]
    reply = svc.profiles.ImportAttributes(iter([pb.ImportAttributesRequest(rows=rows)]), timeout=30)
    assert [(e.row_index, e.reason, e.field) for e in reply.errors] == [
        (1, errors_pb2.ERROR_REASON_VALUE_NOT_ALLOWED, "rows[1].attributes[risk_rating]")
    ]
    assert reply.profiles_created == 2
    code, _, _, _ = refused(svc.profiles.GetProfile, pb.GetProfileRequest(user=ref("fx_r3")))
    assert code == grpc.StatusCode.NOT_FOUND


# -- finding 4: LinkIdentities keeps one lifecycle story ---------------------------------------------------------
def history(svc: Stubs, user: types_pb2.UserRef) -> list[tuple[str, str]]:
    reply = svc.profiles.ListLifecycleHistory(pb.ListLifecycleHistoryRequest(user=user), timeout=30)
    name = pb.LifecycleStage.Name
    return [(name(t.from_stage)[16:], name(t.to_stage)[16:]) for t in reversed(reply.transitions)]  # oldest first


def consumed(svc: Stubs, device: str) -> bool:
    try:
        return history(svc, ref(device, ANONYMOUS)) == [("UNSPECIFIED", "PROSPECT")]
    except grpc.RpcError:  # not consumed yet
        return False


def test_link_identities_keeps_the_customers_story_and_the_devices_earlier_past(svc: Stubs) -> None:
    # A device browsing before the customer existed: its past is the person's, then PROSPECT → NEW.
    publish(svc.collect, [event("page_view", anonymous_id="fx_dev_old", screen="home")])
    wait_for(lambda: consumed(svc, "fx_dev_old"))
    time.sleep(0.01)
    svc.profiles.UpsertAttributes(pb.UpsertAttributesRequest(user=ref("fx_l1")), timeout=30)
    assert history(svc, ref("fx_l1")) == [("UNSPECIFIED", "NEW")]
    link = pb.LinkIdentitiesRequest(user=ref("fx_l1"), identity=types_pb2.Identity(type=ANONYMOUS, value="fx_dev_old"))
    svc.profiles.LinkIdentities(link, timeout=30)
    assert history(svc, ref("fx_l1")) == [("UNSPECIFIED", "PROSPECT"), ("PROSPECT", "NEW")]

    # A device first seen after the customer: its own entry is not the person's (no UNSPECIFIED → PROSPECT at the end).
    publish(svc.collect, [event("page_view", anonymous_id="fx_dev_new", screen="home")])
    wait_for(lambda: consumed(svc, "fx_dev_new"))
    link.identity.value = "fx_dev_new"
    svc.profiles.LinkIdentities(link, timeout=30)
    assert history(svc, ref("fx_l1")) == [("UNSPECIFIED", "PROSPECT"), ("PROSPECT", "NEW")]
    profile = svc.profiles.GetProfile(pb.GetProfileRequest(user=ref("fx_dev_new", ANONYMOUS)), timeout=30).profile
    assert profile.lifecycle_stage == pb.LIFECYCLE_STAGE_NEW
