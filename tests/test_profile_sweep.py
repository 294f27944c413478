"""The time sweep selects only persons with a bucket of a type some rule reads that left a window that rule
reads, and that selection misses nothing: after it, evaluating everyone changes nothing."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from profile_helpers import DAY, event, profile_app, profile_settings, ref

from svc_common.conditions import to_proto
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_profile import finance, timewindows


def within(event_type: str, days: int) -> C.Condition:
    return C.Condition(event_count=C.EventCount(event_type=event_type, min_count=1, window_seconds=days * 86_400))


def state(app: Any) -> dict[str, Any]:
    with app.core.database.connection() as conn:
        return {
            "tags": sorted(
                conn.execute(sa.text("SELECT profile_id, name, tag_value FROM profile_tag WHERE source = 'RULE'"))
            ),
            "members": sorted(conn.execute(sa.text("SELECT profile_id, segment_id, is_member FROM profile_member"))),
            "stages": sorted(conn.execute(sa.text("SELECT profile_id, lifecycle_stage FROM profile_person"))),
        }


def holders(app: Any, name: str) -> set[str]:
    with app.core.database.connection() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT i.id_value FROM profile_tag t JOIN profile_identity i ON i.profile_id = t.profile_id "
                "WHERE t.name = :name AND i.id_type = 2"
            ),
            {"name": name},
        )
        return {r[0] for r in rows}


def test_the_sweep_evaluates_only_persons_whose_read_windows_crossed_and_misses_none(
    tmp_path: Path, database_url: str
) -> None:
    with profile_app(profile_settings(tmp_path, database_url)) as app:  # the finance pack and lifecycle too
        # 14 days: neither a published window nor a segment's; a tag's windows count as much as a segment's.
        app.definitions.create_tag(pb.TagDefinition(name="fortnight", condition=within("transfer_in", 14)))
        app.definitions.create_segment(pb.Segment(segment_id="clickers", condition=within("app_click", 7)))
        now = time.time_ns() // 1000
        opened = to_proto(dt.datetime.now(dt.UTC) - dt.timedelta(days=200))
        for user in ("P1", "P2", "P3", "P4", "P5"):  # long-standing customers: none NEW, all swept by their buckets
            app.profiles.upsert_attributes(ref(user), {"account_opened_at": opened}, [], "crm", frozenset())
        batch = [
            # A second more than the window (windows are rolling): the event has just left it by ``now``.
            event("transfer_in", user_id="P1", at_us=now - 14 * DAY - 10**6),  # leaves the tag's 14-day window
            event("app_click", user_id="P2", at_us=now - 7 * DAY - 10**6),  # leaves the segment's 7-day window
            event("page_view", user_id="P3", at_us=now - 7 * DAY),  # no rule reads page views
            event("page_view", user_id="P3", at_us=now - DAY),
            event("transfer_in", user_id="P4", at_us=now - 3 * DAY),  # stays in every window
            event("quote_view", user_id="P5", at_us=now - 30 * DAY),  # the pack's 30-day activation score
        ]
        app.consumer.handle(batch, "c1")
        # Everyone as of yesterday: the state the sweep finds at today's boundary.
        with app.core.writing() as conn:
            app.core.engine.refresh(conn, None, now - DAY, cause="test")
        assert holders(app, "fortnight") == {"P1", "P4"}
        assert app.segments.check("clickers", (2, "P2"))[0]

        windows = timewindows.day_windows(app.core.engine)
        assert windows["transfer_in"] == {14} and 7 in windows["app_click"] and "page_view" not in windows
        assert timewindows.ANY not in windows  # every rule here says which event types it reads
        # The pack: lifecycle (30 / 90 days since the last activity), activation score (30), trading tier (30),
        # high net worth (turnover over 90 days); no one reads the published 1- and 7-day windows of logins.
        assert windows["login"] == {30, 90} and windows["trade_filled"] == {30, 90} and windows["quote_view"] == {30}

        result = app.segments.sweep(now - DAY, now)
        assert holders(app, "fortnight") == {"P4"}
        assert not app.segments.check("clickers", (2, "P2"))[0]
        # P1, P2, P5 by their buckets; not P3 (page views only) nor P4 (nothing left a window).
        assert result["by_window"] == result["candidates"] == 3

        # Nothing the sweep skipped was due: evaluating everyone now changes nothing.
        swept = state(app)
        app.segments.refresh_everyone("recompute")
        assert state(app) == swept


def test_every_finance_formula_has_its_windows_listed() -> None:
    """A formula added to the pack without its windows here would be swept on every published window: say
    which it reads."""
    listed = set(timewindows.FIXED_WINDOWS) | timewindows.BY_PARAMETERS
    assert listed == set(finance.FORMULAS) | {"lifecycle_stage"}
