"""The funnel over profiles without a ``time_range`` start: the range begins at the log's first event, so on a log
younger than 60 days the default driver cut-off is the midpoint between that event and the end (not 30 days before
the end, before the first event, where nobody is in any stage and no transition gets drivers).

The log and svc_profile are stand-ins in this process (the real ones are exercised by test_modeling_funnel_cutoff);
the simulation: 400 customers whose log began 20 days ago; webinars in its first days raise the chance of buying in
its last days."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest
from collect_helpers import make_event
from google.protobuf.timestamp_pb2 import Timestamp
from modeling_helpers import modeling_settings

from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_modeling.funnel_profiles import profile_funnel
from svc_modeling.profiles import Population

DAY_US = 86_400_000_000


class _Log:
    """The event log in batches, counting its reads."""

    def __init__(self, events: list) -> None:
        self.all, self.reads = events, 0

    def events(self):
        self.reads += 1
        for start in range(0, len(self.all), 500):
            yield self.all[start : start + 500]


def _snapshots(tmp_path, events: list) -> SimpleNamespace:
    return SimpleNamespace(
        settings=modeling_settings(tmp_path),
        log=_Log(events),
        profile=SimpleNamespace(profiles=lambda customers, parts: {}),
        require=lambda **_: None,
        population=lambda segment_id: Population(),
    )


def the_log(age_days: float, seed: int = 1) -> tuple[list, int]:
    """A log whose first event is ``age_days`` old; purchases fall in its last 40%, after webinars in its first 40%."""
    rng = np.random.default_rng(seed)
    start = time.time_ns() // 1000 - int(age_days * DAY_US)
    first = start + DAY_US // 10

    def day(low: float, high: float) -> int:
        return start + int(rng.uniform(low, high) * age_days / 20 * DAY_US)

    events = []
    for i in range(400):
        c = f"y{i:04d}"
        events.append(make_event("login", c, occurred_at_us=first if i == 0 else day(0.2, 5)))
        events.append(make_event("fund_view", c, occurred_at_us=day(1, 6), product_category="fund"))
        webinars = int(rng.integers(0, 4))
        for _ in range(webinars):
            events.append(make_event("webinar", c, occurred_at_us=day(0.2, 8)))
        if rng.random() < 0.1 + 0.2 * webinars:
            events.append(make_event("trade_filled", c, occurred_at_us=day(12, 19), product_type="fund"))
    return events, first


def test_without_a_start_a_young_log_gets_drivers_from_the_midpoint_cut_off(tmp_path) -> None:
    events, first = the_log(20)
    snapshots = _snapshots(tmp_path, events)
    before = time.time_ns() // 1000
    answer = profile_funnel(pb.ComputeAiplFunnelRequest(), snapshots)
    after = time.time_ns() // 1000
    cutoff = answer.driver_cutoff.ToMicroseconds()
    # the midpoint between the log's first event and now (not 30 days before now, 10 days before the log began)
    assert first + (before - first) // 2 <= cutoff <= first + (after - first) // 2
    assert [s.customers for s in answer.stages][:3] == [400, 400, answer.transitions[1].converted_after_cutoff]
    interest = answer.transitions[1]
    assert interest.at_cutoff == 400 and not interest.drivers_note, interest
    assert interest.drivers and interest.drivers[0].factor.startswith("count.webinar."), interest.drivers
    assert snapshots.log.reads == 2  # the cut-off's snapshot is read again once the log's start is known


def test_without_a_start_an_old_log_keeps_thirty_days_and_one_read(tmp_path) -> None:
    events, _ = the_log(80)
    snapshots = _snapshots(tmp_path, events)
    before = time.time_ns() // 1000
    answer = profile_funnel(pb.ComputeAiplFunnelRequest(), snapshots)
    assert before - 30 * DAY_US <= answer.driver_cutoff.ToMicroseconds() <= time.time_ns() // 1000 - 30 * DAY_US
    assert answer.transitions[1].at_cutoff > 300 and answer.transitions[1].drivers
    assert snapshots.log.reads == 1


def test_without_a_start_a_cut_off_at_or_before_the_logs_first_event_is_refused(tmp_path) -> None:
    events, first = the_log(20)
    for cut in (first, first - DAY_US):
        stamp = Timestamp()
        stamp.FromMicroseconds(cut)
        with pytest.raises(InvalidArgument, match="inside the time range") as refused:
            profile_funnel(pb.ComputeAiplFunnelRequest(driver_cutoff=stamp), _snapshots(tmp_path, events))
        assert refused.value.violations[0].field == "driver_cutoff"
        assert "the log's first event" in refused.value.violations[0].description
