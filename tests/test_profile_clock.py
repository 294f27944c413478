"""An event whose device clock runs ahead (svc_collect accepts it with the flag ``occurred_at_in_future``) counts at
the time svc_collect received it: it used to count in every "last N days" window until its future date had passed,
and set ``last_seen_at`` ahead (review 2026-12-06, F8)."""

from __future__ import annotations

import time
from pathlib import Path

from profile_helpers import DAY, event, profile_app, profile_settings, ref


def test_a_future_dated_event_counts_when_it_was_received(tmp_path: Path, database_url: str) -> None:
    now = time.time_ns() // 1000
    received = now - 40 * DAY  # received 40 days ago, its device clock 10 days ahead of that
    ahead = event("quote_view", user_id="c8001", at_us=received + 10 * DAY)
    ahead.received_at.FromMicroseconds(received)
    honest = event("quote_view", user_id="c8002", at_us=now - DAY)
    honest.received_at.FromMicroseconds(now - DAY + 5_000_000)  # sent 5 s late: its own time stands
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        app.consumer.handle([ahead, honest], "c1")
        late = app.profiles.get(ref("c8001"), ["features"], frozenset())
        on_time = app.profiles.get(ref("c8002"), ["features"], frozenset())
    features = {k: v for k, v in late.features.items()}
    assert features["last_seen_at"].timestamp_value.ToMicroseconds() == received
    assert features["count.quote_view.30d"].int_value == 0  # 40 days ago, not 30 days ago
    assert on_time.features["last_seen_at"].timestamp_value.ToMicroseconds() == now - DAY
    assert on_time.features["count.quote_view.7d"].int_value == 1
