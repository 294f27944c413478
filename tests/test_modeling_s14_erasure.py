"""Session 14 (walk-sec F10): a point-in-time snapshot of the event log forgets a customer erased in svc_profile
(``$profile_erased``): what it counted of them before the erasure event, and their events from before the erasure
read later; an event after the erasure is a new relationship and counts, as in svc_campaign."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from svc_common.pb.qiming.common.v1 import event_pb2
from svc_modeling.snapshot import LabelSpec, SnapshotBuilder
from tests.modeling_helpers import modeling_settings

SECOND = 1_000_000


def _event(n: int, event_type: str, user: str, second: int) -> event_pb2.Event:
    stamp = Timestamp()
    stamp.FromMicroseconds(second * SECOND)
    return event_pb2.Event(event_id=f"e{n}", event_type=event_type, user_id=user, occurred_at=stamp)


LOG = [
    ("login", "c1", 1),
    ("login", "c2", 1),
    ("buy", "c1", 6),
    ("$profile_erased", "c1", 5),
    ("login", "c1", 3),  # from before the erasure, read after it (an app's backlog)
    ("login", "c1", 7),  # after the erasure: a re-opened account
]


def _snapshot(tmp_path, at_second: int) -> SnapshotBuilder:
    label = LabelSpec(name="bought", event_type="buy", filter=None, horizon_us=100 * SECOND, absent=False)
    builder = SnapshotBuilder(modeling_settings(tmp_path), at_second * SECOND, label=label)
    events = [_event(n, *entry) for n, entry in enumerate(LOG)]
    builder.add(events[:3])
    builder.add(events[3:])
    return builder


def test_a_snapshot_before_the_erasure_does_not_hold_the_erased_customer(tmp_path) -> None:
    builder = _snapshot(tmp_path, 4)
    assert builder.seen() == ["c2"] and builder.labelled == set()
    assert builder.features("c2")["events_total"] == 1


def test_a_snapshot_after_the_erasure_counts_only_what_came_after_it(tmp_path) -> None:
    builder = _snapshot(tmp_path, 10)
    assert builder.seen() == ["c1", "c2"]
    assert builder.features("c1")["events_total"] == 1  # the login at 7, not the ones at 1 and 3 nor the buy at 6
