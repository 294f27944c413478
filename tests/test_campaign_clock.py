"""Clock jumps (issue 6, bad input): the clock moving forward (a suspended VM, an NTP step) fires every due timer
once and delivers every deferred message once; moving back fires nothing again, re-opens no frequency cap or
de-duplication window, and a timer that was not due yet waits for its time again."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from campaign_helpers import (
    PUSH,
    SMS,
    T0,
    Gateway,
    add_template,
    campaign_service,
    deliver,
    event,
    messages,
    on_event,
    run_journey,
    running_gateway,
    simple_graph,
    status,
    wait_then_send,
)

from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import types_pb2


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    with running_gateway() as server:
        yield server


def test_a_forward_jump_fires_every_due_timer_once(tmp_path) -> None:
    with campaign_service(tmp_path) as service:
        add_template(service)
        run_journey(service, wait_then_send(3600))
        service.engine.handle([event("signup", f"c{i}") for i in range(5)])
        assert service.engine.pending_timers() == 5
        service.clock.advance(days=3)  # the machine slept through all of them
        assert service.engine.fire_due_timers().timers_fired == 5
        assert service.engine.fire_due_timers().timers_fired == 0
        assert sorted(m.user.value for m in messages(service)) == [f"c{i}" for i in range(5)]
        assert service.engine.pending_timers() == 0


def test_a_backward_jump_sends_nothing_twice_and_early_timers_wait_again(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        add_template(service)
        run_journey(service, wait_then_send(3600))
        service.engine.handle([event("signup", "c1")])
        service.clock.advance(minutes=30)
        service.engine.handle([event("signup", "c2", T0 + dt.timedelta(minutes=30))])
        service.clock.advance(minutes=31)  # c1's timer is due, c2's is not
        assert service.engine.fire_due_timers().timers_fired == 1
        service.clock.set(T0 - dt.timedelta(hours=2))  # NTP steps the clock back two hours
        assert service.engine.fire_due_timers().timers_fired == 0
        assert [m.user.value for m in messages(service)] == ["c1"]
        service.clock.set(T0 + dt.timedelta(minutes=89))  # c2's timer is still not due (T0 + 90 min)
        assert service.engine.fire_due_timers().timers_fired == 0
        service.clock.set(T0 + dt.timedelta(minutes=91))
        assert service.engine.fire_due_timers().timers_fired == 1
        assert sorted(m.user.value for m in messages(service)) == ["c1", "c2"]
        assert service.engine.pending_timers() == 0


def test_a_backward_jump_does_not_reopen_caps_or_the_dedup_window(tmp_path, database_url) -> None:
    def send(customer: str, template: str, channel: int) -> pb.Message:
        user = types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=customer)
        return service.send_message(
            pb.SendMessageRequest(user=user, channel=channel, template_id=template, is_marketing=True)
        )

    with campaign_service(tmp_path, database_url) as service:
        add_template(service, "a")
        add_template(service, "b")
        assert status(send("c1", "a", PUSH)) == "QUEUED"
        service.clock.set(T0 - dt.timedelta(hours=3))  # the touch above now lies "in the future"
        second = send("c1", "b", PUSH)
        assert (status(second), second.suppression_reason) == ("SUPPRESSED", "channel_cap")
        again = send("c1", "a", pb.CHANNEL_TYPE_EMAIL)  # the same content on another channel
        assert status(again) == "SUPPRESSED" and again.suppression_reason in {"duplicate_content", "frequency_cap_day"}


def test_a_forward_jump_past_quiet_hours_delivers_the_deferred_message_once(tmp_path, gateway: Gateway) -> None:
    night = dt.datetime(2026, 11, 23, 14, 30, tzinfo=dt.UTC)  # 22:30 in Shanghai: SMS waits for 08:00
    with campaign_service(tmp_path, settings={"gateway_url": gateway.url}) as service:
        add_template(service, "t1")
        service.clock.set(night)
        run_journey(service, simple_graph(on_event("signup"), channel=SMS))
        service.engine.handle([event("signup", "c1", night)])
        assert deliver(service) == 0 and status(messages(service)[0]) == "DEFERRED"
        # Far past the morning it waited for: 14:30 Shanghai two days later (not a night: quiet hours hold at
        # delivery too, so a jump to 22:30 would defer it again).
        service.clock.set(night + dt.timedelta(days=2, hours=-8))
        assert deliver(service) == 1
        assert deliver(service) == 0
        assert [status(m) for m in messages(service)] == ["SENT"] and len(gateway.requests) == 1
