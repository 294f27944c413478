"""Session 16: the consumer thread's work per event (docs/benchmarks.md, "Session 16 (cons)") without changing what
a batch writes."""

from __future__ import annotations

from pathlib import Path

from profile_helpers import event, profile_app, profile_settings


def test_a_batch_leaves_no_per_person_sets_behind(tmp_path: Path) -> None:
    """The fold's per-person event types (and view marks, and triggers) are dropped once the batch has evaluated its
    persons: kept until the next batch, they were the most numerous objects the collection after the batch walked.
    The batch's evaluation still used them (a segment of a viewed type is entered)."""
    from svc_common.pb.qiming.common.v1 import condition_pb2 as C
    from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb

    with profile_app(profile_settings(tmp_path, None)) as app:
        viewers = C.Condition(event_count=C.EventCount(event_type="fund_view", min_count=1, window_seconds=86_400))
        app.definitions.create_segment(pb.Segment(segment_id="viewers", condition=viewers))
        batch = [event("fund_view", user_id=f"U{i}", product_category="fund", fund_type="bond") for i in range(5)]
        app.consumer.handle(batch, "c0")
        updater = app.consumer.updater
        assert updater.types == {} and updater.triggers == {} and not updater.changed
        pid = app.core.hot.owner[next(iter(app.core.hot.owner))]
        assert "viewers" in {s for s, m in app.core.hot.members[pid].items() if m.is_member}
