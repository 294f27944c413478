"""Funnels and paths say what their answer covers: the retained events reach back ``event_retention_days`` (or to
where an earlier, shorter retention purged them), and a range starting before that is told as truncated rather than
answered as if nothing had happened then. Events older than the horizon that the daily purge has not yet deleted are
not counted either, so an answer does not depend on when the purge last ran (once a day)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from profile_helpers import DAY, event, profile_app, profile_settings

from svc_common.errors import FailedPrecondition
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_profile.analytics import Coverage
from svc_profile.analytics_server import AnalyticsServicer
from svc_profile.retained import KEPT_NONE, PURGE_WATERMARK

S = 1_000_000


def _steps(*types: str) -> list[pb.FunnelStep]:
    return [pb.FunnelStep(event_type=t) for t in types]


def _span(start_us: int | None = None) -> types_pb2.TimeRange:
    span = types_pb2.TimeRange()
    if start_us is not None:
        span.start.FromMicroseconds(start_us)
    return span


def _visit(user: str, at_us: int, session: str) -> list:
    """A fund view then a purchase, on screens home → fund."""
    return [
        event("fund_view", user, at_us=at_us, session_id=session, screen="home"),
        event("fund_buy", user, at_us=at_us + S, session_id=session, screen="fund"),
    ]


def test_a_funnel_and_paths_count_only_the_retained_horizon_and_say_so(tmp_path: Path) -> None:
    now = time.time_ns() // 1000
    with profile_app(profile_settings(tmp_path, finance_pack=False, event_retention_days=30)) as app:
        # U1 converted 40 days ago (past the 30-day horizon, not yet purged), U2 two days ago.
        app.consumer.handle(_visit("U1", now - 40 * DAY, "a") + _visit("U2", now - 2 * DAY, "b"), "1")
        servicer = AnalyticsServicer(app)

        def funnel(start_us: int | None) -> pb.ComputeFunnelResponse:
            request = pb.ComputeFunnelRequest(
                steps=_steps("fund_view", "fund_buy"), conversion_window_seconds=3600, time_range=_span(start_us)
            )
            return asyncio.run(servicer.ComputeFunnel(request, None))

        everything = funnel(None)
        since = everything.retained_since.ToMicroseconds()
        assert now - 30 * DAY <= since <= time.time_ns() // 1000 - 30 * DAY
        assert everything.range_truncated
        assert [s.count for s in everything.results[0].steps] == [1, 1]  # U2 only: U1's visit is past the horizon
        early = funnel(now - 60 * DAY)
        assert early.range_truncated and [s.count for s in early.results[0].steps] == [1, 1]
        inside = funnel(now - 10 * DAY)
        assert not inside.range_truncated and inside.retained_since.ToMicroseconds() >= since

        paths = asyncio.run(servicer.ComputePaths(pb.ComputePathsRequest(screen="home", time_range=_span()), None))
        assert paths.range_truncated and paths.total_sessions == 1
        assert paths.retained_since.ToMicroseconds() >= since
        recent = pb.ComputePathsRequest(screen="home", time_range=_span(now - 5 * DAY))
        assert not asyncio.run(servicer.ComputePaths(recent, None)).range_truncated

    # The same database with a longer retention counts U1's visit: it was never purged.
    with profile_app(profile_settings(tmp_path, finance_pack=False, event_retention_days=90)) as app:
        coverage = Coverage()
        (overall,) = app.analytics.funnel(_steps("fund_view", "fund_buy"), 3600, None, None, coverage=coverage)
        assert [s.count for s in overall.steps] == [2, 2]
        assert coverage.truncated and coverage.retained_since_us <= time.time_ns() // 1000 - 90 * DAY


def test_a_longer_retention_after_a_purge_reads_from_where_the_purge_reached(tmp_path: Path) -> None:
    """Lowered to 30 days and purged, then raised to 90: the 60 days before the purge's horizon are gone, so the
    answer covers what is left, not the 90 days the setting now names."""
    now = time.time_ns() // 1000
    with profile_app(profile_settings(tmp_path, finance_pack=False, event_retention_days=30)) as app:
        app.consumer.handle(_visit("U1", now - 2 * DAY, "a"), "1")
        app.segments.purge_retained(now - 2 * S)
        app.segments.purge_retained(now)  # each purge moves the watermark on to its own horizon
    with profile_app(profile_settings(tmp_path, finance_pack=False, event_retention_days=90)) as app:
        coverage = Coverage()
        app.analytics.paths("home", 1, True, now - 50 * DAY, None, 10, coverage=coverage)
        assert coverage.retained_since_us == now - 30 * DAY and coverage.truncated
        app.segments.purge_retained(now + S)  # a purge with the longer retention does not move it back
        coverage = Coverage()
        app.analytics.funnel(_steps("fund_view", "fund_buy"), 60, now - 20 * DAY, None, coverage=coverage)
        assert coverage.retained_since_us == now - 30 * DAY and not coverage.truncated


def test_funnels_and_paths_without_retained_events_are_a_failed_precondition(tmp_path: Path) -> None:
    """And a later start that keeps events again covers only from that start: nothing was kept before it."""
    started = time.time_ns() // 1000 - 60 * S  # the starts below: a minute ago and after
    with profile_app(profile_settings(tmp_path, finance_pack=False, event_retention_days=0)) as app:
        app.segments.note_retention(started)
        app.consumer.handle(_visit("U1", started - DAY, "a"), "1")
        with pytest.raises(FailedPrecondition, match="event_retention_days is 0") as caught:
            app.analytics.funnel(_steps("fund_view", "fund_buy"), 3600, None, None)
        assert caught.value.reason == "EVENTS_NOT_RETAINED"
        with pytest.raises(FailedPrecondition, match="event_retention_days is 0"):
            app.analytics.paths("home", 1, True, None, None, 10)
    with profile_app(profile_settings(tmp_path, finance_pack=False, event_retention_days=90)) as app:
        coverage = Coverage()
        app.analytics.paths("home", 1, True, started - 10 * DAY, None, 10, coverage=coverage)
        assert coverage.retained_since_us > started and coverage.truncated  # not yet started: nothing covered
        app.segments.note_retention(started + S)
        app.consumer.handle(_visit("U2", started + 2 * S, "b"), "2")
        coverage = Coverage()
        _, sessions = app.analytics.paths("home", 1, True, started - 10 * DAY, None, 10, coverage=coverage)
        assert coverage.retained_since_us == started + S and coverage.truncated and sessions == 1
        app.segments.note_retention(started + 2 * S)  # an ordinary start moves nothing
        coverage = Coverage()
        app.analytics.paths("home", 1, True, started + S, None, 10, coverage=coverage)
        assert coverage.retained_since_us == started + S and not coverage.truncated


def test_the_service_notes_its_retention_as_it_starts(tmp_path: Path) -> None:
    settings = profile_settings(tmp_path, finance_pack=False, event_retention_days=0)
    with profile_app(settings) as app:
        asyncio.run(app.start())  # no collector address: nothing is followed
        asyncio.run(app.stop())
        with app.core.database.connection() as conn:
            assert app.core.store.load_cursor(conn, PURGE_WATERMARK) == str(KEPT_NONE)


def test_a_purge_that_meets_a_mark_of_nothing_kept_keeps_from_its_own_time(tmp_path: Path) -> None:
    """Another process on the database, with event_retention_days 0, marked nothing kept: a purge of this one (whose
    start did not note it) takes the events as kept from its own time on, not from before."""
    now = time.time_ns() // 1000 - 60 * S
    with profile_app(profile_settings(tmp_path, finance_pack=False, event_retention_days=0)) as app:
        app.segments.note_retention(now - S)
    with profile_app(profile_settings(tmp_path, finance_pack=False, event_retention_days=30)) as app:
        app.segments.purge_retained(now)
        coverage = Coverage()
        app.analytics.paths("home", 1, True, now - DAY, None, 10, coverage=coverage)
        assert coverage.retained_since_us == now and coverage.truncated
