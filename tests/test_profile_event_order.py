"""Events of one person in the same microsecond are read in event id order (the retained events' primary key):
a path through them is the same on every database and every read. Before 0.2.9 they came in whatever order the
plan gave: on PostgreSQL, the order the rows were stored in."""

from __future__ import annotations

import time
from pathlib import Path

from profile_helpers import event, profile_app, profile_settings

S = 1_000_000
FIRST_ID = "00000000-0000-7000-8000-000000000001"
LAST_ID = "ffffffff-ffff-7fff-bfff-ffffffffffff"


def test_a_path_through_events_of_one_microsecond_takes_them_in_event_id_order(
    tmp_path: Path, database_url: str
) -> None:
    at = time.time_ns() // 1000 - 3600 * S
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        # Stored last-id first, in two batches: the rows lie in the order opposite to their ids.
        app.consumer.handle(
            [
                event("page_view", "p1", at_us=at, screen="home", session_id="s"),
                event("page_view", "p1", at_us=at + S, screen="zeta", session_id="s", event_id=LAST_ID),
            ],
            "1",
        )
        app.consumer.handle(
            [event("page_view", "p1", at_us=at + S, screen="alpha", session_id="s", event_id=FIRST_ID)], "2"
        )
        for _ in range(2):
            paths, sessions = app.analytics.paths("home", 2, True, None, None, 10)
            assert (dict(paths), sessions) == ({("alpha", "zeta"): 1}, 1)
            paths, _ = app.analytics.paths("zeta", 2, False, None, None, 10)
            assert dict(paths) == {("home", "alpha"): 1}
