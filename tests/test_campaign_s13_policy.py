"""Session 13 policy-gate fixes: caps count a message on the day (and week) it goes out, quiet hours included; a
product's risk disclosure is literal text and is checked on the rendered message too; prohibited claims are not
hidden by format characters, punctuation or traditional characters; quiet-hour rules with start == end are refused."""

from __future__ import annotations

import datetime as dt

import pytest
from campaign_helpers import EMAIL, PUSH, SMS, add_template, campaign_service, profile, status

from svc_campaign.content import check_template, prohibited_claim
from svc_campaign.policy import cap_bounds, check_quiet_hours, default_policy
from svc_campaign.profiles import InMemoryProfiles
from svc_common.errors import InvalidArgument
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


FUND = pb.ProductRef(product_id="F9", risk_level=2)
SLOGAN_BODY = "新基金首发。{{attribute.slogan|市场有风险，投资需谨慎}}"


def test_risk_disclosure_must_be_literal_text_outside_placeholders(tmp_path) -> None:
    with campaign_service(tmp_path) as service:
        with pytest.raises(InvalidArgument, match="outside any placeholder") as missing:
            add_template(service, "fund", product=FUND, body=SLOGAN_BODY)
        assert missing.value.reason == "MISSING_RISK_DISCLOSURE"
        # Split by a placeholder: a customer with the value reads it with the value in the middle.
        with pytest.raises(InvalidArgument, match="outside any placeholder"):
            add_template(service, "fund", product=FUND, body="新基金首发。市场有风险{{attribute.slogan|}}，投资需谨慎")
        add_template(
            service, "ok", product=FUND, body="{{attribute.nickname|您好}}，新基金首发。市场有风险，投资需谨慎"
        )


def test_a_saved_promotion_without_its_disclosure_is_not_sent(tmp_path, database_url, monkeypatch) -> None:
    """A template stored before the save check (or past it) is refused at send; and the rendered body is checked
    for the disclosure on its own, as the second line of defence."""
    profiles = InMemoryProfiles({c: profile(c, risk="C3", slogan="欢迎选购") for c in ("dp1", "dp2")})
    profiles.put("dp3", profile("dp3", risk="C3"))
    with campaign_service(tmp_path, database_url, profiles=profiles) as service:
        with monkeypatch.context() as patch:
            patch.setattr("svc_campaign.templates.check_template", lambda *a, **k: [])
            add_template(service, "fund", product=FUND, body=SLOGAN_BODY)
        assert send(service, "dp1", "fund", PUSH).suppression_reason == "content_noncompliant"
        # Past the template check too: the rendered body of a customer with a slogan lacks the disclosure.
        monkeypatch.setattr("svc_campaign.policy.PolicyGate._compliant", lambda *a: True)
        message = send(service, "dp2", "fund", EMAIL)
        assert outcome(message) == ("SUPPRESSED", "content_noncompliant")
        assert outcome(send(service, "dp3", "fund", EMAIL)) == QUEUED  # the default carries it


@pytest.mark.parametrize(
    "body",
    [
        "本产品保\u200b本，欢迎咨询",
        "本产品保\u200c本",
        "本产品保\u200d本",
        "本产品保\u2060本",
        "本产品保\ufeff本",
        "本产品保\u00ad本",
        "本产品保、本",
        "本产品保.本",
        "本产品保*本",
        "本产品保·本",
        "本产品保★本",
        "本基金穩賺不賠",
        "保證收益 8%",
        "本金無憂",
        "零風險",
        "guaranteed\u200b returns",
    ],
)
def test_prohibited_claims_are_not_hidden_by_format_characters_punctuation_or_traditional_forms(body) -> None:
    assert prohibited_claim(body) is not None
    assert [f.code for f in check_template(pb.Template(body=body))] != []


def test_hidden_claims_are_refused_at_save_and_on_rendered_text(tmp_path, database_url) -> None:
    profiles = InMemoryProfiles(
        {
            "nk1": profile("nk1", nickname="保\u200b本王"),
            "nk2": profile("nk2", nickname="穩賺哥"),
            "nk3": profile("nk3", nickname="保、本"),
            "nk4": profile("nk4", nickname="小王"),
        }
    )
    with campaign_service(tmp_path, database_url, profiles=profiles) as service:
        for body in ("本产品保\u200b本，欢迎咨询", "穩賺不賠", "保*本"):
            with pytest.raises(InvalidArgument) as refused:
                add_template(service, "bad", body=body)
            assert refused.value.reason == "PROHIBITED_CONTENT", body
        add_template(service, "care", body="{{attribute.nickname|您好}}，本周市场回顾已更新")
        for customer in ("nk1", "nk2", "nk3"):
            assert send(service, customer, "care", PUSH).suppression_reason == "content_noncompliant", customer
        assert outcome(send(service, "nk4", "care", PUSH)) == QUEUED


def test_a_quiet_hours_rule_that_starts_when_it_ends_is_refused() -> None:
    policy = default_policy()
    policy.quiet_hours.add(
        channels=[EMAIL],
        start=pb.TimeOfDay(hour=9, minute=0, timezone="UTC"),
        end=pb.TimeOfDay(hour=9, minute=0),
    )
    with pytest.raises(InvalidArgument, match=r"policy\.quiet_hours\[1\].*00:00-23:59"):
        check_quiet_hours(policy)
    policy.quiet_hours[1].end.hour = 8
    check_quiet_hours(policy)  # 09:00-08:00: all but one hour
    check_quiet_hours(default_policy())


def test_cap_day_and_week_end_at_the_next_local_midnight_across_a_clock_change() -> None:
    policy = default_policy()
    policy.cap_timezone = "America/New_York"  # 2026-11-01 is 25 hours long there
    day_from, day_to, week_from, week_to = cap_bounds(policy, dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC), "UTC")
    assert (day_from, day_to) == (
        dt.datetime(2026, 11, 1, 4, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 2, 5, tzinfo=dt.UTC),
    )
    assert (week_from, week_to) == (dt.datetime(2026, 10, 26, 4, tzinfo=dt.UTC), day_to)


def test_an_extra_phrase_of_no_letters_or_digits_does_not_match_every_text() -> None:
    assert prohibited_claim("新品首发", ["！！", "--"]) is None
    assert check_template(pb.Template(body="新品首发"), ["！！"]) == []
    assert prohibited_claim("新品·首发", ["新品首发"]) == "新品首发"
