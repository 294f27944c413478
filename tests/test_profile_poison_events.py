"""Valid events that failed svc_profile's log batch at every retry (walk of session 26): a NUL in the screen
(svc_collect keeps context text verbatim; PostgreSQL's text refuses U+0000) and a product risk level written with a
digit ``int()`` refuses ("R²"). Each batch now commits on SQLite and PostgreSQL, and a condition naming a window of
such digits is INVALID_ARGUMENT rather than an internal error."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from profile_helpers import DAY, event, profile_app, profile_settings, ref

from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_profile.model import StoredEvent

UNMASK = frozenset({"unmask"})


def test_a_screen_with_a_nul_is_retained_and_read_back_as_sent(tmp_path: Path, database_url: str) -> None:
    at = time.time_ns() // 1000 - DAY
    screen = "home\x00x"
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        app.consumer.handle([event("page_view", "n1", at_us=at, screen=screen, session_id="s")], "c1")
        app.consumer.handle([event("page_view", "n1", at_us=at + 1, screen="fund", session_id="s")], "c2")
        # Paths read the screen column: the NUL written as \x00 there.
        paths, _ = app.analytics.paths("fund", 1, False, None, None, 10)
        assert dict(paths) == {("home\\x00x",): 1}
        # What an event filter reads (a funnel step's, a condition's): the screen as sent.
        with app.core.database.connection() as conn:
            (rows,) = app.core.store.load_events(conn, None, ["page_view"], 0).values()
        assert [StoredEvent.of(r).as_event().context.screen for r in rows] == [screen, "fund"]


@pytest.mark.parametrize("level", ["R²", "①", "C³"])
def test_a_risk_level_of_other_digits_counts_no_level(tmp_path: Path, level: str) -> None:
    at = time.time_ns() // 1000 - DAY
    with profile_app(profile_settings(tmp_path)) as app:
        view = event("product_view", "r1", at_us=at, product_category="fund", product_risk_level=level)
        trade = event("trade_filled", "r1", at_us=at + 1, product_risk_level=level, amount_fen=100)
        full_width = event("product_view", "r1", at_us=at + 2, product_category="fund", product_risk_level="５")
        app.consumer.handle([view, trade, full_width], "c1")
        features = app.profiles.get(ref("r1"), [], UNMASK).features
        assert features["trade_count"].int_value == 1 and features["views.fund"].int_value == 2
        assert features["risk_views.R5"].int_value == 1 and "risk.max_traded_level" not in features


def test_a_window_of_other_digits_is_an_unknown_feature(tmp_path: Path) -> None:
    from svc_common.conditions import to_proto
    from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb

    field = C.FieldRef(source=C.FieldRef.SOURCE_FEATURE, name="count.page_view.²d")
    condition = C.Condition(comparison=C.Comparison(field=field, operator=C.OPERATOR_GTE, value=to_proto(1)))
    with profile_app(profile_settings(tmp_path)) as app, pytest.raises(InvalidArgument) as refused:
        app.definitions.create_segment(pb.Segment(segment_id="odd", condition=condition))
    assert "unknown feature 'count.page_view.²d'" in refused.value.message
