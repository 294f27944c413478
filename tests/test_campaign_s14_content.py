"""Content compliance (session 14, review F12 and F14): prohibited claims in mixed traditional and simplified
characters, variant characters, accented Latin and common synonyms are found; the risk disclosures that deny a
guarantee are not claims; a customer's or event's braces cannot reach a gateway as a template of its own."""

from __future__ import annotations

import pytest
from campaign_helpers import PUSH, add_template, campaign_service, profile, status

from svc_campaign.content import check_template, discloses_risk, prohibited_claim
from svc_campaign.profiles import InMemoryProfiles
from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import types_pb2

BYPASSES = [
    # Mixed simplified and traditional characters.
    "本基金稳賺不赔",
    "本基金穩赚不赔",
    "零風险理财",
    "零风險理财",
    "无風险套利",
    # A variant character (夲 for 本) and the Japanese forms of 穩 and 險.
    "保夲理财",
    "穏赚不赔",
    "零风険",
    # Accented Latin.
    "rísk-free returns",
    "Guaranteéd return",
    # Synonyms.
    "保障本金，安心投资",
    "本金保障型产品",
    "100%保障本金",
    "保证本息",
    "收益有保证",
    "zero risk",
    "we guarantee returns",
    # The traditional whole phrases the list used to spell out (now found by folding).
    "保證收益",
    "承諾收益",
    "穩賺不賠",
    "只賺不賠",
    "隻賺不賠",
    "包賺",
    "零風險",
    "無風險",
    "剛性兌付",
    "本金無憂",
    "絕對收益",
    # A double negation of a disclosure is a claim again; denying risk is never a disclosure.
    "并非不保本",
    "并非无风险",
]

DISCLOSURES = [
    "投资有风险",
    "市场有风险，投资需谨慎",
    "市場有風險，投資需謹慎",
    "本产品不保证收益",
    "本产品为非保本浮动收益型理财产品",
    "基金管理人不保证基金一定盈利，也不保证最低收益",
    "不承诺保本和最低收益",
    "理财非存款，产品有风险，投资须谨慎",
    "Investing involves risk; returns are not guaranteed.",
]


@pytest.mark.parametrize("body", BYPASSES)
def test_a_prohibited_claim_in_other_characters_or_words_is_found(body: str) -> None:
    assert prohibited_claim(body) is not None, body
    assert "prohibited_claim" in [f.code for f in check_template(pb.Template(body=body))]


@pytest.mark.parametrize("body", DISCLOSURES)
def test_a_risk_disclosure_is_not_a_claim(body: str) -> None:
    assert prohibited_claim(body) is None, body
    assert check_template(pb.Template(body=body)) == []


def test_a_traditional_risk_disclosure_carries_the_default_disclosure() -> None:
    template = pb.Template(
        body="新基金开售。市場有風險，投資需謹慎", product=pb.ProductRef(product_id="f1", risk_level=2)
    )
    assert discloses_risk(template) and check_template(template) == []


def test_bypasses_are_refused_at_save_and_disclosures_saved(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        for i, body in enumerate(("稳賺不赔", "保夲理财", "rísk-free", "收益有保证")):
            with pytest.raises(InvalidArgument) as refused:
                add_template(service, f"bad{i}", body=body)
            assert refused.value.reason == "PROHIBITED_CONTENT", body
        add_template(service, "ok", body="本产品不保证收益。市场有风险，投资需谨慎")


def _user(customer: str) -> types_pb2.UserRef:
    return types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=customer)


def test_braces_in_a_customers_or_events_value_never_reach_the_sent_text(tmp_path, database_url) -> None:
    profiles = InMemoryProfiles({"br1": profile("br1", nickname="{{attribute.phone}} {% raw %} ${x}")})
    with campaign_service(tmp_path, database_url, profiles=profiles) as service:
        add_template(service, "hello", body="您好{{attribute.nickname}}，{{event.note|}}本周市场回顾已更新")
        request = pb.SendMessageRequest(user=_user("br1"), channel=PUSH, template_id="hello", purpose="service")
        request.event_properties["note"].string_value = "{{attribute.id_number}}"
        message = service.send_message(request)
        assert status(message) == "QUEUED", message.suppression_reason
        # Filled in once, never expanded; the braces are full-width, so a gateway's templating cannot expand them.
        assert "{" not in message.body and "}" not in message.body, message.body
        assert (
            message.body
            == "您好｛｛attribute.phone｝｝ ｛% raw %｝ $｛x｝，｛｛attribute.id_number｝｝本周市场回顾已更新"
        )
        rendered = service.render_template(
            pb.RenderTemplateRequest(template_id="hello", user=_user("br1"), event_properties=request.event_properties)
        )
        assert rendered.body == message.body


def test_a_default_that_makes_a_double_brace_is_refused() -> None:
    # As written "{" + a placeholder; at its default "{{": it would reach a customer without the value as written.
    findings = check_template(pb.Template(body="您好{{{attribute.nickname|{}}，新品上市"))
    assert [f.code for f in findings] == ["unknown_placeholder"]
    assert check_template(pb.Template(body="您好{{{attribute.nickname|客户}}，新品上市")) == []


def test_an_event_property_timestamp_out_of_range_names_its_property(tmp_path, database_url) -> None:
    """A client that put epoch milliseconds in ``seconds``: INVALID_ARGUMENT naming the property (it was INTERNAL)."""
    profiles = InMemoryProfiles({"ts1": profile("ts1")})
    with campaign_service(tmp_path, database_url, profiles=profiles) as service:
        add_template(service, "when", body="您好，本周市场回顾已更新{{event.at|}}")
        properties = {"at": types_pb2.Value()}
        properties["at"].timestamp_value.seconds = 2**40
        for call in (
            lambda: service.send_message(
                pb.SendMessageRequest(
                    user=_user("ts1"), channel=PUSH, template_id="when", purpose="service", event_properties=properties
                )
            ),
            lambda: service.render_template(
                pb.RenderTemplateRequest(template_id="when", user=_user("ts1"), event_properties=properties)
            ),
        ):
            with pytest.raises(InvalidArgument) as refused:
                call()
            assert refused.value.violations[0].field == "event_properties[at]"


def test_out_of_range_request_timestamps_name_their_field(tmp_path, database_url) -> None:
    """Report ranges, a receipt's time, a journey's window: INVALID_ARGUMENT naming the field (they were INTERNAL)."""
    from google.protobuf.timestamp_pb2 import Timestamp

    from svc_common.timestamps import range_datetimes as _range

    far = Timestamp(seconds=2**40)  # epoch milliseconds put in seconds
    with pytest.raises(InvalidArgument) as refused:
        _range(types_pb2.TimeRange(start=far))
    assert refused.value.violations[0].field == "time_range.start"
    with campaign_service(tmp_path, database_url) as service:
        receipt = pb.ReportDeliveryReceiptRequest(message_id="m1", status=pb.MESSAGE_STATUS_DELIVERED, at=far)
        with pytest.raises(InvalidArgument) as refused:
            service.report_receipt(receipt)
        assert refused.value.violations[0].field == "at"
        journey = pb.Journey(journey_id="j_far", name="far", end_at=far)
        with pytest.raises(InvalidArgument) as refused, service.db.connection(write=True) as conn:
            service.journeys.create(conn, journey, service.clock.now())
        assert refused.value.violations[0].field == "journey.end_at"
