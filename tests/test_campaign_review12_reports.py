"""Review 12, F11: a journey message queued at the gate and suppressed afterwards (an erasure, a journey stop, a
consent withdrawal, a preemption) counts in GetJourneyReport as suppressed by its reason, not as sent, and
GetJourneyProgress shows it suppressed at its send node."""

from __future__ import annotations

import pytest
from campaign_helpers import add_template, campaign_service, event, on_event, run_journey, simple_graph
from campaign_helpers import status as status_of
from test_campaign_delivery_fixes import ScriptedGateway, dispatch

from svc_campaign.erasure import ERASED
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import types_pb2

C1 = types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value="c1")


def _report(service, journey_id: str = "j1") -> dict[str, tuple[int, dict[str, int]]]:  # type: ignore[no-untyped-def]
    with service.db.connection() as conn:
        report = service.journeys.report(conn, journey_id, None, None)
    return {n.node_id: (n.sent, dict(n.suppressed_by_reason)) for n in report.nodes if n.node_id == "send"}


def _path(service, journey_id: str = "j1", user: str = "c1") -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with service.db.connection() as conn:
        progress = service.journeys.progress(conn, journey_id, user)
    return [(v.node_id, v.outcome) for v in progress.path]


def _sent_by_journey(service) -> None:  # type: ignore[no-untyped-def]
    add_template(service, "t1", body="新基金开售")
    run_journey(service, simple_graph(on_event("signup")))
    service.engine.handle([event("signup", "c1"), event("signup", "c2")])
    assert _report(service) == {"send": (2, {})}


@pytest.mark.parametrize("cause", ["customer_erased", "journey_stopped"])
def test_a_message_suppressed_after_the_gate_is_reported_suppressed_not_sent(tmp_path, database_url, cause) -> None:
    with campaign_service(tmp_path, database_url) as service:
        _sent_by_journey(service)
        if cause == "customer_erased":
            service.engine.handle([event(ERASED, "c1")])
        else:
            with service.db.connection(write=True) as conn:
                service.journeys.transition(conn, "j1", "stop", service.clock.now(), "")
        sent_left = 1 if cause == "customer_erased" else 0
        stopped = {"journey_stopped": 2} if cause == "journey_stopped" else {cause: 1}
        assert _report(service) == {"send": (sent_left, stopped)}
        assert ("send", f"suppressed:{cause}") in _path(service)
        assert ("send", "sent") not in _path(service)


def test_a_consent_withdrawn_before_delivery_is_reported_suppressed(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url, adapter=ScriptedGateway()) as service:
        _sent_by_journey(service)
        service.set_consent(pb.Consent(user=C1, granted=False, source="app settings"))
        dispatch(service, ScriptedGateway())
        assert _report(service) == {"send": (1, {"consent_withdrawn": 1})}
        assert _path(service)[1] == ("send", "suppressed:consent_withdrawn")
        assert _path(service, user="c2")[1] == ("send", "sent")  # delivered: still sent


def test_a_preempted_journey_message_is_reported_preempted(tmp_path, database_url) -> None:
    """One push a day (the default channel cap): the higher-priority journey takes the slot of the queued one."""
    with campaign_service(tmp_path, database_url) as service:
        add_template(service, "low")
        add_template(service, "high")
        run_journey(service, simple_graph(on_event("signup"), "low"), "low", priority=1)
        run_journey(service, simple_graph(on_event("deposit"), "high"), "high", priority=9)
        service.engine.handle([event("signup", "c1")])
        service.engine.handle([event("deposit", "c1")])
        assert _report(service, "low") == {"send": (0, {"preempted_by_priority": 1})}
        assert _report(service, "high") == {"send": (1, {})}
        assert _path(service, "low")[1] == ("send", "suppressed:preempted_by_priority")


def test_gate_suppressions_are_counted_once(tmp_path, database_url) -> None:
    """A message suppressed at the gate is a visit and a message: one count, not two."""
    with campaign_service(tmp_path, database_url) as service:
        add_template(service, "t1", body="新基金开售")
        run_journey(service, simple_graph(on_event("signup")))
        service.set_consent(pb.Consent(user=C1, granted=False, source="app settings"))
        service.engine.handle([event("signup", "c1")])
        assert _report(service) == {"send": (0, {"no_consent": 1})}
        assert _path(service)[1] == ("send", "suppressed:no_consent")
        assert [
            status_of(m)
            for m in service.list_messages(
                user="c1",
                journey_id="",
                channels=[],
                start=None,
                end=None,
                suppressed=True,
                reasons=[],
                after=None,
                limit=10,
            )
        ] == ["SUPPRESSED"]
