"""The shared condition tree: validation names the bad node; evaluation follows the documented semantics."""

from __future__ import annotations

import datetime as dt

import pytest
from google.protobuf import json_format

from svc_common import conditions as c
from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.common.v1 import condition_pb2, event_pb2

UTC = dt.UTC


def cond(tree: dict) -> condition_pb2.Condition:
    return json_format.ParseDict(tree, condition_pb2.Condition())


def cmp(source: str, name: str, op: str, value: dict | None = None, values: list | None = None, **extra) -> dict:
    node: dict = {"comparison": {"field": {"source": f"SOURCE_{source}", "name": name}, "operator": f"OPERATOR_{op}"}}
    if value is not None:
        node["comparison"]["value"] = value
    if values is not None:
        node["comparison"]["values"] = values
    node.update(extra)
    return node


class Person:
    def __init__(self, fields: dict | None = None, counts: dict | None = None, segments: set | None = None):
        self.fields = fields or {}
        self.counts = counts or {}
        self.segments = segments or set()
        self.asked: list = []

    def value(self, source, name):
        return self.fields.get((source, name))

    def count_events(self, node):
        self.asked.append(node)
        return self.counts.get(node.event_type, 0)

    def in_segment(self, segment_id):
        return segment_id in self.segments


def test_a_bad_node_is_named_by_its_id_and_its_request_path():
    tree = cond(
        {
            "allOf": {
                "conditions": [cmp("ATTRIBUTE", "age", "GT", {"intValue": 30}), cmp("FEATURE", "x", "GT", nodeId="n2")]
            }
        }
    )
    with pytest.raises(InvalidArgument) as raised:
        c.compile_condition(tree, field="segment.condition")
    error = raised.value
    assert "'n2'" in error.message and "GT needs a value" in error.message
    assert error.reason == c.REASON
    assert error.violations[0].field == "segment.condition.all_of.conditions[1].comparison.value"


@pytest.mark.parametrize(
    ("tree", "problem"),
    [
        ({}, "empty"),
        ({"allOf": {}}, "at least one condition"),
        (cmp("UNSPECIFIED", "x", "EQ", {"intValue": 1}), "source is not set"),
        (cmp("ATTRIBUTE", "", "EQ", {"intValue": 1}), "field name is empty"),
        (cmp("ATTRIBUTE", "x", "UNSPECIFIED", {"intValue": 1}), "operator is not set"),
        (cmp("ATTRIBUTE", "x", "IN", values=[]), "IN needs at least one value"),
        (cmp("ATTRIBUTE", "x", "BETWEEN", values=[{"intValue": 5}, {"intValue": 1}]), "low <= high"),
        (cmp("ATTRIBUTE", "x", "BETWEEN", values=[{"intValue": 1}]), "exactly two"),
        (cmp("ATTRIBUTE", "x", "CONTAINS", {"intValue": 1}), "needs a string"),
        (cmp("ATTRIBUTE", "x", "GT", {"boolValue": True}), "needs a number"),
        ({"eventCount": {"eventType": "trade", "minCount": 1}}, "window_seconds must be > 0"),
        ({"eventCount": {"eventType": "trade", "windowSeconds": 60}}, "min_count must be >= 1"),
        ({"eventCount": {"eventType": "t", "windowSeconds": 60, "minCount": 3, "maxCount": 2}}, "max_count"),
        ({"eventCount": {"eventType": "t", "windowSeconds": 10**9, "minCount": 1}}, "longer than 400 days"),
        ({"eventAbsence": {"windowSeconds": 60}}, "event_type is empty"),
        ({"inSegment": {}}, "segment_id is empty"),
        ({"hasTag": {"tagName": "hnw", "value": {"intValue": 1}}}, "needs an operator"),
    ],
)
def test_invalid_nodes_are_refused(tree, problem):
    with pytest.raises(InvalidArgument, match=problem):
        c.compile_condition(cond(tree))


def test_scopes_keep_out_what_cannot_be_answered_there():
    event_cmp = cond(cmp("EVENT_PROPERTY", "amount", "GT", {"intValue": 1}))
    with pytest.raises(InvalidArgument, match="EVENT_PROPERTY fields are not allowed here"):
        c.compile_condition(event_cmp, c.PROFILE_SCOPE)
    inner_attribute = cond(
        {
            "eventCount": {
                "eventType": "fund_view",
                "windowSeconds": 600,
                "minCount": 3,
                "filter": cmp("ATTRIBUTE", "age", "GT", {"intValue": 1}),
            }
        }
    )
    with pytest.raises(InvalidArgument, match="ATTRIBUTE fields are not allowed here") as raised:
        c.compile_condition(inner_attribute, c.PROFILE_SCOPE)
    assert raised.value.violations[0].field == "condition.event_count.filter.comparison.field.source"
    with pytest.raises(InvalidArgument, match="segment membership is not allowed"):
        c.compile_condition(cond({"inSegment": {"segmentId": "s"}}), c.EVENT_FILTER_SCOPE)
    known = c.Scope(names={c.Source.FEATURE: frozenset({"trades_30d"})})
    with pytest.raises(InvalidArgument, match="unknown feature 'logins_7d'"):
        c.compile_condition(cond(cmp("FEATURE", "logins_7d", "GT", {"intValue": 1})), known)


def test_size_and_depth_limits():
    deep: dict = cmp("ATTRIBUTE", "x", "EXISTS")
    for _ in range(20):
        deep = {"not": deep}
    with pytest.raises(InvalidArgument, match="nested deeper than 16"):
        c.compile_condition(cond(deep))
    wide = {"anyOf": {"conditions": [cmp("ATTRIBUTE", "x", "EQ", {"intValue": i}) for i in range(300)]}}
    with pytest.raises(InvalidArgument, match="more than 256 nodes"):
        c.compile_condition(cond(wide))


def attr(name):
    return (c.Source.ATTRIBUTE, name)


@pytest.mark.parametrize(
    ("op", "value", "values", "actual", "expected"),
    [
        ("EQ", {"intValue": 3}, None, 3.0, True),  # numbers compare across int and double
        ("EQ", {"moneyFenValue": "300"}, None, 300, True),
        ("EQ", {"stringValue": "3"}, None, 3, False),  # kinds never mix
        ("NE", {"stringValue": "3"}, None, 3, True),
        ("EQ", {"intValue": 1}, None, True, False),  # a bool is not a number
        ("GT", {"intValue": 10}, None, 11, True),
        ("GT", {"intValue": 10}, None, "11", False),
        ("LTE", {"stringValue": "C3"}, None, "C2", True),
        ("IN", None, [{"stringValue": "C4"}, {"stringValue": "C5"}], "C5", True),
        ("NOT_IN", None, [{"stringValue": "C4"}], "C1", True),
        ("CONTAINS", {"stringValue": "fund"}, None, "fund_detail", True),
        ("CONTAINS", {"stringValue": "qdii"}, None, ("bond", "qdii"), True),
        ("IN", None, [{"stringValue": "x"}, {"stringValue": "bond"}], ("bond", "qdii"), True),
        ("STARTS_WITH", {"stringValue": "fund_"}, None, "fund_detail", True),
        ("BETWEEN", None, [{"intValue": 1}, {"intValue": 5}], 5, True),
        ("BETWEEN", None, [{"intValue": 1}, {"intValue": 5}], 6, False),
        ("EXISTS", None, None, 0, True),
        ("GT", {"timestampValue": "2026-01-01T00:00:00Z"}, None, dt.datetime(2026, 2, 1, tzinfo=UTC), True),
    ],
)
def test_comparison_semantics(op, value, values, actual, expected):
    node = c.compile_condition(cond(cmp("ATTRIBUTE", "f", op, value, values)))
    assert c.evaluate(node, Person({attr("f"): actual})) is expected


@pytest.mark.parametrize("op", ["EQ", "NE", "GT", "IN", "NOT_IN", "CONTAINS", "EXISTS"])
def test_a_missing_field_is_false_for_every_operator_but_not_exists(op):
    values = [{"intValue": 1}] if op in ("IN", "NOT_IN") else None
    value = None if op in ("EXISTS", "IN", "NOT_IN") else {"stringValue": "1"} if op == "CONTAINS" else {"intValue": 1}
    node = c.compile_condition(cond(cmp("ATTRIBUTE", "f", op, value, values)))
    assert c.evaluate(node, Person()) is False
    absent = c.compile_condition(cond(cmp("ATTRIBUTE", "f", "NOT_EXISTS")))
    assert c.evaluate(absent, Person()) is True


def test_event_conditions_segments_and_tags_ask_the_subject():
    tree = cond(
        {
            "allOf": {
                "conditions": [
                    {"eventCount": {"eventType": "login", "windowSeconds": 86400 * 7, "minCount": 2, "maxCount": 5}},
                    {"eventAbsence": {"eventType": "trade_filled", "windowSeconds": 86400 * 90}},
                    {"inSegment": {"segmentId": "dormant"}},
                    {"hasTag": {"tagName": "risk_rating", "operator": "OPERATOR_GTE", "value": {"stringValue": "C3"}}},
                    {"not": {"hasTag": {"tagName": "hnw"}}},
                ]
            }
        }
    )
    node = c.compile_condition(tree, c.PROFILE_SCOPE)
    tag = c.Source.TAG
    person = Person({(tag, "risk_rating"): "C4"}, counts={"login": 3}, segments={"dormant"})
    assert c.evaluate(node, person) is True
    assert [n.event_type for n in person.asked] == ["login", "trade_filled"]
    assert c.evaluate(node, Person({(tag, "risk_rating"): "C4"}, counts={"login": 6}, segments={"dormant"})) is False
    assert (
        c.evaluate(node, Person({(tag, "risk_rating"): "C4", (tag, "hnw"): True}, {"login": 3}, {"dormant"})) is False
    )
    refs = c.references(node)
    assert refs.event_windows == {"login": 86400 * 7, "trade_filled": 86400 * 90}
    assert refs.segments == {"dormant"} and refs.tags == {"risk_rating", "hnw"}


def test_event_filters_read_type_channel_properties_and_context():
    event = event_pb2.Event(event_type="fund_view", channel=1, user_id="c1")
    event.properties["fund_type"].string_value = "qdii"
    event.properties["amount_fen"].money_fen_value = 500_000
    event.context.screen = "fund_detail"
    tree = cond(
        {
            "allOf": {
                "conditions": [
                    cmp("EVENT", "channel", "EQ", {"stringValue": "app"}),
                    cmp(
                        "EVENT_PROPERTY", "fund_type", "IN", values=[{"stringValue": "qdii"}, {"stringValue": "index"}]
                    ),
                    cmp("EVENT_PROPERTY", "amount_fen", "GTE", {"intValue": 100_000}),
                    cmp("CONTEXT", "screen", "STARTS_WITH", {"stringValue": "fund_"}),
                    cmp("CONTEXT", "no_such_field", "NOT_EXISTS"),
                ]
            }
        }
    )
    node = c.compile_condition(tree, c.EVENT_FILTER_SCOPE)
    assert c.matches_event(node, event) is True
    event.channel = 2
    assert c.matches_event(node, event) is False


def test_values_round_trip():
    for value in ["a", 3, 2.5, True, c.Money(100), ("x", "y"), dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), None]:
        back = c.from_proto(c.to_proto(value))
        assert back == value and type(back) is type(value)
