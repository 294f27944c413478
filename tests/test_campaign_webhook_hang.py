"""A gateway that hangs (issue 6, bad input): the webhook call times out, the message is retried with the same
idempotency key and sent once the gateway answers; one that never answers ends FAILED after the attempts —
never lost, never marked sent twice."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator

import pytest
from campaign_helpers import PUSH, add_template, campaign_service, deliver

from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import types_pb2

TIMEOUT_SECONDS = 0.5


class HangingGateway:
    """Answers 200, but sleeps first for as many requests as ``hangs`` says (longer than the client waits)."""

    def __init__(self, hangs: int) -> None:
        self.keys: list[str] = []
        self.hangs = hangs
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                gateway.keys.append(self.headers["Idempotency-Key"])
                if len(gateway.keys) <= gateway.hangs:
                    time.sleep(TIMEOUT_SECONDS * 3)
                payload = json.dumps({"gateway_message_id": f"gw-{len(gateway.keys)}"}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up waiting

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/deliver"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateways() -> Iterator[list[HangingGateway]]:
    made: list[HangingGateway] = []
    yield made
    for gateway in made:
        gateway.close()


def send(service) -> pb.Message:
    user = types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value="c1")
    return service.send_message(pb.SendMessageRequest(user=user, channel=PUSH, template_id="t1", is_marketing=True))


def test_a_hanging_gateway_is_retried_with_the_same_key_then_sent_once(tmp_path, gateways) -> None:
    gateways.append(gateway := HangingGateway(hangs=1))
    with campaign_service(tmp_path, settings={"gateway_url": gateway.url}) as service:
        add_template(service)
        message = send(service)
        deliver(service, TIMEOUT_SECONDS)
        waiting = service.get_message(message.message_id)
        assert waiting.status == pb.MESSAGE_STATUS_QUEUED and "Timeout" in waiting.failure_reason
        service.clock.advance(minutes=10)
        deliver(service, TIMEOUT_SECONDS)
        sent = service.get_message(message.message_id)
        assert (sent.status, sent.attempts) == (pb.MESSAGE_STATUS_SENT, 2)
        assert gateway.keys == [message.idempotency_key] * 2  # the gateway can tell the retry from a new message
        service.clock.advance(minutes=10)
        assert deliver(service, TIMEOUT_SECONDS) == 0 and len(gateway.keys) == 2


def test_a_gateway_that_never_answers_fails_the_message_after_the_attempts(tmp_path, gateways) -> None:
    gateways.append(gateway := HangingGateway(hangs=10))
    settings = {"gateway_url": gateway.url, "delivery_max_attempts": 2}
    with campaign_service(tmp_path, settings=settings) as service:
        add_template(service)
        message = send(service)
        deliver(service, TIMEOUT_SECONDS)
        service.clock.advance(minutes=10)
        deliver(service, TIMEOUT_SECONDS)
        failed = service.get_message(message.message_id)
        assert (failed.status, failed.attempts) == (pb.MESSAGE_STATUS_FAILED, 2)
        assert "Timeout" in failed.failure_reason
        service.clock.advance(minutes=10)
        assert deliver(service, TIMEOUT_SECONDS) == 0 and len(gateway.keys) == 2
