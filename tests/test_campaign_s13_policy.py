"""Session 13 policy-gate fixes: caps count a message on the day (and week) it goes out, quiet hours included; a
product's risk disclosure is literal text and is checked on the rendered message too; prohibited claims are not
hidden by format characters, punctuation or traditional characters; quiet-hour rules with start == end are refused."""

from __future__ import annotations

import datetime as dt

from campaign_helpers import EMAIL, PUSH, SMS, add_template, campaign_service, status

from svc_campaign.policy import default_policy
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import types_pb2

# Sunday 2026-11-29 22:00 in Shanghai: SMS is in the default quiet hours (21:00-08:00) until Monday 08:00, which
# starts a new day and a new week.
SUNDAY_NIGHT = dt.datetime(2026, 11, 29, 14, 0, tzinfo=dt.UTC)
MONDAY_MORNING = dt.datetime(2026, 11, 30, 0, 30, tzinfo=dt.UTC)  # 08:30 in Shanghai
MONDAY_8 = dt.datetime(2026, 11, 30, 0, 0, tzinfo=dt.UTC)


def user(value: str) -> types_pb2.UserRef:
    return types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=value)


def send(service, customer: str, template: str, channel: int) -> pb.Message:
    return service.send_message(
        pb.SendMessageRequest(user=user(customer), channel=channel, template_id=template, is_marketing=True)
    )


def outcome(message: pb.Message) -> tuple[str, str]:
    return status(message), message.suppression_reason


DEFERRED = ("DEFERRED", "quiet_hours_deferred")
QUEUED = ("QUEUED", "")


def test_a_message_deferred_to_tomorrow_does_not_use_todays_day_cap(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        for name in "abcde":
            add_template(service, name)
        service.clock.set(SUNDAY_NIGHT)
        held = send(service, "c1", "a", SMS)
        assert outcome(held) == DEFERRED and held.scheduled_at.ToDatetime(tzinfo=dt.UTC) == MONDAY_8
        assert outcome(send(service, "c1", "b", PUSH)) == QUEUED
        assert outcome(send(service, "c1", "c", EMAIL)) == QUEUED  # today's second touch: the SMS is Monday's
        # Monday: the SMS is one of Monday's two touches.
        service.clock.set(MONDAY_MORNING)
        assert outcome(send(service, "c1", "d", PUSH)) == QUEUED
        assert send(service, "c1", "e", EMAIL).suppression_reason == "frequency_cap_day"


def test_a_touch_deferred_to_tomorrow_is_judged_by_tomorrows_day_cap(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        for name in "abcde":
            add_template(service, name)
        service.clock.set(SUNDAY_NIGHT)
        assert outcome(send(service, "c1", "a", PUSH)) == QUEUED
        assert outcome(send(service, "c1", "b", EMAIL)) == QUEUED
        check = service.check_contact(pb.CheckContactRequest(user=user("c1"), channel=SMS, is_marketing=True))
        assert (check.allowed, check.suppression_reason) == (False, "quiet_hours_deferred")
        assert check.allowed_at.ToDatetime(tzinfo=dt.UTC) == MONDAY_8
        assert outcome(send(service, "c1", "c", SMS)) == DEFERRED  # Monday has room: deferred, not suppressed
        # Still today: a third touch sent now is refused by today's cap.
        check = service.check_contact(pb.CheckContactRequest(user=user("c1"), channel=PUSH, is_marketing=True))
        assert (check.allowed, check.suppression_reason) == (False, "channel_cap")
        service.clock.set(MONDAY_MORNING)
        assert outcome(send(service, "c1", "d", PUSH)) == QUEUED
        assert send(service, "c1", "e", EMAIL).suppression_reason == "frequency_cap_day"


def test_channel_cap_counts_the_day_a_held_message_goes_out(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        for name in "abc":
            add_template(service, name)
        service.clock.set(SUNDAY_NIGHT - dt.timedelta(hours=2))  # Sunday 20:00: not quiet
        assert outcome(send(service, "c1", "a", SMS)) == QUEUED
        service.clock.set(SUNDAY_NIGHT)
        assert outcome(send(service, "c1", "b", SMS)) == DEFERRED  # Monday's first SMS
        service.clock.set(MONDAY_MORNING)
        assert send(service, "c1", "c", SMS).suppression_reason == "channel_cap"


def test_weekly_cap_across_a_sunday_to_monday_deferral(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        policy = default_policy()
        policy.max_marketing_per_day = 10
        policy.max_marketing_per_week = 2
        service.update_policy(policy, 0)
        for name in "abcdef":
            add_template(service, name)
        service.clock.set(SUNDAY_NIGHT)
        # c1: the week is full on Sunday; an SMS held to Monday is judged by next week's cap.
        assert outcome(send(service, "c1", "a", PUSH)) == QUEUED
        assert outcome(send(service, "c1", "b", EMAIL)) == QUEUED
        assert outcome(send(service, "c1", "c", SMS)) == DEFERRED
        # c2: an SMS held to Monday does not use one of this week's slots.
        assert outcome(send(service, "c2", "a", SMS)) == DEFERRED
        assert outcome(send(service, "c2", "b", PUSH)) == QUEUED
        assert outcome(send(service, "c2", "c", EMAIL)) == QUEUED
        service.clock.set(MONDAY_MORNING)
        assert outcome(send(service, "c2", "d", PUSH)) == QUEUED
        assert send(service, "c2", "e", EMAIL).suppression_reason == "frequency_cap_week"
