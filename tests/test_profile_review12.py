"""svc_profile's part of the integrator / compliance-auditor review (/tmp/report-review.md, numbered as there):
the audit record names the customers a call touched (F1), NaN/infinity and over-long ids and strings are refused
(F2, F6), a CreateSegment whose computation fails leaves nothing behind (F2), row errors carry a reason (R1), tag
values match their definition's type (R2), amounts are numbers (R3), one SetStaticMembers call sets one segment
(R4), analytics refuse an inverted time range (R5), an erasure's exits say so (R8), and a process with nothing to
follow says so at start (F14). Each test fails on the code before its fix."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from audit_helpers import ListAuditSink
from google.rpc import error_details_pb2
from grpc import aio
from grpc_status import rpc_status
from profile_helpers import ANONYMOUS, CUSTOMER, profile_app, profile_settings, ref
from server_helpers import served_at

from svc_common.conditions import Money, to_proto
from svc_common.errors import Unavailable
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import errors_pb2, event_pb2, types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pb_grpc
from svc_common.runtime import ServiceRuntime
from svc_profile.model import now_us
from svc_profile.server import SegmentServicer, build_spec
from svc_profile.store import SCHEMA

MODEL = types_pb2.Provenance(source=types_pb2.Provenance.SOURCE_MODEL, writer="model:m", writer_version="1")
R = errors_pb2


@dataclass
class Harness:
    channel: aio.Channel
    audit: ListAuditSink

    @property
    def profiles(self) -> pb_grpc.ProfileServiceStub:
        return pb_grpc.ProfileServiceStub(self.channel)

    @property
    def tags(self) -> pb_grpc.TagServiceStub:
        return pb_grpc.TagServiceStub(self.channel)

    @property
    def segments(self) -> pb_grpc.SegmentServiceStub:
        return pb_grpc.SegmentServiceStub(self.channel)

    @property
    def analytics(self) -> pb_grpc.AnalyticsServiceStub:
        return pb_grpc.AnalyticsServiceStub(self.channel)

    def customers(self, method: str) -> list[tuple[str, ...]]:
        """The customers named by the audit records of ``method`` (e.g. ``GetProfile``), oldest first."""
        return self.audit.customers_of(method)


@asynccontextmanager
async def serving(tmp_path: Path, database_url: str) -> AsyncIterator[Harness]:
    """svc_profile in this process (as ``qiming serve profile`` builds it, no collector), every call audited."""
    settings = profile_settings(tmp_path, database_url, grpc_host="127.0.0.1", grpc_port=0)
    runtime = await asyncio.to_thread(ServiceRuntime.open, SCHEMA, settings)
    audit = ListAuditSink()
    try:
        async with served_at(build_spec(runtime), settings, hooks=True, audit_sink=audit) as (channel, _):
            yield Harness(channel=channel, audit=audit)
    finally:
        runtime.database.dispose()


async def refused(call: Any, request: Any) -> tuple[grpc.StatusCode, str, dict[str, str], str]:
    """(status, ErrorInfo reason, BadRequest field → description, message) of a call that must fail."""
    with pytest.raises(aio.AioRpcError) as caught:
        await call(request, timeout=30)
    error = caught.value
    status = rpc_status.from_call(error)
    assert status is not None, error
    reason, fields = "", {}
    for item in status.details:
        if item.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            item.Unpack(info)
            reason = info.reason
        elif item.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            item.Unpack(bad)
            fields = {v.field: v.description for v in bad.field_violations}
    return error.code(), reason, fields, error.details() or ""


def upsert(user: str, id_type: int = CUSTOMER, **attributes: Any) -> pb.UpsertAttributesRequest:
    return pb.UpsertAttributesRequest(
        user=ref(user, id_type), attributes={k: to_proto(v) for k, v in attributes.items()}
    )


async def stream(*messages: Any) -> AsyncIterator[Any]:
    for message in messages:
        yield message


# F1: every call that reads or changes a known customer's data names the customer in its audit record.
def test_the_audit_record_names_the_customers_a_call_touched(tmp_path: Path, database_url: str) -> None:
    async def scenario() -> None:
        async with serving(tmp_path, database_url) as h:
            profiles, tags, segments = h.profiles, h.tags, h.segments
            await profiles.UpsertAttributes(upsert("c2001", risk_rating="C3"), timeout=30)
            await profiles.UpsertAttributes(upsert("c2002", risk_rating="C2"), timeout=30)
            device = types_pb2.Identity(type=ANONYMOUS, value="dev-2001")
            await profiles.LinkIdentities(pb.LinkIdentitiesRequest(user=ref("c2001"), identity=device), timeout=30)
            # Addressed by a device id: the resolved person's customer number is named.
            await profiles.GetProfile(pb.GetProfileRequest(user=ref("dev-2001", ANONYMOUS)), timeout=30)
            await profiles.GetProfile(pb.GetProfileRequest(user=ref("c2001"), parts=["attributes"]), timeout=30)
            await profiles.BatchGetProfiles(
                pb.BatchGetProfilesRequest(users=[ref("c2001"), ref("c2002"), ref("c404")]), timeout=30
            )
            await profiles.ListIdentities(pb.ListIdentitiesRequest(user=ref("dev-2001", ANONYMOUS)), timeout=30)
            await profiles.ListLifecycleHistory(pb.ListLifecycleHistoryRequest(user=ref("c2001")), timeout=30)
            rows = [
                pb.UpsertAttributesRequest(user=ref("c2002"), attributes={"branch": to_proto("SH")}),
                pb.UpsertAttributesRequest(user=ref("c2003"), attributes={"branch": to_proto("BJ")}),
                pb.UpsertAttributesRequest(user=ref("guest"), attributes={"branch": to_proto("BJ")}),  # refused
            ]
            await profiles.ImportAttributes(stream(pb.ImportAttributesRequest(rows=rows)), timeout=30)

            score = pb.TagDefinition(
                name="score", value_type=types_pb2.VALUE_TYPE_DOUBLE, external=pb.ExternalTag(writer="m")
            )
            await tags.CreateTagDefinition(pb.CreateTagDefinitionRequest(definition=score), timeout=30)
            writes = [
                pb.TagWrite(user=ref("dev-2001", ANONYMOUS), tag_name="score", value=to_proto(0.5)),
                pb.TagWrite(user=ref("c2002"), tag_name="score", value=to_proto(0.7)),
                pb.TagWrite(user=ref("c404"), tag_name="score", value=to_proto(0.7)),  # nobody: not written
            ]
            await tags.WriteTags(pb.WriteTagsRequest(writes=writes, provenance=MODEL), timeout=30)
            streamed = pb.WriteTagsStreamRequest(writes=writes[1:2], provenance=MODEL)
            await tags.WriteTagsStream(stream(streamed), timeout=30)
            await tags.ListUserTags(pb.ListUserTagsRequest(user=ref("c2002")), timeout=30)

            static = pb.Segment(segment_id="vip", static_list=pb.StaticSegment(source="crm"))
            await segments.CreateSegment(pb.CreateSegmentRequest(segment=static), timeout=30)
            members = pb.SetStaticMembersRequest(segment_id="vip", users=[ref("dev-2001", ANONYMOUS), ref("c404")])
            await segments.SetStaticMembers(stream(members), timeout=30)
            await segments.CheckMembership(pb.CheckMembershipRequest(segment_id="vip", user=ref("c2002")), timeout=30)

            unlinked = await profiles.UnlinkIdentity(pb.UnlinkIdentityRequest(identity=device), timeout=30)
            assert unlinked.profile_id
            await profiles.DeleteProfile(pb.DeleteProfileRequest(user=ref("c2001"), reason="PIPL 2026-001"), timeout=30)
            code, *_ = await refused(profiles.GetProfile, pb.GetProfileRequest(user=ref("c2001")))
            assert code == grpc.StatusCode.NOT_FOUND

            assert h.customers("UpsertAttributes") == [("c2001",), ("c2002",)]
            assert h.customers("LinkIdentities") == [("c2001",)]
            assert h.customers("GetProfile") == [("c2001",), ("c2001",), ()]  # the last: nobody found
            assert h.customers("BatchGetProfiles") == [("c2001", "c2002")]
            assert h.customers("ListIdentities") == [("c2001",)]
            assert h.customers("ListLifecycleHistory") == [("c2001",)]
            assert h.customers("ImportAttributes") == [("c2002", "c2003")]
            assert h.customers("WriteTags") == [("c2001", "c2002")]
            assert h.customers("WriteTagsStream") == [("c2002",)]
            assert h.customers("ListUserTags") == [("c2002",)]
            assert h.customers("SetStaticMembers") == [("c2001",)]
            assert h.customers("CheckMembership") == [("c2002",)]
            assert h.customers("UnlinkIdentity") == [("c2001",)]  # the device is taken from c2001
            assert h.customers("DeleteProfile") == [("c2001",)]  # named before the person is gone
            # Calls about definitions name nobody.
            assert h.customers("CreateSegment") == [()] and h.customers("CreateTagDefinition") == [()]

    asyncio.run(scenario())


# F2 and F6: NaN, infinity, over-long ids and strings are INVALID_ARGUMENT naming the field.
def test_non_finite_numbers_and_over_long_ids_and_strings_are_refused(tmp_path: Path, database_url: str) -> None:
    async def scenario() -> None:
        async with serving(tmp_path, database_url) as h:
            profiles = h.profiles
            for number in (float("nan"), float("inf"), float("-inf")):
                code, reason, fields, message = await refused(profiles.UpsertAttributes, upsert("c1", score=number))
                assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "VALUE_NOT_ALLOWED")
                assert list(fields) == ["attributes[score]"] and "NaN and infinity are refused" in message
            code, reason, fields, _ = await refused(profiles.UpsertAttributes, upsert("c" * 129, branch="SH"))
            assert (code, reason, list(fields)) == (grpc.StatusCode.INVALID_ARGUMENT, "STRING_TOO_LONG", ["user.value"])
            assert "128" in fields["user.value"]
            for request in (
                pb.GetProfileRequest(user=ref("d" * 129, ANONYMOUS)),
                pb.LinkIdentitiesRequest(user=ref("c1"), identity=types_pb2.Identity(type=ANONYMOUS, value="d" * 5000)),
            ):
                call = profiles.GetProfile if isinstance(request, pb.GetProfileRequest) else profiles.LinkIdentities
                code, reason, fields, _ = await refused(call, request)
                assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "STRING_TOO_LONG"), fields
                assert list(fields) in (["user.value"], ["identity.value"])
            code, reason, fields, _ = await refused(profiles.UpsertAttributes, upsert("c1", note="x" * 8193))
            assert (code, reason, list(fields)) == (
                grpc.StatusCode.INVALID_ARGUMENT,
                "STRING_TOO_LONG",
                ["attributes[note]"],
            )
            assert "8192" in fields["attributes[note]"]
            code, reason, fields, _ = await refused(
                profiles.UpsertAttributes,
                pb.UpsertAttributesRequest(
                    user=ref("c1"),
                    attributes={"labels": types_pb2.Value(string_list_value=types_pb2.StringList(values=["y" * 9000]))},
                ),
            )
            assert (reason, list(fields)) == ("STRING_TOO_LONG", ["attributes[labels]"])
            # The limits themselves are taken, and nothing was stored by the refused calls.
            reply = await profiles.UpsertAttributes(upsert("c" * 128, note="x" * 8192), timeout=30)
            assert reply.created and reply.profile.attributes["note"].string_value == "x" * 8192
            code, *_ = await refused(profiles.GetProfile, pb.GetProfileRequest(user=ref("c1")))
            assert code == grpc.StatusCode.NOT_FOUND

            # ImportAttributes: a row error each, the good row written.
            rows = [
                pb.UpsertAttributesRequest(user=ref("c2"), attributes={"score": to_proto(float("nan"))}),
                pb.UpsertAttributesRequest(user=ref("c3"), attributes={"score": to_proto(0.5)}),
                pb.UpsertAttributesRequest(user=ref("c4"), attributes={"note": to_proto("z" * 8193)}),
            ]
            result = await profiles.ImportAttributes(stream(pb.ImportAttributesRequest(rows=rows)), timeout=30)
            assert result.profiles_created == 1
            assert [(e.row_index, e.reason, e.field) for e in result.errors] == [
                (0, R.ERROR_REASON_VALUE_NOT_ALLOWED, "rows[0].attributes[score]"),
                (2, R.ERROR_REASON_STRING_TOO_LONG, "rows[2].attributes[note]"),
            ]
            assert "NaN and infinity are refused" in result.errors[0].message

            # WriteTags: a NaN score is a row error, not a stored NaN.
            score = pb.TagDefinition(
                name="score", value_type=types_pb2.VALUE_TYPE_DOUBLE, external=pb.ExternalTag(writer="m")
            )
            await h.tags.CreateTagDefinition(pb.CreateTagDefinitionRequest(definition=score), timeout=30)
            writes = [
                pb.TagWrite(user=ref("c3"), tag_name="score", value=to_proto(float("nan"))),
                pb.TagWrite(user=ref("c3"), tag_name="score", value=to_proto(float("-inf"))),
            ]
            reply = await h.tags.WriteTags(pb.WriteTagsRequest(writes=writes, provenance=MODEL), timeout=30)
            assert reply.written_count == 0
            assert [(e.row_index, e.reason, e.field) for e in reply.errors] == [
                (0, R.ERROR_REASON_VALUE_NOT_ALLOWED, "writes[0].value"),
                (1, R.ERROR_REASON_VALUE_NOT_ALLOWED, "writes[1].value"),
            ]
            listed = await h.tags.ListUserTags(pb.ListUserTagsRequest(user=ref("c3")), timeout=30)
            assert "score" not in {t.name for t in listed.tags}

    asyncio.run(scenario())


# F2: a CreateSegment whose first computation fails within the call leaves no segment behind.
def test_a_create_segment_whose_computation_fails_can_be_retried(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        person = app.profiles.upsert_attributes(ref("c1"), {"branch": to_proto("SH01")}, [], "crm", frozenset())[0]
        person = person.profile_id
        servicer = SegmentServicer(app)
        branch = C.FieldRef(source=C.FieldRef.SOURCE_ATTRIBUTE, name="branch")
        condition = C.Condition(comparison=C.Comparison(field=branch, operator=C.OPERATOR_EQ, value=to_proto("SH01")))
        request = pb.CreateSegmentRequest(segment=pb.Segment(segment_id="branch_sh", condition=condition))
        recompute, calls = app.segments.recompute, []

        def failing_once(*args: Any, **kwargs: Any) -> Any:
            calls.append(args)
            if len(calls) == 1:
                # Meanwhile the log consumer evaluated the new segment for the person: they entered it.
                with app.core.writing() as conn:
                    app.core.engine.refresh(conn, [person], now_us(), cause="event")
                raise Unavailable("the service's database is unavailable; retry with backoff")
            return recompute(*args, **kwargs)

        app.segments.recompute = failing_once  # type: ignore[method-assign]
        with pytest.raises(Unavailable):
            asyncio.run(servicer.CreateSegment(request, None))
        assert "branch_sh" not in app.core.engine.segments
        assert [s.segment_id for s in app.definitions.list_segments("", 100, True)] == []
        # The membership given meanwhile ended (svc_campaign saw the entry). Its row stays, a non-member, so that the
        # events of the segment created again take new ids (session 22: deleted, they took the first ones' ids).
        changes = [(e.event_type, e.properties["cause"].string_value) for e in outbox(app)]
        assert changes == [("$segment_entered", "event"), ("$segment_exited", "archived")]
        with app.core.database.connection() as conn:
            (row,) = app.core.store.load_members(conn, [person])[person].values()
            assert (row.is_member, row.seq) == (False, 2)

        created = asyncio.run(servicer.CreateSegment(request, None))  # the retry the message asks for
        assert created.segment.version == 1 and created.segment.size == 1 and len(calls) == 2
        ids = [e.event_id for e in outbox(app)]
        assert len(ids) == len(set(ids)) == 3  # entered, exited, entered again: three events, three ids


# R1, R2: row errors carry a reason and a field path naming the row's field; a tag value matches its type.
def test_row_errors_carry_a_reason_and_tag_values_match_their_type(tmp_path: Path, database_url: str) -> None:
    async def scenario() -> None:
        async with serving(tmp_path, database_url) as h:
            await h.profiles.UpsertAttributes(upsert("c1", branch="SH"), timeout=30)
            rows = [
                pb.UpsertAttributesRequest(user=ref("c1"), attributes={"branch": to_proto("BJ")}),
                pb.UpsertAttributesRequest(user=ref("guest"), attributes={"branch": to_proto("BJ")}),
                pb.UpsertAttributesRequest(user=ref("c2"), attributes={"Bad Name": to_proto("x")}),
                pb.UpsertAttributesRequest(user=ref("c3"), attributes={"branch": types_pb2.Value()}),
                pb.UpsertAttributesRequest(user=ref("no-such-uuid", types_pb2.ID_TYPE_CANONICAL)),
                pb.UpsertAttributesRequest(user=types_pb2.UserRef(value="c4")),
            ]
            result = await h.profiles.ImportAttributes(stream(pb.ImportAttributesRequest(rows=rows)), timeout=30)
            assert [(e.row_index, e.reason, e.field) for e in result.errors] == [
                (1, R.ERROR_REASON_PLACEHOLDER_ID, "rows[1].user.value"),
                (2, R.ERROR_REASON_INVALID_NAME, "rows[2].attributes[Bad Name]"),
                (3, R.ERROR_REASON_MISSING_FIELD, "rows[3].attributes[branch]"),
                (4, R.ERROR_REASON_NOT_FOUND, "rows[4].user"),
                (5, R.ERROR_REASON_MISSING_FIELD, "rows[5].user.type"),
            ]

            for name, value_type in (
                ("propensity", types_pb2.VALUE_TYPE_DOUBLE),
                ("tier", types_pb2.VALUE_TYPE_STRING),
            ):
                definition = pb.TagDefinition(name=name, value_type=value_type, external=pb.ExternalTag(writer="m"))
                await h.tags.CreateTagDefinition(pb.CreateTagDefinitionRequest(definition=definition), timeout=30)
            rule = pb.TagDefinition(name="is_sh", condition=C.Condition(has_tag=C.TagPresence(tag_name="tier")))
            await h.tags.CreateTagDefinition(pb.CreateTagDefinitionRequest(definition=rule), timeout=30)
            writes = [
                pb.TagWrite(user=ref("c1"), tag_name="propensity", value=to_proto("high")),  # a string: refused
                pb.TagWrite(user=ref("c1"), tag_name="propensity", value=to_proto(1)),  # a whole number: a score
                pb.TagWrite(user=ref("c1"), tag_name="tier", value=to_proto(0.5)),  # a number: refused
                pb.TagWrite(user=ref("guest"), tag_name="tier", value=to_proto("gold")),
                pb.TagWrite(user=ref("c1"), tag_name="nope", value=to_proto("gold")),
                pb.TagWrite(user=ref("c1"), tag_name="is_sh", value=to_proto(True)),
                pb.TagWrite(user=ref("c404"), tag_name="tier", value=to_proto("gold")),
                pb.TagWrite(user=ref("c1"), tag_name="tier"),
                pb.TagWrite(user=ref("c1"), tag_name="tier", value=to_proto("gold")),
            ]
            reply = await h.tags.WriteTags(pb.WriteTagsRequest(writes=writes, provenance=MODEL), timeout=30)
            assert reply.written_count == 2
            assert [(e.row_index, e.reason, e.field) for e in reply.errors] == [
                (0, R.ERROR_REASON_PROPERTY_TYPE_MISMATCH, "writes[0].value"),
                (2, R.ERROR_REASON_PROPERTY_TYPE_MISMATCH, "writes[2].value"),
                (3, R.ERROR_REASON_PLACEHOLDER_ID, "writes[3].user.value"),
                (4, R.ERROR_REASON_NOT_FOUND, "writes[4].tag_name"),
                (5, R.ERROR_REASON_VALUE_NOT_ALLOWED, "writes[5].tag_name"),
                (6, R.ERROR_REASON_NOT_FOUND, "writes[6].user"),
                (7, R.ERROR_REASON_MISSING_FIELD, "writes[7].value"),
            ]
            assert "VALUE_TYPE_DOUBLE" in reply.errors[0].message
            listed = await h.tags.ListUserTags(pb.ListUserTagsRequest(user=ref("c1")), timeout=30)
            values = {t.name: t.value for t in listed.tags}
            assert values["propensity"].int_value == 1 and values["tier"].string_value == "gold"

    asyncio.run(scenario())


# R3, R4, R5.
def test_amounts_one_segment_per_static_call_and_time_ranges(tmp_path: Path, database_url: str) -> None:
    async def scenario() -> None:
        async with serving(tmp_path, database_url) as h:
            code, reason, fields, _ = await refused(h.profiles.UpsertAttributes, upsert("c1", aum_fen="lots"))
            assert (code, reason, list(fields)) == (
                grpc.StatusCode.INVALID_ARGUMENT,
                "PROPERTY_TYPE_MISMATCH",
                ["attributes[aum_fen]"],
            )
            reply = await h.profiles.UpsertAttributes(
                upsert("c1", aum_fen=Money(900_000_000), fund_holding_bond_fen=1_000), timeout=30
            )
            assert reply.created

            for segment_id in ("vip_list", "fund_fans"):
                static = pb.Segment(segment_id=segment_id, static_list=pb.StaticSegment(source="crm"))
                await h.segments.CreateSegment(pb.CreateSegmentRequest(segment=static), timeout=30)
            code, _, fields, _ = await refused(
                h.segments.SetStaticMembers,
                stream(
                    pb.SetStaticMembersRequest(segment_id="vip_list", users=[ref("c1")]),
                    pb.SetStaticMembersRequest(segment_id="fund_fans", users=[ref("c1")]),
                ),
            )
            assert code == grpc.StatusCode.INVALID_ARGUMENT and list(fields) == ["segment_id"]
            membership = await h.segments.CheckMembership(
                pb.CheckMembershipRequest(segment_id="vip_list", user=ref("c1")), timeout=30
            )
            assert not membership.member
            # Later messages may leave segment_id empty or repeat it.
            sized = await h.segments.SetStaticMembers(
                stream(
                    pb.SetStaticMembersRequest(segment_id="vip_list", users=[ref("c1")]),
                    pb.SetStaticMembersRequest(users=[ref("c404")]),
                    pb.SetStaticMembersRequest(segment_id="vip_list"),
                ),
                timeout=30,
            )
            assert sized.member_count == 1 and [u.value for u in sized.not_found] == ["c404"]

            span = types_pb2.TimeRange()
            span.start.FromSeconds(2_000_000_000)
            span.end.FromSeconds(1_000_000_000)
            steps = [pb.FunnelStep(event_type="login"), pb.FunnelStep(event_type="trade_filled")]
            for call, request in (
                (
                    h.analytics.ComputeFunnel,
                    pb.ComputeFunnelRequest(steps=steps, conversion_window_seconds=60, time_range=span),
                ),
                (h.analytics.ComputePaths, pb.ComputePathsRequest(screen="home", time_range=span)),
                (h.analytics.ComputeLifecycleDistribution, pb.ComputeLifecycleDistributionRequest(time_range=span)),
            ):
                code, _, fields, _ = await refused(call, request)
                assert code == grpc.StatusCode.INVALID_ARGUMENT and list(fields) == ["time_range.end"]
            span.end.FromSeconds(2_000_000_000)  # an empty range is no error
            await h.analytics.ComputePaths(pb.ComputePathsRequest(screen="home", time_range=span), timeout=30)

    asyncio.run(scenario())


def outbox(app: Any) -> list[event_pb2.Event]:
    with app.core.database.connection() as conn:
        return [event_pb2.Event.FromString(row.body) for row in app.core.store.unsent(conn, 1000)]


# R8: an erasure's $segment_exited says it was an erasure.
def test_an_erasure_ends_memberships_with_cause_erased(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        app.profiles.upsert_attributes(ref("c6001"), {"branch": to_proto("SH")}, [], "crm", frozenset())
        app.definitions.create_segment(pb.Segment(segment_id="vip", static_list=pb.StaticSegment(source="crm")))
        app.segments.set_static("vip", [app.core.policy.ref(CUSTOMER, "c6001", "user")], False)
        before = {e.event_id for e in outbox(app)}
        app.profiles.delete(ref("c6001"), "PIPL ticket 2026-003")
        exits = [e for e in outbox(app) if e.event_id not in before and e.event_type == "$segment_exited"]
        assert [(e.user_id, e.properties["cause"].string_value) for e in exits] == [("c6001", "erased")]


# F14: a profile process with no svc_collect to follow says so once at start.
def test_a_process_with_nothing_to_follow_warns_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with serving(tmp_path, f"sqlite:///{tmp_path / 'p.db'}"):
            pass

    with caplog.at_level(logging.WARNING, logger="qiming.profile"):
        asyncio.run(scenario())
    warnings = [r for r in caplog.records if r.name == "qiming.profile" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "collect_address" in warnings[0].getMessage()
    caplog.clear()
    from svc_profile.server import warn_if_unconnected

    with caplog.at_level(logging.WARNING, logger="qiming.profile"):
        warn_if_unconnected(profile_settings(tmp_path, collect_address="127.0.0.1:50051"))
    assert not caplog.records
