"""AnalyticsService over gRPC: request → Analytics → proto."""

from __future__ import annotations

import asyncio
from typing import Any

from svc_common.errors import FieldViolation, InvalidArgument, refuse_reversed_range
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pb_grpc
from svc_common.server import current_call
from svc_common.timestamps import range_micros
from svc_profile.analytics import NO_TAG_VALUE, OVERALL, SEGMENT, TAG_VALUE, Coverage, median

_DIRECTIONS = frozenset(pb.ComputePathsRequest.Direction.values())
_GROUPS = {
    OVERALL: pb.FunnelResult.GROUP_OVERALL,
    TAG_VALUE: pb.FunnelResult.GROUP_TAG_VALUE,
    NO_TAG_VALUE: pb.FunnelResult.GROUP_NO_TAG_VALUE,
    SEGMENT: pb.FunnelResult.GROUP_SEGMENT,
}


def _range(span: Any) -> tuple[int | None, int | None]:
    start, end = range_micros(span)
    refuse_reversed_range(start, end)
    return start, end


class AnalyticsServicer(pb_grpc.AnalyticsServiceServicer):
    def __init__(self, app: Any) -> None:
        self.analytics = app.analytics

    async def ComputeFunnel(self, request: pb.ComputeFunnelRequest, context: Any) -> pb.ComputeFunnelResponse:
        start, end = _range(request.time_range)
        coverage = Coverage()
        results = await asyncio.to_thread(
            self.analytics.funnel,
            list(request.steps),
            request.conversion_window_seconds,
            start,
            end,
            request.split_by_tag,
            list(request.split_by_segments.segment_ids),
            request.segment_id,
            call.principal.roles if (call := current_call()) is not None else frozenset(),
            coverage,
        )
        response = pb.ComputeFunnelResponse(range_truncated=coverage.truncated)
        response.retained_since.FromMicroseconds(coverage.retained_since_us)
        for result in results:
            out = response.results.add(
                split_value=result.split_value, break_point_step=result.break_point, group=_GROUPS[result.group]
            )
            first = result.steps[0].count
            for i, step in enumerate(result.steps):
                previous = result.steps[i - 1].count if i else step.count
                out.steps.add(
                    name=step.name,
                    count=step.count,
                    conversion_from_start=step.count / first if first else 0.0,
                    conversion_from_previous=step.count / previous if previous else 0.0,
                    median_seconds_from_previous=median(step.seconds),
                    dropped_from_previous=previous - step.count,
                )
        return response

    async def ComputePaths(self, request: pb.ComputePathsRequest, context: Any) -> pb.ComputePathsResponse:
        start, end = _range(request.time_range)
        if request.direction not in _DIRECTIONS:  # unset (0) is NEXT; an unknown number is refused
            raise InvalidArgument(
                f"direction {request.direction} is not a Direction this server knows (NEXT, PREVIOUS)",
                reason="VALUE_NOT_ALLOWED",
                violations=[FieldViolation("direction", "DIRECTION_NEXT or DIRECTION_PREVIOUS", "VALUE_NOT_ALLOWED")],
            )
        forward = request.direction != pb.ComputePathsRequest.DIRECTION_PREVIOUS
        coverage = Coverage()
        paths, sessions = await asyncio.to_thread(
            self.analytics.paths, request.screen, request.depth, forward, start, end, request.top_n, coverage
        )
        response = pb.ComputePathsResponse(total_sessions=sessions, range_truncated=coverage.truncated)
        response.retained_since.FromMicroseconds(coverage.retained_since_us)
        for screens, count in paths:
            response.paths.add(screens=screens, sessions=count, share=count / sessions if sessions else 0.0)
        return response

    async def ComputeLifecycleDistribution(self, request: pb.ComputeLifecycleDistributionRequest, context: Any) -> Any:
        start, end = _range(request.time_range)
        stages, flows = await asyncio.to_thread(self.analytics.lifecycle, start, end, request.segment_id)
        response = pb.ComputeLifecycleDistributionResponse()
        for stage in ("PROSPECT", "NEW", "ACTIVE", "AT_RISK", "CHURNED", "REACTIVATED"):
            response.stages.add(stage=pb.LifecycleStage.Value(f"LIFECYCLE_STAGE_{stage}"), count=stages.get(stage, 0))
        for (a, b), count in sorted(flows.items()):
            response.flows.add(
                from_stage=pb.LifecycleStage.Value(f"LIFECYCLE_STAGE_{a}"),
                to_stage=pb.LifecycleStage.Value(f"LIFECYCLE_STAGE_{b}"),
                count=count,
            )
        return response
