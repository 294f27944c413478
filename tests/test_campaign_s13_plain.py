"""What the walk reads of a node and of a template as plain values (session 13): the same as the protobuf holds."""

from __future__ import annotations

from campaign_helpers import PUSH, SMS, node, on_event

from svc_campaign.content import render, template_facts
from svc_campaign.graph import validate
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb


def _graph() -> pb.JourneyGraph:
    return pb.JourneyGraph(
        entry_node_id="start",
        nodes=[
            node("start", trigger=pb.TriggerNode(trigger=on_event("signup"), next_node_id="wait")),
            node("wait", wait=pb.WaitNode(duration_seconds=60, next_node_id="listen")),
            node(
                "listen",
                wait=pb.WaitNode(
                    until_event=pb.WaitForEvent(event=pb.SingleEventTrigger(event_type="open"), timeout_seconds=60),
                    next_node_id="send",
                    timeout_node_id="quiet_end",
                ),
            ),
            node(
                "send",
                send=pb.SendNode(
                    channel=SMS,
                    fallback_channels=[PUSH, 0],
                    template_id="t1",
                    next_node_id="end",
                    suppressed_node_id="quiet_end",
                    is_marketing=True,
                ),
            ),
            node("end", exit=pb.ExitNode(reason="x" * 80)),
            node("quiet_end", exit=pb.ExitNode()),
        ],
    )


def test_compiled_nodes_hold_the_fields_the_walk_reads() -> None:
    problems, graph = validate(_graph(), lambda _t: 0, lambda _e: None, trusted=True)
    assert graph is not None, problems
    nodes = graph.nodes
    assert nodes["start"].next_node_id == "wait"
    assert (nodes["wait"].wait_kind, nodes["wait"].next_node_id) == ("duration_seconds", "listen")
    listen = nodes["listen"]
    assert (listen.wait_kind, listen.next_node_id, listen.timeout_node_id) == ("until_event", "send", "quiet_end")
    send = nodes["send"]
    assert send.channels == (SMS, PUSH, 0)  # the channel first, then the fallbacks in order
    assert (send.template_id, send.is_marketing) == ("t1", True)
    assert (send.next_node_id, send.suppressed_node_id) == ("end", "quiet_end")
    assert nodes["end"].exit_reason == "x" * 64  # as the participant's exit_reason column holds it
    assert nodes["quiet_end"].exit_reason == "exit"
    assert nodes["send"].exit_reason == "" and nodes["end"].channels == ()


def test_template_facts_follow_the_template_object() -> None:
    first = pb.Template(template_id="t1", version=1, title="Hi", body="Fixed text", link="")
    facts = template_facts(first)
    assert (facts.texts, facts.fixed, facts.template_id, facts.version) == (("Hi", "Fixed text", ""), True, "t1", 1)
    assert template_facts(first) is facts
    # Another object (a new version of the template, or another template) is read afresh, never from the last one.
    second = pb.Template(
        template_id="t1",
        version=2,
        title="Hi",
        body="您好 {{attribute.nickname|客户}}",
        product=pb.ProductRef(product_id="P", risk_level=3),
    )
    found = template_facts(second)
    assert (found.fixed, found.version, found.product_id, found.risk_level) == (False, 2, "P", 3)
    assert render(second, None, {}) == ("Hi", "您好 客户", "")
    assert render(first, None, {}) == ("Hi", "Fixed text", "")
