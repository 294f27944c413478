"""Exactly once across crashes, with real processes: svc_campaign is killed (SIGKILL) while customers wait
on timers and while events arrive; after each restart every due timer fires once and every event takes
effect once (one message per customer, never two)."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from campaign_helpers import PUSH, Gateway, event, node, on_event
from collect_helpers import KEYRING

from svc_common.logclient import CollectClient
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.campaign.v1 import campaign_pb2_grpc as pb_grpc
from svc_common.process import ServerProcess

USERS = 30


def _publish(address: str, events) -> None:
    async def go() -> None:
        client = CollectClient(address)
        try:
            assert (await client.publish(events)).accepted_count == len(events)
        finally:
            await client.close()

    asyncio.run(go())


def _collect_and_campaign(tmp_path, gateway: Gateway, env: dict[str, str]) -> tuple[ServerProcess, ServerProcess]:
    """svc_collect, then svc_campaign following its log and delivering to ``gateway`` (settings ``env`` on top)."""
    collect = ServerProcess(
        "collect", work_dir=tmp_path / "collect", env={"QIMING_COLLECT_KEYRING_JSON": KEYRING}
    ).start()
    env = {
        "QIMING_CAMPAIGN_COLLECT_ADDRESS": collect.address,
        "QIMING_CAMPAIGN_GATEWAY_URL": gateway.url,
        "QIMING_CAMPAIGN_DELIVERY_POLL_MILLIS": "50",
        "QIMING_CAMPAIGN_KEYRING_JSON": KEYRING,
        **env,
    }
    return collect, ServerProcess("campaign", work_dir=tmp_path / "campaign", env=env).start()


def _report(address: str) -> pb.GetJourneyReportResponse:
    with grpc.insecure_channel(address) as channel:
        return pb_grpc.JourneyServiceStub(channel).GetJourneyReport(
            pb.GetJourneyReportRequest(journey_id="wait"), timeout=10
        )


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_killed_and_restarted_fires_each_timer_once(tmp_path, backend: str, request: pytest.FixtureRequest) -> None:
    gateway = Gateway()
    env = {"QIMING_CAMPAIGN_TIMER_POLL_MILLIS": "50", "QIMING_CAMPAIGN_LOG_BATCH_SIZE": "7"}
    if backend == "postgresql":
        env["QIMING_CAMPAIGN_DATABASE_URL"] = request.getfixturevalue("database_url_postgresql")
    collect, campaign = _collect_and_campaign(tmp_path, gateway, env)
    graph = pb.JourneyGraph(
        entry_node_id="start",
        nodes=[
            node("start", trigger=pb.TriggerNode(trigger=on_event("signup"), next_node_id="wait")),
            node("wait", wait=pb.WaitNode(duration_seconds=4, next_node_id="send")),
            node("send", send=pb.SendNode(channel=PUSH, template_id="hello", next_node_id="end", is_marketing=True)),
            node("end", exit=pb.ExitNode()),
        ],
    )
    try:
        with grpc.insecure_channel(campaign.address) as channel:
            templates = pb_grpc.TemplateServiceStub(channel)
            journeys = pb_grpc.JourneyServiceStub(channel)
            templates.CreateTemplate(
                pb.CreateTemplateRequest(template=pb.Template(template_id="hello", name="hello", body="hi")), timeout=10
            )
            journeys.CreateJourney(
                pb.CreateJourneyRequest(journey=pb.Journey(journey_id="wait", name="wait", draft=graph)), timeout=10
            )
            journeys.PublishJourney(pb.PublishJourneyRequest(journey_id="wait"), timeout=10)
            journeys.StartJourney(pb.StartJourneyRequest(journey_id="wait"), timeout=10)
        time.sleep(2.5)  # the engine picks the running journey up
        _publish(collect.address, [event("signup", f"u{i}", time_now()) for i in range(USERS // 2)])
        _wait_for(lambda: _report(campaign.address).entered == USERS // 2)
        campaign.kill()  # timers pending, nothing sent yet
        _publish(collect.address, [event("signup", f"u{i}", time_now()) for i in range(USERS // 2, USERS)])
        time.sleep(4.5)  # the first timers are due while the service is down
        campaign.start()
        _wait_for(lambda: _report(campaign.address).entered == USERS)
        time.sleep(1.0)
        campaign.kill()  # again, in the middle of firing and delivering
        campaign.start()
        _wait_for(lambda: {n.node_id: n.sent for n in _report(campaign.address).nodes}.get("send") == USERS)
        _wait_for(lambda: len({key for key, _ in gateway.requests}) == USERS)
        time.sleep(1.0)
        report = _report(campaign.address)
        nodes = {n.node_id: n for n in report.nodes}
        assert report.entered == USERS and nodes["send"].sent == USERS and nodes["wait"].waiting == 0
        customers = [body["customer_id"] for _, body in gateway.requests]
        # Each customer got one message; a delivery cut by the kill may be retried with the same key.
        assert sorted(set(customers)) == sorted(f"u{i}" for i in range(USERS))
        assert len({key for key, _ in gateway.requests}) == USERS
    finally:
        campaign.kill()
        collect.terminate()
        gateway.close()


def time_now():
    import datetime as dt

    return dt.datetime.now(dt.UTC)


def test_after_a_restart_timers_wait_for_the_events_that_arrived_meanwhile(tmp_path) -> None:
    """Session 17 walk (walkcamp, major): at a restart the timer loop fired every due timer before the log follower
    read the events that arrived while svc_campaign was down: customers whose awaited deposit was in the log, well
    inside the window, got the timeout's "you didn't" message. Timers now wait until the follower has read the log
    to its end (``timers_wait_for_log_seconds``)."""
    gateway = Gateway()
    env = {"QIMING_CAMPAIGN_TIMER_POLL_MILLIS": "20", "QIMING_CAMPAIGN_LOG_BATCH_SIZE": "5"}
    collect, campaign = _collect_and_campaign(tmp_path, gateway, env)
    deposit = pb.WaitForEvent(event=pb.SingleEventTrigger(event_type="deposit"), timeout_seconds=3)
    graph = pb.JourneyGraph(
        entry_node_id="start",
        nodes=[
            node("start", trigger=pb.TriggerNode(trigger=on_event("signup"), next_node_id="wait")),
            node("wait", wait=pb.WaitNode(until_event=deposit, next_node_id="thanks", timeout_node_id="nudge")),
            node("thanks", send=pb.SendNode(channel=PUSH, template_id="thanks", next_node_id="end", is_marketing=True)),
            node("nudge", send=pb.SendNode(channel=PUSH, template_id="nudge", next_node_id="end", is_marketing=True)),
            node("end", exit=pb.ExitNode()),
        ],
    )
    users = [f"d{i}" for i in range(12)]
    try:
        with grpc.insecure_channel(campaign.address) as channel:
            templates = pb_grpc.TemplateServiceStub(channel)
            for template in ("thanks", "nudge"):
                request = pb.CreateTemplateRequest(
                    template=pb.Template(template_id=template, name=template, body=template)
                )
                templates.CreateTemplate(request, timeout=10)
            journeys = pb_grpc.JourneyServiceStub(channel)
            journeys.CreateJourney(
                pb.CreateJourneyRequest(journey=pb.Journey(journey_id="wait", name="wait", draft=graph)), timeout=10
            )
            journeys.PublishJourney(pb.PublishJourneyRequest(journey_id="wait"), timeout=10)
            journeys.StartJourney(pb.StartJourneyRequest(journey_id="wait"), timeout=10)
        time.sleep(2.5)  # the engine picks the running journey up
        _publish(collect.address, [event("signup", user, time_now()) for user in users])
        _wait_for(lambda: _report(campaign.address).entered == len(users))
        campaign.kill()
        # While it is down: other customers' traffic, then every waiting customer's deposit, in time.
        for start in range(0, 3000, 500):
            _publish(collect.address, [event("page_view", f"x{start + i}", time_now()) for i in range(500)])
        _publish(collect.address, [event("deposit", user, time_now()) for user in users])
        time.sleep(3.5)  # every timeout is due by the restart
        campaign.start()
        _wait_for(lambda: len({key for key, _ in gateway.requests}) == len(users))
        time.sleep(1.0)
        sent = {body["customer_id"]: body for _, body in gateway.requests}
        assert sorted(sent) == sorted(users)
        assert {body.get("template_id") for body in sent.values()} == {"thanks"}, sent
    finally:
        campaign.kill()
        collect.terminate()
        gateway.close()


def test_timers_fire_anyway_once_the_log_stays_unread_past_the_wait(tmp_path, caplog) -> None:
    """``timers_wait_for_log_seconds`` bounds the wait: an svc_collect that stays unreadable does not stop every
    journey's timers for good; the release is said once, and a follower reading again makes timers wait again."""
    import logging
    import types

    from campaign_helpers import campaign_service

    with campaign_service(tmp_path, settings={"timers_wait_for_log_seconds": 0.3}) as service:
        assert service.log_read_for_timers()  # no follower: nothing to wait for
        caught_up = asyncio.Event()
        service.follower = types.SimpleNamespace(caught_up=caught_up)
        assert not service.log_read_for_timers()
        time.sleep(0.35)
        with caplog.at_level(logging.WARNING, logger="qiming.campaign"):
            assert service.log_read_for_timers() and service.log_read_for_timers()
        assert sum("fire anyway" in r.getMessage() for r in caplog.records) == 1
        caught_up.set()
        assert service.log_read_for_timers()
        caught_up.clear()  # lost svc_collect again: the wait starts over
        assert not service.log_read_for_timers()


def test_timers_never_wait_for_the_log_when_the_wait_is_0(tmp_path, caplog) -> None:
    """``timers_wait_for_log_seconds = 0`` means "never wait": no hold, and no WARNING that timers "fire anyway" at
    every start (review17b)."""
    import logging
    import types

    from campaign_helpers import campaign_service

    with campaign_service(tmp_path, settings={"timers_wait_for_log_seconds": 0}) as service:
        service.follower = types.SimpleNamespace(caught_up=asyncio.Event())
        with caplog.at_level(logging.WARNING, logger="qiming.campaign"):
            assert service.log_read_for_timers() and service.log_read_for_timers()
        assert [r.getMessage() for r in caplog.records if "fire anyway" in r.getMessage()] == []
