"""Walk 2026-12-06 finding 4: a Timestamp out of range (``seconds=2**40``: epoch milliseconds put in seconds;
``nanos=-5``) is INVALID_ARGUMENT naming the field in every svc_profile call that takes one, never INTERNAL; the bulk
calls report it per row / per write and write the others. Real gRPC on real SQLite."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio
from profile_helpers import profile_settings, ref
from server_helpers import served, violations

from svc_common.conditions import to_proto
from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import errors_pb2, types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pb_grpc
from svc_common.runtime import ServiceRuntime
from svc_common.timestamps import timestamp_micros
from svc_profile.server import build_spec
from svc_profile.store import SCHEMA

BAD = [Timestamp(seconds=2**40), Timestamp(seconds=-(2**62)), Timestamp(seconds=1_700_000_000, nanos=-5)]


@asynccontextmanager
async def serving(tmp_path: Path) -> AsyncIterator[aio.Channel]:
    url = f"sqlite:///{tmp_path / 'profile.db'}"
    config = profile_settings(tmp_path, url, grpc_host="127.0.0.1", grpc_port=0, finance_pack=False)
    runtime = await asyncio.to_thread(ServiceRuntime.open, SCHEMA, config)
    try:
        async with served(build_spec(runtime), config, hooks=True) as channel:
            yield channel
    finally:
        runtime.database.dispose()


def stamped(ts: Timestamp) -> types_pb2.Value:
    value = types_pb2.Value()
    value.timestamp_value.CopyFrom(ts)
    return value


async def refused(call: Awaitable[Any]) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as error:
        await call
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value.details()
    return error.value


def run(tmp_path: Path, scenario: Callable[[aio.Channel], Awaitable[None]]) -> None:
    async def main() -> None:
        async with serving(tmp_path) as channel:
            await scenario(channel)

    asyncio.run(main())


def test_the_shared_helper_names_the_field_and_takes_the_whole_valid_range() -> None:
    assert timestamp_micros(Timestamp(seconds=253_402_300_799, nanos=999_999_999), "t") == 253_402_300_799_999_999
    assert timestamp_micros(Timestamp(seconds=-62_135_596_800), "t") == -62_135_596_800_000_000
    for ts in BAD:
        with pytest.raises(InvalidArgument) as error:
            timestamp_micros(ts, "time_range.end")
        assert error.value.reason == "TIMESTAMP_OUT_OF_RANGE"
        assert error.value.violations[0].field == "time_range.end"


def test_upsert_and_import_refuse_the_bad_timestamp_and_import_writes_the_good_rows(tmp_path: Path) -> None:
    async def scenario(channel: aio.Channel) -> None:
        profiles = pb_grpc.ProfileServiceStub(channel)
        for ts in BAD:
            error = await refused(
                profiles.UpsertAttributes(
                    pb.UpsertAttributesRequest(user=ref("u1"), attributes={"account_opened_at": stamped(ts)})
                )
            )
            assert violations(error) == [("attributes[account_opened_at]", "TIMESTAMP_OUT_OF_RANGE")]

        async def rows() -> AsyncIterator[pb.ImportAttributesRequest]:
            yield pb.ImportAttributesRequest(
                rows=[
                    pb.UpsertAttributesRequest(user=ref("imp1"), attributes={"branch": to_proto("sh")}),
                    pb.UpsertAttributesRequest(user=ref("imp2"), attributes={"account_opened_at": stamped(BAD[0])}),
                    pb.UpsertAttributesRequest(user=ref("imp3"), attributes={"score": to_proto(math.nan)}),
                    pb.UpsertAttributesRequest(user=ref("imp4"), attributes={"opened": stamped(BAD[2])}),
                ]
            )

        reply = await profiles.ImportAttributes(rows(), timeout=60)
        assert (reply.rows_received, reply.profiles_created) == (4, 1)
        errors = [(e.row_index, errors_pb2.ErrorReason.Name(e.reason), e.field) for e in reply.errors]
        assert errors == [
            (1, "ERROR_REASON_TIMESTAMP_OUT_OF_RANGE", "rows[1].attributes[account_opened_at]"),
            (2, "ERROR_REASON_VALUE_NOT_ALLOWED", "rows[2].attributes[score]"),
            (3, "ERROR_REASON_TIMESTAMP_OUT_OF_RANGE", "rows[3].attributes[opened]"),
        ]
        got = await profiles.GetProfile(pb.GetProfileRequest(user=ref("imp1"), parts=["attributes"]))
        assert got.profile.attributes["branch"].string_value == "sh"
        for user in ("imp2", "imp3", "imp4"):
            with pytest.raises(aio.AioRpcError) as missing:
                await profiles.GetProfile(pb.GetProfileRequest(user=ref(user)))
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND

    run(tmp_path, scenario)


def test_write_tags_reports_a_bad_expiry_or_value_per_write_and_writes_the_others(tmp_path: Path) -> None:
    async def scenario(channel: aio.Channel) -> None:
        profiles, tags = pb_grpc.ProfileServiceStub(channel), pb_grpc.TagServiceStub(channel)
        await profiles.UpsertAttributes(pb.UpsertAttributesRequest(user=ref("w1"), attributes={"a": to_proto(1)}))
        for name, value_type in (("churn", types_pb2.VALUE_TYPE_DOUBLE), ("due", types_pb2.VALUE_TYPE_TIMESTAMP)):
            external = pb.ExternalTag(writer="svc_modeling")
            definition = pb.TagDefinition(name=name, value_type=value_type, external=external)
            await tags.CreateTagDefinition(pb.CreateTagDefinitionRequest(definition=definition))
        good = pb.TagWrite(user=ref("w1"), tag_name="churn", value=to_proto(0.5))
        late = pb.TagWrite(user=ref("w1"), tag_name="churn", value=to_proto(0.7), expires_at=BAD[0])
        odd = pb.TagWrite(user=ref("w1"), tag_name="due", value=stamped(BAD[2]))
        provenance = types_pb2.Provenance(source=types_pb2.Provenance.SOURCE_MODEL, writer="model:churn")
        reply = await tags.WriteTags(pb.WriteTagsRequest(writes=[good, late, odd], provenance=provenance))
        assert reply.written_count == 1
        errors = [(e.row_index, errors_pb2.ErrorReason.Name(e.reason), e.field) for e in reply.errors]
        assert errors == [
            (1, "ERROR_REASON_TIMESTAMP_OUT_OF_RANGE", "writes[1].expires_at"),
            (2, "ERROR_REASON_TIMESTAMP_OUT_OF_RANGE", "writes[2].value"),
        ]
        got = await profiles.GetProfile(pb.GetProfileRequest(user=ref("w1"), parts=["tags"]))
        assert [(t.name, t.value.double_value) for t in got.profile.tags] == [("churn", 0.5)]

    run(tmp_path, scenario)


def test_a_condition_literal_out_of_range_is_refused_naming_the_node(tmp_path: Path) -> None:
    async def scenario(channel: aio.Channel) -> None:
        segments, tags = pb_grpc.SegmentServiceStub(channel), pb_grpc.TagServiceStub(channel)
        field = C.FieldRef(source=C.FieldRef.SOURCE_ATTRIBUTE, name="account_opened_at")
        late = C.Condition(comparison=C.Comparison(field=field, operator=C.OPERATOR_GT, value=stamped(BAD[0])))
        segment = pb.Segment(segment_id="late", condition=C.Condition(all_of=C.ConditionList(conditions=[late])))
        error = await refused(segments.CreateSegment(pb.CreateSegmentRequest(segment=segment)))
        assert violations(error) == [("segment.condition.all_of.conditions[0].comparison.value", "INVALID_CONDITION")]
        assert "not a valid timestamp" in (error.details() or "")
        between = C.Comparison(field=field, operator=C.OPERATOR_BETWEEN, values=[stamped(Timestamp()), stamped(BAD[2])])
        error = await refused(
            tags.CreateTagDefinition(
                pb.CreateTagDefinitionRequest(
                    definition=pb.TagDefinition(name="opened", condition=C.Condition(comparison=between))
                )
            )
        )
        assert violations(error) == [("definition.condition.comparison.values[1]", "INVALID_CONDITION")]
        band = pb.TagBand(value=stamped(BAD[1]), condition=C.Condition(comparison=between.__class__(field=field)))
        band.condition.comparison.operator = C.OPERATOR_EXISTS
        banded = pb.TagDefinition(
            name="when", value_type=types_pb2.VALUE_TYPE_TIMESTAMP, bands=pb.TagBands(bands=[band])
        )
        error = await refused(tags.CreateTagDefinition(pb.CreateTagDefinitionRequest(definition=banded)))
        assert violations(error) == [("definition.bands.bands[0].value", "TIMESTAMP_OUT_OF_RANGE")]

    run(tmp_path, scenario)


def test_analytics_time_ranges_out_of_range_are_refused_naming_the_field(tmp_path: Path) -> None:
    async def scenario(channel: aio.Channel) -> None:
        analytics = pb_grpc.AnalyticsServiceStub(channel)
        steps = [pb.FunnelStep(event_type="login"), pb.FunnelStep(event_type="trade_filled")]
        for end in ("start", "end"):
            for ts in BAD:
                span = types_pb2.TimeRange(**{end: ts})
                calls = [
                    analytics.ComputeFunnel(
                        pb.ComputeFunnelRequest(steps=steps, conversion_window_seconds=3600, time_range=span)
                    ),
                    analytics.ComputePaths(pb.ComputePathsRequest(screen="home", depth=2, time_range=span)),
                    analytics.ComputeLifecycleDistribution(pb.ComputeLifecycleDistributionRequest(time_range=span)),
                ]
                for call in calls:
                    error = await refused(call)
                    assert violations(error) == [(f"time_range.{end}", "TIMESTAMP_OUT_OF_RANGE")]

    run(tmp_path, scenario)
