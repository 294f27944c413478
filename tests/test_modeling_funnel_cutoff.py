"""The AIPL funnel over profiles estimates its drivers prospectively, over real gRPC with real svc_collect and
svc_profile processes: a cut-off splits the time range, features come from the events before it, and a transition's
outcome is whether a customer in the earlier stage at the cut-off reaches the next stage by the range's end.

The simulation plants a webinar (before the cut-off) that raises the chance of a later purchase, and holdings viewed
after a purchase (which follow the conversion and cause nothing). Measured at the range's end, as before, holdings
views were the top driver of interest → purchase; at the cut-off they are not a driver, the webinar is."""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest
from collect_helpers import make_event
from google.protobuf.timestamp_pb2 import Timestamp
from profile_helpers import collect_and_profile

from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_common.pb.qiming.modeling.v1 import modeling_pb2_grpc as pb_grpc
from svc_common.process import ServerProcess

DAY_US = 86_400_000_000
START_US = (time.time_ns() // 1000 // DAY_US - 90) * DAY_US  # the range: 60 days, ended 30 days ago
END_US = START_US + 60 * DAY_US
CUTOFF_US = START_US + 30 * DAY_US  # the default for this range: 30 days before its end
CUSTOMERS = 900
HOURS_US = 3_600_000_000


def at(us: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMicroseconds(us)
    return stamp


def the_log(seed: int = 11) -> list:
    rng = np.random.default_rng(seed)
    events = []

    def day(low: float, high: float) -> int:
        return int(rng.uniform(low, high) * DAY_US)

    for i in range(CUSTOMERS):
        c = f"w{i:04d}"
        events.append(make_event("login", c, occurred_at_us=START_US + day(1, 20)))
        if rng.random() < 0.9:
            events.append(make_event("fund_view", c, occurred_at_us=START_US + day(2, 25), product_category="fund"))
        webinars = int(rng.integers(0, 4))
        for _ in range(webinars):
            events.append(make_event("webinar", c, occurred_at_us=START_US + day(1, 28)))
        for _ in range(int(rng.integers(0, 4))):  # holdings looked at before the cut-off: no effect on buying
            events.append(make_event("holding_view", c, occurred_at_us=START_US + day(1, 28)))
        early = rng.random() < 0.1
        bought_at = None
        if early:  # bought before the cut-off: already in PURCHASE there, not at risk
            bought_at = START_US + day(26, 28)
        elif rng.random() < 0.1 + 0.2 * webinars:  # the webinar causes a later purchase
            bought_at = CUTOFF_US + day(1, 25)
        if bought_at is not None:
            events.append(make_event("trade_filled", c, occurred_at_us=bought_at, product_type="fund"))
            for k in range(4):  # after buying, a customer looks at the holding: follows the conversion
                events.append(make_event("holding_view", c, occurred_at_us=bought_at + (k + 1) * HOURS_US))
    return events


@pytest.fixture(scope="module")
def funnels(tmp_path_factory):
    work = tmp_path_factory.mktemp("funnel_cutoff")
    with collect_and_profile(work, the_log()) as (collect, profile):
        modeling_env = {
            "QIMING_MODELING_PROFILE_ADDRESS": profile.address,
            "QIMING_MODELING_COLLECT_ADDRESS": collect.address,
        }
        with (
            ServerProcess("modeling", work_dir=work / "modeling", env=modeling_env) as modeling,
            grpc.insecure_channel(modeling.address) as channel,
        ):
            yield pb_grpc.FunnelServiceStub(channel)


def funnel(stub: pb_grpc.FunnelServiceStub, **fields) -> pb.ComputeAiplFunnelResponse:
    window = types_pb2.TimeRange(start=at(START_US), end=at(END_US))
    return stub.ComputeAiplFunnel(pb.ComputeAiplFunnelRequest(time_range=window, **fields), timeout=300)


def test_drivers_come_from_before_the_cut_off_and_conversions_after_it(funnels) -> None:
    answer = funnel(funnels, driver_cutoff=at(CUTOFF_US))
    assert answer.driver_cutoff.ToMicroseconds() == CUTOFF_US
    interest = answer.transitions[1]
    assert (interest.from_stage, interest.to_stage) == (pb.AIPL_STAGE_INTEREST, pb.AIPL_STAGE_PURCHASE)
    # at risk: interested at the cut-off and not yet bought (the early buyers are not); converted: bought after it
    assert 600 < interest.at_cutoff < 800 and 0 < interest.converted_after_cutoff < interest.at_cutoff
    assert not interest.drivers_note
    drivers = {d.factor: d for d in interest.drivers}
    top = interest.drivers[0]
    assert top.factor.startswith("count.webinar."), [d.factor for d in interest.drivers]
    assert 0 < top.effect.ci_low < 0.2 < top.effect.ci_high, top.effect
    # what follows the purchase is not a driver: holdings viewed before the cut-off are unrelated to buying
    for name, driver in drivers.items():
        if name.startswith("count.holding_view."):
            assert driver.effect.ci_low < 0 < driver.effect.ci_high, (name, driver.effect)
    # the stage counts are still at the range's end
    # the stage counts are still at the range's end: the interested there are those at risk at the cut-off and the
    # early buyers, who are in PURCHASE at the end with those who converted after the cut-off
    early_buyers = answer.stages[2].customers - interest.converted_after_cutoff
    assert early_buyers > 0 and answer.stages[1].customers == interest.at_cutoff + early_buyers
    # without a cut-off: the default for a 60-day range is 30 days before its end, the same answer
    default = funnel(funnels)
    assert default.driver_cutoff.ToMicroseconds() == CUTOFF_US
    assert [d.factor for d in default.transitions[1].drivers] == [d.factor for d in interest.drivers]


def test_a_transition_without_enough_customers_at_the_cut_off_says_why(funnels) -> None:
    answer = funnel(funnels, driver_cutoff=at(CUTOFF_US))
    loyalty = answer.transitions[2]
    assert not loyalty.drivers and loyalty.at_cutoff < 100
    assert "at least 50 are needed" in loyalty.drivers_note or "reached LOYALTY" in loyalty.drivers_note


def test_bad_cut_offs_are_refused(funnels) -> None:
    for cutoff in (START_US, START_US - DAY_US, END_US, END_US + DAY_US):
        with pytest.raises(grpc.RpcError) as refused:
            funnel(funnels, driver_cutoff=at(cutoff))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "driver_cutoff" in refused.value.details()
    # half a day into the range nobody has logged in yet: no stage has customers at the cut-off
    with pytest.raises(grpc.RpcError) as early:
        funnel(funnels, driver_cutoff=at(START_US + DAY_US // 2))
    assert early.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "move driver_cutoff later" in early.value.details() and "0 in AIPL_STAGE_AWARENESS" in early.value.details()
    # a dataset is one snapshot: no cut-off
    with pytest.raises(grpc.RpcError) as dataset:
        funnels.ComputeAiplFunnel(
            pb.ComputeAiplFunnelRequest(driver_dataset_id="any", driver_cutoff=at(CUTOFF_US)), timeout=30
        )
    assert dataset.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "driver cut-off" in dataset.value.details()
