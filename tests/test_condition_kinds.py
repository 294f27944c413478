"""A comparison of a field whose kind of value is known with a value of another kind is refused at definition
(session 24). Before, ``count.login.7d EQ "3"`` or a bool tag ``EQ "yes"`` was accepted and never held, and the
same with ``NE`` held for everyone: a typo'd value silently selected nobody or everybody."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from profile_helpers import profile_app, profile_settings

from svc_common.conditions import PROFILE_SCOPE, Money, Scope, Source, compile_condition, to_proto, value_kind
from svc_common.errors import FailedPrecondition, InvalidArgument
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_profile.known import FEATURES, Names

FEATURE, TAG, SCORE, ATTRIBUTE = (
    C.FieldRef.SOURCE_FEATURE,
    C.FieldRef.SOURCE_TAG,
    C.FieldRef.SOURCE_SCORE,
    C.FieldRef.SOURCE_ATTRIBUTE,
)
WHEN = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def compare(
    source: int, name: str, op: int, value: object = None, values: tuple = (), node_id: str = ""
) -> C.Condition:
    comparison = C.Comparison(field=C.FieldRef(source=source, name=name), operator=op)
    if value is not None:
        comparison.value.CopyFrom(to_proto(value))
    for v in values:
        comparison.values.add().CopyFrom(to_proto(v))
    return C.Condition(comparison=comparison, node_id=node_id)


def has_tag(name: str, op: int, value: object) -> C.Condition:
    return C.Condition(has_tag=C.TagPresence(tag_name=name, operator=op, value=to_proto(value)))


KINDS = {"n": "number", "s": "string", "b": "bool", "t": "timestamp", "l": "string list"}
SCOPE = Scope(names={Source.FEATURE: Names(set(KINDS), KINDS), Source.TAG: Names({"b", "x"}, {"b": "bool"})})


@pytest.mark.parametrize(
    ("condition", "where", "words"),
    [
        (
            compare(FEATURE, "n", C.OPERATOR_EQ, "3"),
            "condition.comparison.value",
            "compare it with a number value, not a string",
        ),
        (
            compare(FEATURE, "n", C.OPERATOR_NE, True),
            "condition.comparison.value",
            "not a bool (a comparison of different kinds always",
        ),
        (compare(FEATURE, "s", C.OPERATOR_GT, 3), "condition.comparison.value", "string values"),
        (compare(FEATURE, "t", C.OPERATOR_GTE, 5), "condition.comparison.value", "timestamp values"),
        (compare(FEATURE, "n", C.OPERATOR_IN, values=(1, "2")), "condition.comparison.values[1]", "not a string"),
        (
            compare(FEATURE, "n", C.OPERATOR_BETWEEN, values=(WHEN, WHEN)),
            "condition.comparison.values[0]",
            "not a timestamp",
        ),
        (
            compare(FEATURE, "n", C.OPERATOR_CONTAINS, "1"),
            "condition.comparison.operator",
            "CONTAINS applies to strings only",
        ),
        (
            compare(FEATURE, "b", C.OPERATOR_LT, 1),
            "condition.comparison.operator",
            "LT does not apply to bool values",
        ),
        (compare(FEATURE, "l", C.OPERATOR_GT, "a"), "condition.comparison.operator", "does not apply to a string list"),
        (
            compare(FEATURE, "l", C.OPERATOR_EQ, "a"),
            "condition.comparison.value",
            "compare it with a string list value",
        ),
        (
            compare(FEATURE, "l", C.OPERATOR_NOT_IN, values=("a", 1)),
            "condition.comparison.values[1]",
            "string value, not a number",
        ),
        (has_tag("b", C.OPERATOR_EQ, "yes"), "condition.has_tag.value", "tag 'b' holds bool values"),
    ],
)
def test_a_comparison_of_another_kind_is_refused_naming_the_value(condition, where: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        compile_condition(condition, SCOPE)
    assert words in caught.value.message
    assert [v.field for v in caught.value.violations] == [where]


@pytest.mark.parametrize(
    "condition",
    [
        compare(FEATURE, "n", C.OPERATOR_EQ, 3),
        compare(FEATURE, "n", C.OPERATOR_GT, 2.5),
        compare(FEATURE, "n", C.OPERATOR_LTE, Money(100)),
        compare(FEATURE, "n", C.OPERATOR_BETWEEN, values=(1, 2.5)),
        compare(FEATURE, "t", C.OPERATOR_LT, WHEN),
        compare(FEATURE, "s", C.OPERATOR_STARTS_WITH, "C"),
        compare(FEATURE, "s", C.OPERATOR_IN, values=("C1", "C2")),
        compare(FEATURE, "b", C.OPERATOR_EQ, False),
        compare(FEATURE, "l", C.OPERATOR_CONTAINS, "bond"),
        compare(FEATURE, "l", C.OPERATOR_IN, values=("bond", "qdii")),
        compare(FEATURE, "l", C.OPERATOR_EQ, ("bond",)),
        compare(FEATURE, "n", C.OPERATOR_NOT_EXISTS),
        has_tag("b", C.OPERATOR_EQ, True),
        has_tag("x", C.OPERATOR_EQ, "anything"),  # no kind declared: any value
    ],
)
def test_a_comparison_of_the_same_kind_compiles(condition) -> None:
    compile_condition(condition, SCOPE)


def test_value_kinds_are_the_comparison_kinds() -> None:
    assert [value_kind(v) for v in (1, 1.5, Money(2), True, "a", WHEN, ("a",))] == [
        "number",
        "number",
        "number",
        "bool",
        "string",
        "timestamp",
        "string list",
    ]


def test_the_features_kinds() -> None:
    assert FEATURES.kind("first_seen_at") == FEATURES.kind("last_trade_at") == "timestamp"
    for name in ("events_total", "turnover_fen", "count.login.7d", "turnover_fen.30d", "views.fund", "fund_pref.bond"):
        assert FEATURES.kind(name) == "number", name
    assert FEATURES.kind("no_such_feature") is None


def test_profile_definitions_refuse_a_value_of_another_kind(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path)) as app:
        defs = app.definitions
        defs.create_tag(
            pb.TagDefinition(
                name="churn_score",
                external=pb.ExternalTag(writer="svc_modeling"),
                value_type=types_pb2.VALUE_TYPE_DOUBLE,
            )
        )
        defs.create_tag(pb.TagDefinition(name="note", external=pb.ExternalTag(writer="crm")))  # no value type
        defs.create_tag(
            pb.TagDefinition(name="logged_in", condition=compare(FEATURE, "events_total", C.OPERATOR_GT, 0))
        )
        refused = [
            (
                compare(FEATURE, "count.login.7d", C.OPERATOR_GTE, "3", node_id="logins"),
                "segment.condition.comparison.value",
            ),
            (compare(FEATURE, "first_seen_at", C.OPERATOR_GT, 5), "segment.condition.comparison.value"),
            (compare(SCORE, "churn_score", C.OPERATOR_GT, "0.5"), "segment.condition.comparison.value"),
            (compare(TAG, "logged_in", C.OPERATOR_NE, "no"), "segment.condition.comparison.value"),
            (has_tag("fin_high_net_worth", C.OPERATOR_EQ, "yes"), "segment.condition.has_tag.value"),
            (has_tag("lifecycle_stage", C.OPERATOR_EQ, 3), "segment.condition.has_tag.value"),
        ]
        for condition, where in refused:
            with pytest.raises(InvalidArgument) as caught:
                defs.create_segment(pb.Segment(segment_id="s", condition=condition))
            assert [v.field for v in caught.value.violations] == [where], caught.value.message
            assert " holds " in caught.value.message
        with pytest.raises(InvalidArgument, match=r"'logins' .*feature 'count.login.7d' holds number values"):
            defs.create_segment(pb.Segment(segment_id="s", condition=refused[0][0]))
        # A tag definition is checked the same way.
        with pytest.raises(InvalidArgument, match="holds number values"):
            defs.create_tag(pb.TagDefinition(name="busy", condition=compare(FEATURE, "sessions", C.OPERATOR_GT, "10")))
        accepted = [
            compare(FEATURE, "count.login.7d", C.OPERATOR_GTE, 3),
            compare(FEATURE, "first_seen_at", C.OPERATOR_GT, WHEN),
            compare(SCORE, "churn_score", C.OPERATOR_GT, 1),  # an int is a number: compares with a double
            compare(TAG, "note", C.OPERATOR_EQ, "anything"),
            compare(ATTRIBUTE, "risk_rating", C.OPERATOR_EQ, 5),  # declared attributes are open-ended: no kind
            has_tag("fin_high_net_worth", C.OPERATOR_EQ, True),
            has_tag("lifecycle_stage", C.OPERATOR_EQ, "active"),
        ]
        for i, condition in enumerate(accepted):
            defs.create_segment(pb.Segment(segment_id=f"ok{i}", condition=condition))


def test_the_shared_scopes_check_no_kinds() -> None:
    """Campaign triggers and stored definitions compile without names: nothing is refused for its kind there."""
    compile_condition(compare(FEATURE, "anything", C.OPERATOR_EQ, "3"), PROFILE_SCOPE)


def test_a_tag_whose_kind_changes_under_its_readers_comparisons_is_refused(tmp_path: Path) -> None:
    """UpdateTagDefinition to another value_type: a reader comparing it with values of the old kind would silently
    never match again (NE: always); the update is FAILED_PRECONDITION naming the reader and its node."""
    def external(value_type: int) -> pb.TagDefinition:
        return pb.TagDefinition(name="tier", external=pb.ExternalTag(writer="crm"), value_type=value_type)

    with profile_app(profile_settings(tmp_path)) as app:
        defs = app.definitions
        defs.create_tag(external(types_pb2.VALUE_TYPE_STRING))
        gold = compare(TAG, "tier", C.OPERATOR_EQ, "gold", node_id="is_gold")
        defs.create_segment(pb.Segment(segment_id="gold", condition=gold))
        with pytest.raises(FailedPrecondition, match=r"segment 'gold' \(node 'is_gold'\).*update them first") as caught:
            defs.update_tag(external(types_pb2.VALUE_TYPE_INT), 0)
        assert caught.value.reason == "TAG_IN_USE"
        assert defs.get_tag("tier").version == 1
        defs.update_tag(
            pb.TagDefinition(
                name="tier", external=pb.ExternalTag(writer="crm v2"), value_type=types_pb2.VALUE_TYPE_STRING
            ),
            0,
        )
        defs.archive_segment("gold")
        assert defs.update_tag(external(types_pb2.VALUE_TYPE_INT), 0).version == 3  # no reader left
