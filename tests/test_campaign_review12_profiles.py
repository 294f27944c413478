"""Review 12, svc_campaign and svc_profile: a branch on a field svc_profile withholds from svc_campaign is refused at
validation and publish (F13); the calls to svc_profile carry the caller's trace, and the erasure log line names
the customer, the profile and what it ended (F3); a send suppressed because svc_profile did not answer says so
(R7, ``profile_unavailable``)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from campaign_helpers import (
    PUSH,
    add_template,
    campaign_service,
    equals,
    event,
    node,
    on_event,
    profile,
    run_journey,
    simple_graph,
)
from opentelemetry import trace

from svc_campaign.erasure import ERASED
from svc_campaign.profiles import PROFILE_UNAVAILABLE, GrpcProfileDirectory, InMemoryProfiles
from svc_common.conditions import Money
from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import condition_pb2, types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2, profile_pb2_grpc

A, F, T = (
    condition_pb2.FieldRef.SOURCE_ATTRIBUTE,
    condition_pb2.FieldRef.SOURCE_FEATURE,
    condition_pb2.FieldRef.SOURCE_TAG,
)


class Level3Profiles(InMemoryProfiles):
    def withheld_tags(self) -> frozenset[str]:
        return frozenset({"wealth_band"})


def branch_graph(condition: condition_pb2.Condition) -> pb.JourneyGraph:
    """signup → branch (condition: hi, else lo) → exits."""
    return pb.JourneyGraph(
        entry_node_id="start",
        nodes=[
            node("start", trigger=pb.TriggerNode(trigger=on_event("signup"), next_node_id="b")),
            node(
                "b",
                branch=pb.BranchNode(arms=[pb.BranchArm(condition=condition, next_node_id="hi")], default_node_id="lo"),
            ),
            node("hi", exit=pb.ExitNode(reason="hnw")),
            node("lo", exit=pb.ExitNode(reason="retail")),
        ],
    )


def has_tag(name: str) -> condition_pb2.Condition:
    return condition_pb2.Condition(has_tag=condition_pb2.TagPresence(tag_name=name))


@pytest.mark.parametrize(
    ("condition", "field"),
    [
        (equals(A, "aum_fen", Money(300_000_000)), "attribute 'aum_fen'"),
        (equals(F, "avg_daily_assets_20d_fen", Money(50_000_000)), "feature 'avg_daily_assets_20d_fen'"),
        (equals(A, "phone", "13800000000"), "attribute 'phone'"),  # a configured sensitive field
        (equals(T, "wealth_band", "top"), "tag 'wealth_band'"),  # a level 3 tag in svc_profile
        (has_tag("wealth_band"), "tag 'wealth_band'"),
    ],
)
def test_a_branch_on_a_withheld_field_is_refused_naming_node_and_field(tmp_path, condition, field) -> None:
    with campaign_service(tmp_path, profiles=Level3Profiles()) as service:
        graph = branch_graph(condition)
        with service.db.connection() as conn:
            problems = service.journeys.problems(conn, graph)
        assert [(p.node_id, p.code) for p in problems] == [("b", "withheld_field")]
        assert field in problems[0].message and "fin_investor_tier" in problems[0].message
        with pytest.raises(InvalidArgument) as refused, service.db.connection(write=True) as conn:
            service.journeys.create(conn, pb.Journey(journey_id="hnw", name="hnw", draft=graph), service.clock.now())
            service.journeys.publish(conn, "hnw", 0, service.clock.now())
        assert "node 'b'" in refused.value.message and field in refused.value.message


@pytest.mark.parametrize(
    "condition",
    [equals(T, "fin_investor_tier", "qualified"), has_tag("fin_high_net_worth"), equals(A, "risk_rating", "C4")],
)
def test_a_branch_on_a_shown_field_publishes(tmp_path, condition) -> None:
    with campaign_service(tmp_path, profiles=Level3Profiles()) as service, service.db.connection() as conn:
        assert service.journeys.problems(conn, branch_graph(condition)) == []


class _Profiles(profile_pb2_grpc.ProfileServiceServicer, profile_pb2_grpc.TagServiceServicer):
    """svc_profile as svc_campaign sees it: records the metadata of each call."""

    def __init__(self) -> None:
        self.metadata: list[dict[str, str]] = []

    def GetProfile(self, request, context):  # type: ignore[no-untyped-def]
        self.metadata.append(dict(context.invocation_metadata()))
        return profile_pb2.GetProfileResponse(profile=profile_pb2.Profile(profile_id="p1"))

    def ListTagDefinitions(self, request, context):  # type: ignore[no-untyped-def]
        secret = profile_pb2.TagDefinition(name="wealth_band", sensitivity=types_pb2.SENSITIVITY_LEVEL_3)
        shown = profile_pb2.TagDefinition(name="fin_investor_tier", sensitivity=types_pb2.SENSITIVITY_LEVEL_2)
        return profile_pb2.ListTagDefinitionsResponse(definitions=[secret, shown])


@contextlib.contextmanager
def fake_profile_service() -> Iterator[tuple[str, _Profiles]]:
    servicer = _Profiles()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    profile_pb2_grpc.add_ProfileServiceServicer_to_server(servicer, server)
    profile_pb2_grpc.add_TagServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(None)


def test_profile_calls_carry_the_callers_trace_and_level3_tags_are_read(span_exporter) -> None:
    with fake_profile_service() as (address, servicer):
        directory = GrpcProfileDirectory(address, cache_seconds=0)
        try:
            with trace.get_tracer("test").start_as_current_span("RenderTemplate") as span:
                assert directory.get("c1").profile_id == "p1"
            trace_id = format(span.get_span_context().trace_id, "032x")
            assert servicer.metadata[0]["traceparent"].split("-")[1] == trace_id
            assert directory.withheld_tags() == frozenset({"wealth_band"})
        finally:
            directory.close()


def test_an_unreachable_profile_service_is_its_own_suppression_reason(tmp_path) -> None:
    with fake_profile_service() as (address, _):
        pass  # stopped: nothing listens there now
    directory = GrpcProfileDirectory(address, timeout_seconds=0.5)
    try:
        assert directory.fetch("c1") is PROFILE_UNAVAILABLE
        assert directory.get("c1") is None  # to journeys, branches and rendering: unknown, as before
        assert directory.withheld_tags() is None
    finally:
        directory.close()

    class Down(InMemoryProfiles):
        def fetch(self, user_id: str) -> profile_pb2.Profile | None:
            return PROFILE_UNAVAILABLE if user_id == "c-down" else super().get(user_id)

    with campaign_service(tmp_path, profiles=Down({"c-rated": profile("c-rated", risk="C5")})) as service:
        product = pb.ProductRef(product_id="F1", risk_level=3)
        add_template(service, "fund", channel=PUSH, product=product, body="新基金 F1 开售。市场有风险，投资需谨慎")
        reasons = {}
        for user in ("c-down", "c-unknown", "c-rated"):
            request = pb.SendMessageRequest(
                user=types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=user),
                channel=PUSH,
                template_id="fund",
                purpose="service",
            )
            reasons[user] = service.send_message(request).suppression_reason
        assert reasons == {"c-down": "profile_unavailable", "c-unknown": "risk_rating_unknown", "c-rated": ""}
        run_journey(service, simple_graph(on_event("signup"), "fund"))  # a journey's product message too
        service.engine.handle([event("signup", "c-down"), event("signup", "c-unknown")])
        with service.db.connection() as conn:
            report = service.journeys.report(conn, "j1", None, None)
        [send] = [n for n in report.nodes if n.node_id == "send"]
        assert dict(send.suppressed_by_reason) == {"profile_unavailable": 1, "risk_rating_unknown": 1}


def test_the_erasure_log_line_names_customer_profile_and_what_it_ended(tmp_path, caplog) -> None:
    with campaign_service(tmp_path) as service:
        add_template(service, "t1", channel=PUSH)
        graph = simple_graph(on_event("signup"))
        graph.nodes[1].send.next_node_id = "wait"
        graph.nodes.append(node("wait", wait=pb.WaitNode(duration_seconds=3600, next_node_id="end")))
        run_journey(service, graph)
        service.engine.handle([event("signup", "c1")])
        erased = event(ERASED, "c1")
        erased.properties["profile_id"].string_value = "p-c1"
        with caplog.at_level(logging.INFO, logger="qiming.campaign"):
            service.engine.handle([erased])
        [line] = [r for r in caplog.records if r.getMessage() == "customer erased"]
        assert (line.customer_id, line.profile_id, line.journeys_ended, line.messages_blanked) == ("c1", "p-c1", 1, 1)
