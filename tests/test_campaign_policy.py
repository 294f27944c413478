"""The policy gate, in order: consent → suitability → content → frequency caps (with priority) → de-duplication
→ quiet hours (deferred, not dropped). Every suppression is recorded with its reason."""

from __future__ import annotations

import datetime as dt

import pytest
from campaign_helpers import (
    EMAIL,
    IN_APP,
    PUSH,
    SMS,
    T0,
    add_template,
    campaign_service,
    event,
    messages,
    on_event,
    profile,
    run_journey,
    simple_graph,
    status,
    statuses,
)

from svc_campaign.policy import default_policy, quiet_until
from svc_campaign.profiles import InMemoryProfiles
from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import types_pb2


def user(value: str) -> types_pb2.UserRef:
    return types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=value)


def send(
    service, customer: str, template: str, channel: int = PUSH, *, marketing: bool = True, purpose: str = ""
) -> pb.Message:
    return service.send_message(
        pb.SendMessageRequest(
            user=user(customer), channel=channel, template_id=template, is_marketing=marketing, purpose=purpose
        )
    )


def test_opt_out_per_channel_and_purpose_suppresses_marketing_only(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        add_template(service, "promo")
        add_template(service, "notice", body="您的委托已成交")
        service.set_consent(pb.Consent(user=user("c1"), channel=SMS, purpose="*", granted=False, source="sms_reply_TD"))
        service.set_consent(
            pb.Consent(user=user("c1"), channel=0, purpose="fund_promotion", granted=False, source="app_settings")
        )
        assert (status(m := send(service, "c1", "promo", SMS)), m.suppression_reason) == ("SUPPRESSED", "no_consent")
        notice = send(service, "c1", "notice", SMS, marketing=False, purpose="service_notice")
        assert status(notice) == "QUEUED"  # service notices still go
        assert status(send(service, "c1", "promo", PUSH, purpose="fund_promotion")).startswith("SUPP")
        assert status(send(service, "c1", "promo", PUSH, purpose="account_care")) == "QUEUED"
        # A more specific grant wins over the general opt-out.
        service.set_consent(pb.Consent(user=user("c2"), channel=0, purpose="*", granted=False))
        service.set_consent(pb.Consent(user=user("c2"), channel=EMAIL, purpose="*", granted=True))
        assert status(send(service, "c2", "promo", EMAIL)) == "QUEUED"
        assert [c.channel for c in service.get_consent(user("c2"))] == [0, EMAIL]
        suppressed = service.list_messages(
            user="",
            journey_id="",
            channels=[],
            start=None,
            end=None,
            suppressed=True,
            reasons=["no_consent"],
            after=None,
            limit=10,
        )
        assert len(suppressed) == 2


def test_journey_send_falls_back_to_the_next_channel(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        add_template(service, "t1")
        run_journey(service, simple_graph(on_event("signup"), channel=SMS, fallback_channels=[PUSH]))
        service.set_consent(pb.Consent(user=user("c1"), channel=SMS, purpose="*", granted=False))
        service.engine.handle([event("signup", "c1"), event("signup", "c2")])
        assert sorted((m.user.value, m.channel) for m in messages(service)) == [("c1", PUSH), ("c2", SMS)]


def test_suitability_matches_product_risk_to_customer_rating(tmp_path, database_url) -> None:
    profiles = InMemoryProfiles({"c3": profile("c3", risk="C3"), "c4": profile("c4", risk="C4")})
    product = pb.ProductRef(product_id="ADV-7", product_type="advisory", risk_level=4)
    with campaign_service(tmp_path, database_url, profiles=profiles) as service:
        add_template(service, "adv", product=product, body="投顾组合 ADV-7 上新。市场有风险，投资需谨慎")
        assert [
            (status(send(service, c, "adv")), send(service, c, "adv").suppression_reason) for c in ("c3", "c9")
        ] == [
            ("SUPPRESSED", "risk_rating_mismatch"),
            ("SUPPRESSED", "risk_rating_unknown"),
        ]
        assert status(send(service, "c4", "adv")) == "QUEUED"


def test_content_compliance_at_save_and_at_send(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        with pytest.raises(InvalidArgument, match="保本") as prohibited:
            add_template(service, "bad", body="本产品保本保收益，稳赚不赔")
        assert prohibited.value.reason == "PROHIBITED_CONTENT"
        with pytest.raises(InvalidArgument, match="risk disclosure") as missing:
            add_template(service, "fund", product=pb.ProductRef(product_id="F1", risk_level=2), body="新基金 F1 开售")
        assert missing.value.reason == "MISSING_RISK_DISCLOSURE"
        with pytest.raises(InvalidArgument, match="level 3"):
            add_template(service, "leak", body="您的手机号 {{attribute.phone}}")
        check = service.check_content(pb.Template(title="ＧＵＡＲＡＮＴＥＥＤ  returns", body="保 本"))
        assert not check.compliant and {f.field for f in check.findings} == {"title", "body"}
        add_template(service, "ok", body="新品首发，收益可期")
        policy = service.get_policy()
        policy.extra_prohibited_phrases.append("收益可期")
        service.update_policy(policy, policy.version)
        assert send(service, "c1", "ok").suppression_reason == "content_noncompliant"


def test_one_frequency_cap_across_channels_and_journeys(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        for name in "abcdefgh":
            add_template(service, name)
        assert status(send(service, "c1", "a", PUSH)) == "QUEUED"
        assert send(service, "c1", "b", PUSH).suppression_reason == "channel_cap"  # 1 per channel a day
        assert status(send(service, "c1", "b", EMAIL)) == "QUEUED"
        assert (
            send(service, "c1", "c", service_channel := pb.CHANNEL_TYPE_WECOM).suppression_reason == "frequency_cap_day"
        )
        assert service_channel
        notice = send(service, "c1", "d", PUSH, marketing=False, purpose="service")
        assert status(notice) == "QUEUED"  # service notices do not count
        for name in "efg":
            service.clock.advance(days=1, seconds=1)
            assert status(send(service, "c1", name, PUSH)) == "QUEUED", name
        service.clock.advance(days=1, seconds=1)
        assert send(service, "c1", "h", EMAIL).suppression_reason == "frequency_cap_week"  # 5 a week


def test_same_content_across_channels_is_sent_once_in_the_window(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        add_template(service, "same")
        assert status(send(service, "c1", "same", PUSH)) == "QUEUED"
        assert send(service, "c1", "same", EMAIL).suppression_reason == "duplicate_content"
        service.clock.advance(days=1, seconds=1)
        assert status(send(service, "c1", "same", EMAIL)) == "QUEUED"


def test_quiet_hours_defer_sms_to_the_morning(tmp_path, database_url) -> None:
    night = dt.datetime(2026, 11, 23, 14, 30, tzinfo=dt.UTC)  # 22:30 in Shanghai
    assert quiet_until(default_policy(), SMS, night, "Asia/Shanghai") == dt.datetime(2026, 11, 24, 0, 0, tzinfo=dt.UTC)
    assert quiet_until(default_policy(), PUSH, night, "Asia/Shanghai") is None
    with campaign_service(tmp_path, database_url) as service:
        add_template(service, "t1")
        service.clock.set(night)
        message = send(service, "c1", "t1", SMS)
        assert (status(message), message.suppression_reason) == ("DEFERRED", "quiet_hours_deferred")
        assert message.scheduled_at.ToDatetime(tzinfo=dt.UTC) == dt.datetime(2026, 11, 24, 0, 0, tzinfo=dt.UTC)
        check = service.check_contact(pb.CheckContactRequest(user=user("c2"), channel=SMS, is_marketing=True))
        assert not check.allowed and check.suppression_reason == "quiet_hours_deferred" and check.HasField("allowed_at")


def test_a_higher_priority_journey_takes_the_slot_of_an_unsent_lower_one(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url, settings={"gateway_url": ""}) as service:
        add_template(service, "low")
        add_template(service, "high")
        add_template(service, "other")
        run_journey(service, simple_graph(on_event("quote_view"), "low"), "low", priority=1)
        run_journey(service, simple_graph(on_event("quote_view"), "other", channel=EMAIL), "other", priority=1)
        run_journey(service, simple_graph(on_event("abnormal_trade"), "high", channel=SMS), "high", priority=9)
        service.engine.handle([event("quote_view", "c1")])
        service.engine.handle([event("abnormal_trade", "c1", T0 + dt.timedelta(minutes=1))])
        found = {m.template_id: (status(m), m.suppression_reason) for m in messages(service, "c1")}
        assert found["high"] == ("QUEUED", "")
        assert sorted(found[k] for k in ("low", "other")) == [("QUEUED", ""), ("SUPPRESSED", "preempted_by_priority")]
        assert statuses(service, "c1").count(("QUEUED", "")) == 2


def test_caps_hold_within_one_batch_of_many_customers(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        for n, channel in enumerate((PUSH, EMAIL, pb.CHANNEL_TYPE_WECOM)):
            add_template(service, f"t{n}")
            run_journey(service, simple_graph(on_event("quote_view"), f"t{n}", channel=channel), f"j{n}")
        service.set_consent(pb.Consent(user=user("c2"), channel=EMAIL, purpose="*", granted=False))
        service.engine.handle([event("quote_view", "c1"), event("quote_view", "c2"), event("quote_view", "c3")])
        for customer, expected in (
            ("c1", [("QUEUED", ""), ("QUEUED", ""), ("SUPPRESSED", "frequency_cap_day")]),
            ("c2", [("QUEUED", ""), ("SUPPRESSED", "no_consent"), ("QUEUED", "")]),
        ):
            assert sorted(statuses(service, customer)) == sorted(expected), customer
        assert len(messages(service)) == 9


def test_daily_and_weekly_caps_count_calendar_days_in_shanghai_unless_rolling(tmp_path, database_url) -> None:
    """Brokers count "per day" from midnight and "per week" from Monday in Asia/Shanghai: two touches at 23:00 and
    a third at 00:30 the next day is allowed (a rolling 24 h would refuse it); configurable back to rolling."""
    late_monday = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)  # Monday 23:00 in Shanghai
    with campaign_service(tmp_path, database_url) as service:
        assert default_policy().cap_window == pb.CAP_WINDOW_UNSPECIFIED  # = calendar
        for name in "abcdefgh":
            add_template(service, name)
        service.clock.set(late_monday)
        assert status(send(service, "c1", "a", PUSH)) == "QUEUED"
        assert status(send(service, "c1", "b", EMAIL)) == "QUEUED"
        assert send(service, "c1", "c", IN_APP).suppression_reason == "frequency_cap_day"
        service.clock.advance(minutes=90)  # Tuesday 00:30: a new calendar day
        assert status(send(service, "c1", "c", PUSH)) == "QUEUED"
        # Per week from Monday 00:00: two on Monday, two on Tuesday, one on Wednesday; the sixth waits for Monday.
        assert status(send(service, "c1", "d", EMAIL)) == "QUEUED"
        service.clock.advance(days=1)
        assert status(send(service, "c1", "e", PUSH)) == "QUEUED"
        assert send(service, "c1", "f", EMAIL).suppression_reason == "frequency_cap_week"
        service.clock.advance(days=4)  # Sunday 00:30: still the same week
        assert send(service, "c1", "g", PUSH).suppression_reason == "frequency_cap_week"
        service.clock.set(dt.datetime(2026, 11, 29, 16, 0, 1, tzinfo=dt.UTC))  # next Monday 00:00:01 in Shanghai
        assert status(send(service, "c1", "g", PUSH)) == "QUEUED"

        rolling = default_policy()
        rolling.cap_window = pb.CAP_WINDOW_ROLLING
        service.update_policy(rolling, 0)
        service.clock.set(late_monday + dt.timedelta(days=14))
        assert status(send(service, "c2", "a", PUSH)) == "QUEUED"
        assert status(send(service, "c2", "b", EMAIL)) == "QUEUED"
        service.clock.advance(minutes=90)
        assert send(service, "c2", "c", IN_APP).suppression_reason == "frequency_cap_day"  # within 24 h

        in_new_york = default_policy()
        in_new_york.cap_timezone = "America/New_York"  # 23:00 Monday in Shanghai is 10:00 Monday there
        service.update_policy(in_new_york, 0)
        service.clock.advance(days=7)
        assert status(send(service, "c3", "a", PUSH)) == "QUEUED"
        assert status(send(service, "c3", "b", EMAIL)) == "QUEUED"
        service.clock.advance(minutes=90)  # past midnight in Shanghai, still Monday in New York
        assert send(service, "c3", "c", IN_APP).suppression_reason == "frequency_cap_day"
        with pytest.raises(InvalidArgument, match="cap_timezone"):
            in_new_york.cap_timezone = "Nowhere/City"
            service.update_policy(in_new_york, 0)
