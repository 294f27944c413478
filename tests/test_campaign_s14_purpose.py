"""Session 14 (issue 6, PIPL consent): a one-off ``SendMessage`` or ``CheckContact`` left at ``is_marketing = false``
(the proto3 default) with a marketing purpose is INVALID_ARGUMENT naming ``is_marketing``: before, it went out as a
service notice and reached customers who had opted out. A service purpose (``service``, ``service_*``) may send
service notices, which still pass suitability and content rules."""

from __future__ import annotations

import grpc
import pytest
from campaign_helpers import PUSH, SMS, add_template, campaign_service, messages, profile, status
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from test_campaign_review12_grpc import serving  # the servicers behind the server kit, on a loop in a thread

from svc_campaign.profiles import InMemoryProfiles
from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.campaign.v1 import campaign_pb2_grpc as pb_grpc
from svc_common.pb.qiming.common.v1 import types_pb2

REASON = "SERVICE_SEND_IN_MARKETING_PURPOSE"


def user(value: str) -> types_pb2.UserRef:
    return types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=value)


def _opted_out(service, customer: str = "c1") -> None:  # type: ignore[no-untyped-def]
    service.set_consent(pb.Consent(user=user(customer), channel=0, purpose="*", granted=False, source="app_settings"))


@pytest.mark.parametrize("purpose", ["", "marketing", "fund_promotion", "services", "notice_service"])
def test_a_send_without_is_marketing_needs_a_service_purpose(tmp_path, database_url, purpose) -> None:
    with campaign_service(tmp_path, database_url) as service:
        add_template(service)
        _opted_out(service)
        request = pb.SendMessageRequest(user=user("c1"), channel=PUSH, template_id="t1", purpose=purpose)
        with pytest.raises(InvalidArgument) as raised:
            service.send_message(request)
        error = raised.value
        assert error.reason == REASON
        assert [(v.field, v.reason) for v in error.violations] == [("is_marketing", REASON)]
        assert error.message.startswith("is_marketing: false (the default) makes this a service notice")
        assert "set is_marketing = true for a marketing message, or purpose = 'service'" in error.message
        assert messages(service, "c1") == []  # nothing reached the outbox, not even a suppression
        check = pb.CheckContactRequest(user=user("c1"), channel=PUSH, purpose=purpose)
        with pytest.raises(InvalidArgument) as checked:
            service.check_contact(check)
        assert checked.value.reason == REASON and checked.value.violations[0].field == "is_marketing"


def test_marketing_is_suppressed_for_an_opted_out_customer_and_a_service_notice_goes(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        add_template(service)
        _opted_out(service)
        marketing = service.send_message(
            pb.SendMessageRequest(user=user("c1"), channel=PUSH, template_id="t1", is_marketing=True)
        )
        assert (status(marketing), marketing.suppression_reason) == ("SUPPRESSED", "no_consent")
        for n, purpose in enumerate(("service", "service_notice", " Service_Trade ")):
            notice = service.send_message(
                pb.SendMessageRequest(
                    user=user("c1"), channel=SMS, template_id="t1", purpose=purpose, idempotency_key=f"k{n}"
                )
            )
            assert status(notice) in ("QUEUED", "DEFERRED") and not notice.is_marketing, purpose
            check = service.check_contact(pb.CheckContactRequest(user=user("c1"), channel=PUSH, purpose=purpose))
            assert check.allowed, purpose
        # is_marketing = true with a service purpose is marketing all the same (stricter, allowed).
        check = service.check_contact(
            pb.CheckContactRequest(user=user("c1"), channel=PUSH, purpose="service", is_marketing=True)
        )
        assert (check.allowed, check.suppression_reason) == (False, "no_consent")


def test_a_service_notice_still_passes_suitability_and_content_rules(tmp_path, database_url) -> None:
    profiles = InMemoryProfiles({"c-rated": profile("c-rated", risk="C5"), "c-low": profile("c-low", risk="C1")})
    with campaign_service(tmp_path, database_url, profiles=profiles) as service:
        fund = pb.ProductRef(product_id="F1", risk_level=3)
        add_template(service, "fund", channel=PUSH, product=fund, body="新基金 F1 开售。市场有风险，投资需谨慎")
        add_template(service, "nick", channel=PUSH, body="{{attribute.nickname|您好}}，您的委托已成交")
        reasons = {}
        for customer in ("c-unknown", "c-low", "c-rated"):
            request = pb.SendMessageRequest(user=user(customer), channel=PUSH, template_id="fund", purpose="service")
            reasons[customer] = service.send_message(request).suppression_reason
        assert reasons == {"c-unknown": "risk_rating_unknown", "c-low": "risk_rating_mismatch", "c-rated": ""}
        profiles.put("c-nick", profile("c-nick", risk="C3", nickname="保本哥"))
        notice = service.send_message(
            pb.SendMessageRequest(user=user("c-nick"), channel=PUSH, template_id="nick", purpose="service_notice")
        )
        assert (status(notice), notice.suppression_reason) == ("SUPPRESSED", "content_noncompliant")


def test_send_message_over_grpc_names_the_field_and_the_reason(tmp_path) -> None:
    with campaign_service(tmp_path) as service, serving(service) as (channel, _audit):
        add_template(service)
        delivery = pb_grpc.DeliveryServiceStub(channel)
        policy = pb_grpc.PolicyServiceStub(channel)
        for call in (
            lambda: delivery.SendMessage(pb.SendMessageRequest(user=user("c1"), channel=PUSH, template_id="t1")),
            lambda: policy.CheckContact(pb.CheckContactRequest(user=user("c1"), channel=PUSH)),
        ):
            with pytest.raises(grpc.RpcError) as raised:
                call()
            error = raised.value
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert error.details() == (
                "is_marketing: false (the default) makes this a service notice, which skips consent, frequency caps,"
                " de-duplication and quiet hours and reaches customers who opted out, but its purpose '' (the default,"
                " marketing) is marketing: set is_marketing = true for a marketing message, or purpose = 'service' (or"
                " 'service_...') for a service notice"
            )
            info, bad_request = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
            details = rpc_status.from_call(error).details
            assert details[0].Unpack(info) and details[1].Unpack(bad_request)
            assert info.reason == REASON
            assert [v.field for v in bad_request.field_violations] == ["is_marketing"]
        sent = delivery.SendMessage(
            pb.SendMessageRequest(user=user("c1"), channel=PUSH, template_id="t1", purpose="service")
        ).message
        assert sent.status == pb.MESSAGE_STATUS_QUEUED
