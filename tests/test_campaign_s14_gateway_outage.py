"""Session 14 (issue 6, "a gateway that fails or hangs: retry, then failed, never lost"): with the default settings a
message outlives a gateway outage of minutes (it was FAILED for good after 8-17 seconds: six tries of a 0.5 s
doubling backoff), and the operators hear of a failing gateway and of every message it fails."""

from __future__ import annotations

import logging

from campaign_helpers import PUSH, add_template, campaign_service, deliver, running_gateway, status
from conftest import free_port

from svc_campaign.config import CampaignSettings
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import types_pb2

CUSTOMER = types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value="c1")


def _notice(service) -> pb.Message:  # type: ignore[no-untyped-def]
    return service.send_message(pb.SendMessageRequest(user=CUSTOMER, channel=PUSH, template_id="t1", purpose="service"))


def test_a_gateway_down_for_twenty_minutes_loses_no_message_with_the_defaults(tmp_path, database_url, caplog) -> None:
    with running_gateway() as gateway:
        # The gateway's address, unreachable first: nothing listens there until it comes back.
        down = f"http://127.0.0.1:{free_port()}/deliver"
        with campaign_service(tmp_path, database_url, settings={"gateway_url": down}) as service:
            add_template(service, "t1")
            sent = _notice(service)
            with caplog.at_level(logging.WARNING, logger="qiming.campaign.delivery"):
                for _ in range(12):  # the tries of ~20 minutes of outage: 0.5 + 1 + 2 + ... + 300 s at most
                    deliver(service)
                    service.clock.advance(minutes=5)
            waiting = service.get_message(sent.message_id)
            assert (status(waiting), waiting.attempts) == ("QUEUED", 12), waiting.failure_reason
            failing = [r.getMessage() for r in caplog.records if "channel gateway failing" in r.getMessage()]
            assert failing and failing[0].startswith("channel gateway failing: 1 of 1 deliveries of this round failed")
            service.settings.gateway_url = gateway.url  # the gateway is back
            deliver(service)
            delivered = service.get_message(sent.message_id)
            assert (status(delivered), delivered.attempts) == ("SENT", 13)
            assert len(gateway.requests) == 1


def test_a_message_that_fails_for_good_is_logged(tmp_path, database_url, caplog) -> None:
    dead = f"http://127.0.0.1:{free_port()}/deliver"
    settings = {"gateway_url": dead, "delivery_max_attempts": 2}
    with campaign_service(tmp_path, database_url, settings=settings) as service:
        add_template(service, "t1")
        sent = _notice(service)
        with caplog.at_level(logging.WARNING, logger="qiming.campaign.delivery"):
            deliver(service)
            service.clock.advance(minutes=10)
            deliver(service)
        assert status(service.get_message(sent.message_id)) == "FAILED"
        lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"message {sent.message_id}")]
        assert len(lines) == 1 and "FAILED after 2 attempt(s): ConnectError" in lines[0]


def test_the_default_retries_span_about_half_an_hour_to_an_hour() -> None:
    # The documented span of delivery_max_attempts (docs/campaign.md): the waits between tries, at their ceilings.
    settings = CampaignSettings()
    ceilings = [
        min(settings.delivery_max_backoff_millis, settings.delivery_initial_backoff_millis * 2 ** (n - 1)) / 1000
        for n in range(1, settings.delivery_max_attempts)
    ]
    assert sum(ceilings) / 2 >= 1_600 and sum(ceilings) <= 3_300
