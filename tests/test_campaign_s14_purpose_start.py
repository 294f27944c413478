"""Session 14 (issue 6, PIPL consent): StartJourney, and resuming a paused journey, check the published version with
the current validation rules. A version published by an older release (here: a marketing journey with a send left
at is_marketing = false, written straight into the store as that release would have) is FAILED_PRECONDITION naming
the node and the problem, and the journey stays in its state until a fixed version is published."""

from __future__ import annotations

import grpc
import pytest
from campaign_helpers import (
    T0,
    add_template,
    campaign_service,
    event,
    messages,
    notice_graph,
    on_event,
    simple_graph,
)
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from test_campaign_review12_grpc import serving  # the servicers behind the server kit, on a loop in a thread

from svc_common.errors import FailedPrecondition
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.campaign.v1 import campaign_pb2_grpc as pb_grpc
from svc_common.pb.qiming.common.v1 import types_pb2

PROBLEM = (
    "node 'promo': a send in a marketing journey must set is_marketing (consent, caps and quiet hours apply), or give"
    " the journey a service purpose (service_send_in_marketing_journey)"
)


def _publish_unchecked(service, journey_id: str, graph: pb.JourneyGraph, state: str | None = None) -> int:  # type: ignore[no-untyped-def]
    """Publish ``graph`` as the next version the way an older release did: straight into the store, unchecked."""
    with service.db.connection(write=True) as conn:
        store = service.journeys.store
        row = store.row(conn, journey_id)
        version = row["published_version"] + 1
        store.add_version(conn, journey_id, version, json_format.MessageToDict(graph), {}, T0)
        store.update(conn, journey_id, {"published_version": version, "journey_state": state or row["journey_state"]})
    service.engine.invalidate()
    return version


def _transition(service, action: str, journey_id: str = "j1") -> pb.Journey:  # type: ignore[no-untyped-def]
    with service.db.connection(write=True) as conn:
        return service.journeys.transition(conn, journey_id, action, T0)


def _state(service, journey_id: str = "j1") -> str:  # type: ignore[no-untyped-def]
    with service.db.connection() as conn:
        return pb.JourneyState.Name(service.journeys.get(conn, journey_id, 0).state).removeprefix("JOURNEY_STATE_")


def test_start_refuses_a_version_that_fails_the_current_rules(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        add_template(service)
        with service.db.connection(write=True) as conn:
            service.journeys.create(conn, pb.Journey(journey_id="j1", name="j1", draft=notice_graph()), T0)
        assert _publish_unchecked(service, "j1", notice_graph(), "PUBLISHED") == 1
        with pytest.raises(FailedPrecondition) as raised:
            _transition(service, "start")
        error = raised.value
        assert error.reason == "PUBLISHED_VERSION_INVALID"
        assert error.metadata == {"node_id": "promo", "code": "service_send_in_marketing_journey", "version": "1"}
        assert error.message == (
            f"journey 'j1' version 1 fails the current validation: {PROBLEM}; it stays PUBLISHED: fix the draft"
            " (ValidateJourney lists every problem), publish it as a new version and start that"
        )
        assert _state(service) == "PUBLISHED"
        service.engine.handle([event("signup", "c1")])
        assert messages(service) == []  # nobody entered
        # Fixed and published: it starts.
        with service.db.connection(write=True) as conn:
            fixed = pb.UpdateJourneyDraftRequest(journey_id="j1", draft=simple_graph(on_event("signup")))
            service.journeys.update_draft(conn, fixed, T0)
            assert service.journeys.publish(conn, "j1", 0, T0).published_version == 2
        assert _transition(service, "start").state == pb.JOURNEY_STATE_RUNNING


def test_resume_refuses_a_version_that_fails_the_current_rules(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        add_template(service)
        with service.db.connection(write=True) as conn:
            service.journeys.create(conn, pb.Journey(journey_id="j1", name="j1", draft=simple_graph(on_event("x"))), T0)
            service.journeys.publish(conn, "j1", 0, T0)
        _transition(service, "start")
        _transition(service, "pause")
        assert _publish_unchecked(service, "j1", notice_graph()) == 2
        with pytest.raises(FailedPrecondition, match="it stays PAUSED") as raised:
            _transition(service, "start")
        assert raised.value.metadata["node_id"] == "promo" and raised.value.metadata["version"] == "2"
        assert _state(service) == "PAUSED"
        # A service journey may send service notices: the same graph resumes there.
        with service.db.connection(write=True) as conn:
            service.journeys.create(
                conn, pb.Journey(journey_id="n1", name="n1", purpose="service_notice", draft=notice_graph()), T0
            )
        _publish_unchecked(service, "n1", notice_graph(), "PAUSED")
        assert _transition(service, "start", "n1").state == pb.JOURNEY_STATE_RUNNING


def test_start_journey_over_grpc_is_failed_precondition_naming_the_node(tmp_path) -> None:
    with campaign_service(tmp_path) as service, serving(service) as (channel, _audit):
        add_template(service)
        journeys = pb_grpc.JourneyServiceStub(channel)
        journeys.CreateJourney(pb.CreateJourneyRequest(journey=pb.Journey(journey_id="j1", name="j1")))
        _publish_unchecked(service, "j1", notice_graph(), "PUBLISHED")
        with pytest.raises(grpc.RpcError) as raised:
            journeys.StartJourney(pb.StartJourneyRequest(journey_id="j1"))
        error = raised.value
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error.details().startswith(f"journey 'j1' version 1 fails the current validation: {PROBLEM}; ")
        info = error_details_pb2.ErrorInfo()
        assert rpc_status.from_call(error).details[0].Unpack(info)
        assert (info.reason, info.metadata["node_id"]) == ("PUBLISHED_VERSION_INVALID", "promo")
        journey = journeys.GetJourney(pb.GetJourneyRequest(journey_id="j1")).journey
        assert journey.state == pb.JOURNEY_STATE_PUBLISHED


def test_a_running_version_of_an_earlier_release_gates_its_sends_as_marketing(tmp_path, database_url) -> None:
    # Already RUNNING when this release is installed (StartJourney's check never ran): its send left at
    # is_marketing = false must not reach a customer who opted out; a service journey's notice still goes.
    with campaign_service(tmp_path, database_url) as service:
        add_template(service)
        service.set_consent(
            pb.Consent(user=types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value="c1"), purpose="*", granted=False)
        )
        with service.db.connection(write=True) as conn:
            service.journeys.create(conn, pb.Journey(journey_id="j1", name="j1", draft=notice_graph()), T0)
            notice = pb.Journey(journey_id="n1", name="n1", purpose="service_notice", draft=notice_graph())
            service.journeys.create(conn, notice, T0)
        _publish_unchecked(service, "j1", notice_graph(), "RUNNING")
        _publish_unchecked(service, "n1", notice_graph(), "RUNNING")
        service.engine.handle([event("signup", "c1")])
        sent = {m.journey_id: m for m in messages(service)}
        assert (sent["j1"].is_marketing, sent["j1"].status, sent["j1"].suppression_reason) == (
            True,
            pb.MESSAGE_STATUS_SUPPRESSED,
            "no_consent",
        )
        assert not sent["n1"].is_marketing and sent["n1"].status != pb.MESSAGE_STATUS_SUPPRESSED
