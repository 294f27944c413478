"""Acceptance walk of svc_profile, session 17 (minor findings m1-m4): a builtin or bands tag's ``value_type`` says
what its values are (taken from the formula, or refused when it contradicts them; stored definitions of an older
release still load), ``ExternalTag.writer`` is described as an informational owner, an archived segment refuses
UpdateSegment / RecomputeSegment with FAILED_PRECONDITION SEGMENT_ARCHIVED, and a write to an archived external
tag says that the tag is archived (TAG_ARCHIVED), not that it is unknown. Real SQLite."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from profile_helpers import profile_app, profile_process, profile_settings, ref

from svc_common.conditions import from_proto, to_proto
from svc_common.errors import FailedPrecondition, InvalidArgument, NotFound
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import errors_pb2, types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pb_grpc
from svc_profile.server import row_reason

ATTRIBUTE = C.FieldRef.SOURCE_ATTRIBUTE
VT = types_pb2
MANUAL = types_pb2.Provenance(source=types_pb2.Provenance.SOURCE_MANUAL, writer="crm", writer_version="1")


def branch_is(value: str) -> C.Condition:
    field = C.FieldRef(source=ATTRIBUTE, name="branch")
    return C.Condition(comparison=C.Comparison(field=field, operator=C.OPERATOR_EQ, value=to_proto(value)))


def bands_tag(name: str, value_type: int, *values: object, default: object = None) -> pb.TagDefinition:
    bands = pb.TagBands(
        bands=[pb.TagBand(value=to_proto(v), condition=branch_is(f"b{i}")) for i, v in enumerate(values)]
    )
    if default is not None:
        bands.default_value.CopyFrom(to_proto(default))
    return pb.TagDefinition(name=name, value_type=value_type, bands=bands)


def refused_field(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.violations[0].field


# -- m1: value_type of builtin and bands tags ---------------------------------------------------------------------
def test_a_builtin_tag_takes_its_formulas_value_type_and_refuses_another(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        defs = app.definitions
        tier = pb.BuiltinTag(formula="investor_tier")
        with pytest.raises(InvalidArgument) as refused:
            defs.create_tag(pb.TagDefinition(name="my_tier", value_type=VT.VALUE_TYPE_INT, builtin=tier))
        assert refused_field(refused) == "definition.value_type"
        assert refused.value.reason == "PROPERTY_TYPE_MISMATCH"
        assert "produces VALUE_TYPE_STRING values, not VALUE_TYPE_INT" in refused.value.message
        with pytest.raises(NotFound):  # nothing stored
            defs.get_tag("my_tier")

        # Unspecified: the formula's type is stored; the right one is taken as is.
        assert defs.create_tag(pb.TagDefinition(name="my_tier", builtin=tier)).value_type == VT.VALUE_TYPE_STRING
        score = pb.BuiltinTag(formula="dormant_activation_potential")
        assert defs.create_tag(pb.TagDefinition(name="my_dormant", builtin=score)).value_type == VT.VALUE_TYPE_INT
        rich = pb.TagDefinition(
            name="my_rich", value_type=VT.VALUE_TYPE_BOOL, builtin=pb.BuiltinTag(formula="high_net_worth")
        )
        assert defs.create_tag(rich).value_type == VT.VALUE_TYPE_BOOL

        # An update is checked the same way, and one leaving it unspecified takes the formula's again.
        with pytest.raises(InvalidArgument) as refused:
            defs.update_tag(pb.TagDefinition(name="my_tier", value_type=VT.VALUE_TYPE_BOOL, builtin=tier), 0)
        assert refused_field(refused) == "definition.value_type"
        updated = defs.update_tag(pb.TagDefinition(name="my_tier", builtin=tier), 0)
        assert updated.version == 2 and updated.value_type == VT.VALUE_TYPE_STRING


def test_the_finance_pack_is_defined_with_its_formulas_types(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path)) as app:
        types = {d.name: d.value_type for d in app.definitions.list_tags("", 100, False)}
    assert types["fin_investor_tier"] == VT.VALUE_TYPE_STRING and types["lifecycle_stage"] == VT.VALUE_TYPE_STRING
    assert types["fin_high_net_worth"] == types["fin_risk_mismatch"] == VT.VALUE_TYPE_BOOL
    assert types["fin_dormant_activation"] == VT.VALUE_TYPE_INT


def test_a_bands_tag_refuses_a_band_value_or_default_of_another_type(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        defs = app.definitions
        with pytest.raises(InvalidArgument) as refused:
            defs.create_tag(bands_tag("usage", VT.VALUE_TYPE_INT, 3, "heavy"))
        assert refused_field(refused) == "definition.bands.bands[1].value"
        assert refused.value.reason == "PROPERTY_TYPE_MISMATCH"
        assert "holds VALUE_TYPE_INT values (definition.value_type), not string_value" in refused.value.message
        with pytest.raises(InvalidArgument) as refused:
            defs.create_tag(bands_tag("usage", VT.VALUE_TYPE_INT, 3, 1, default=False))
        assert refused_field(refused) == "definition.bands.default_value"
        with pytest.raises(NotFound):
            defs.get_tag("usage")

        # Values of the type (an int is a fine DOUBLE, as for written values), or an unspecified type, are taken.
        assert defs.create_tag(bands_tag("usage", VT.VALUE_TYPE_INT, 3, 1, default=0)).version == 1
        assert defs.create_tag(bands_tag("ratio", VT.VALUE_TYPE_DOUBLE, 0.5, 1, default=0)).version == 1
        assert defs.create_tag(bands_tag("anything", VT.VALUE_TYPE_UNSPECIFIED, "x", 1, default=True)).version == 1
        with pytest.raises(InvalidArgument) as refused:  # an update too
            defs.update_tag(bands_tag("usage", VT.VALUE_TYPE_STRING, "gold", 2), 0)
        assert refused_field(refused) == "definition.bands.bands[1].value"


def test_definitions_an_older_release_stored_with_a_contradicting_type_still_load_and_run(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        defs = app.definitions
        now = dt.datetime.now(dt.UTC)
        old = [
            pb.TagDefinition(
                name="old_tier", value_type=VT.VALUE_TYPE_INT, builtin=pb.BuiltinTag(formula="investor_tier")
            ),
            bands_tag("old_bands", VT.VALUE_TYPE_INT, "heavy", default=False),
        ]
        with app.core.writing() as conn:  # as a release without the checks stored them
            for definition in old:
                defs._insert_tag(conn, definition, 1, now, now)
        defs.load()
        assert {"old_tier", "old_bands"} <= set(app.core.engine.tags)
        assert defs.get_tag("old_tier").value_type == VT.VALUE_TYPE_INT  # stored as it was, not rewritten
        app.profiles.upsert_attributes(ref("P1"), {"branch": to_proto("b0")}, [], "crm", frozenset())
        tags = {t.name: from_proto(t.value) for t in app.profiles.get(ref("P1"), ["tags"], frozenset()).tags}
        assert tags["old_bands"] == "heavy"  # evaluated as before


# -- m2: ExternalTag.writer is an informational owner -----------------------------------------------------------
def test_an_external_tag_without_writer_is_told_the_writer_is_an_informational_owner(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        with pytest.raises(InvalidArgument) as refused:
            app.definitions.create_tag(pb.TagDefinition(name="churn", external=pb.ExternalTag()))
        assert refused_field(refused) == "definition.external.writer"
        message = refused.value.message
        assert "allowed" not in message and "owns it" in message and "WriteTags does not check it" in message


# -- m3 and m4: archived segments and tags ------------------------------------------------------------------------
def test_an_archived_segment_is_not_updated_or_recomputed_failed_precondition(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        defs, segments = app.definitions, app.segments
        segment = pb.Segment(segment_id="north", condition=branch_is("n"))
        defs.create_segment(segment)
        defs.archive_segment("north")
        with pytest.raises(FailedPrecondition) as refused:
            defs.update_segment(pb.Segment(segment_id="north", condition=branch_is("s")), 0)
        assert refused.value.reason == "SEGMENT_ARCHIVED" and "create a segment under a new id" in refused.value.message
        stored = defs.get_segment("north")  # the update stored nothing (it used to store version 2)
        assert stored.archived and stored.version == 1 and stored.condition == branch_is("n")
        with pytest.raises(FailedPrecondition) as refused:
            segments.start_recompute(app.jobs, "north")
        assert refused.value.reason == "SEGMENT_ARCHIVED" and "is archived" in refused.value.message
        with pytest.raises(FailedPrecondition) as refused:
            segments.set_static("north", [], True)
        assert refused.value.reason == "SEGMENT_ARCHIVED"
        # An interrupted recompute of it is not resumed (gone for good, as for an archived tag), not given back.
        with pytest.raises(NotFound, match="segment 'north' was archived"):
            segments.resume("recompute_segment", "north")


def test_a_write_to_an_archived_external_tag_says_it_is_archived(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        defs = app.definitions
        defs.create_tag(
            pb.TagDefinition(name="vip", value_type=VT.VALUE_TYPE_BOOL, external=pb.ExternalTag(writer="crm"))
        )
        app.profiles.upsert_attributes(ref("W1"), {"branch": to_proto("n")}, [], "crm", frozenset())
        write = pb.TagWrite(user=ref("W1"), tag_name="vip", value=to_proto(True))
        assert app.tags.write([write], MANUAL, "") == (1, [])
        defs.archive_tag("vip")
        unknown = pb.TagWrite(user=ref("W1"), tag_name="nope", value=to_proto(True))
        written, errors = app.tags.write([write, unknown], MANUAL, "")
        assert written == 0
        assert errors == [
            (
                0,
                "TAG_ARCHIVED",
                "writes[0].tag_name",
                "writes[0].tag_name: tag 'vip' is archived: its writes are refused",
            ),
            (1, "TAG_NOT_FOUND", "writes[1].tag_name", "writes[1].tag_name: no tag definition 'nope'"),
        ]
    assert row_reason("TAG_ARCHIVED") == errors_pb2.ERROR_REASON_TAG_ARCHIVED


def test_archived_segment_and_tag_over_grpc(tmp_path: Path) -> None:
    with profile_process(tmp_path, QIMING_PROFILE_FINANCE_PACK="false") as profile:
        channel = grpc.insecure_channel(profile.address)
        profiles = pb_grpc.ProfileServiceStub(channel)
        segments = pb_grpc.SegmentServiceStub(channel)
        tags = pb_grpc.TagServiceStub(channel)
        profiles.UpsertAttributes(
            pb.UpsertAttributesRequest(user=ref("G1"), attributes={"branch": to_proto("n")}), timeout=30
        )
        segment = pb.Segment(segment_id="north", condition=branch_is("n"))
        segments.CreateSegment(pb.CreateSegmentRequest(segment=segment), timeout=30)
        segments.ArchiveSegment(pb.ArchiveSegmentRequest(segment_id="north"), timeout=30)
        for call in (
            lambda: segments.UpdateSegment(pb.UpdateSegmentRequest(segment=segment), timeout=30),
            lambda: segments.RecomputeSegment(pb.RecomputeSegmentRequest(segment_id="north"), timeout=30),
        ):
            with pytest.raises(grpc.RpcError) as raised:
                call()
            assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            info = error_details_pb2.ErrorInfo()
            assert rpc_status.from_call(raised.value).details[0].Unpack(info) and info.reason == "SEGMENT_ARCHIVED"

        definition = pb.TagDefinition(name="vip", value_type=VT.VALUE_TYPE_BOOL, external=pb.ExternalTag(writer="crm"))
        tags.CreateTagDefinition(pb.CreateTagDefinitionRequest(definition=definition), timeout=30)
        tags.ArchiveTagDefinition(pb.ArchiveTagDefinitionRequest(name="vip"), timeout=30)
        write = pb.TagWrite(user=ref("G1"), tag_name="vip", value=to_proto(True))
        reply = tags.WriteTags(pb.WriteTagsRequest(writes=[write], provenance=MANUAL), timeout=30)
        assert reply.written_count == 0
        assert [(e.reason, e.field) for e in reply.errors] == [
            (errors_pb2.ERROR_REASON_TAG_ARCHIVED, "writes[0].tag_name")
        ]
        assert "tag 'vip' is archived" in reply.errors[0].message
        channel.close()
