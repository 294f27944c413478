"""A comparison of a field whose kind of value is known with a value of another kind is refused at definition
(session 24). Before, ``count.login.7d EQ "3"`` or a bool tag ``EQ "yes"`` was accepted and never held, and the
same with ``NE`` held for everyone: a typo'd value silently selected nobody or everybody."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from profile_helpers import profile_app, profile_settings

from svc_common.conditions import PROFILE_SCOPE, Money, Scope, Source, compile_condition, to_proto, value_kind
from svc_common.errors import InvalidArgument
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
            "not a bool (with a value of another kind it holds for everyone who has the field)",
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


def test_a_tag_kind_change_is_logged_with_the_readers_it_breaks_and_they_can_then_follow(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """UpdateTagDefinition to another kind of value is not refused (a reader can take the new kind only once the tag
    has it): a WARNING names each reader comparing with the old kind and its node. An external tag may still hold
    values written under the old type, so comparisons of either kind are accepted from then on; a rule tag's values
    are evaluated again, so only the new kind is."""

    def external(value_type: int) -> pb.TagDefinition:
        return pb.TagDefinition(name="tier", external=pb.ExternalTag(writer="crm"), value_type=value_type)

    def bands(value: object) -> pb.TagDefinition:
        band = pb.TagBand(value=to_proto(value), condition=compare(FEATURE, "events_total", C.OPERATOR_GT, 0))
        return pb.TagDefinition(name="grade", bands=pb.TagBands(bands=[band]))

    with profile_app(profile_settings(tmp_path)) as app:
        defs = app.definitions
        defs.create_tag(external(types_pb2.VALUE_TYPE_STRING))
        defs.create_tag(bands("high"))
        gold = compare(TAG, "tier", C.OPERATOR_EQ, "gold", node_id="is_gold")
        defs.create_segment(pb.Segment(segment_id="gold", condition=gold))
        high = C.Condition(all_of=C.ConditionList(conditions=[has_tag("grade", C.OPERATOR_EQ, "high")]))
        defs.create_segment(pb.Segment(segment_id="high", condition=high))
        with caplog.at_level("WARNING", logger="qiming.profile"):
            assert defs.update_tag(external(types_pb2.VALUE_TYPE_INT), 0).version == 2
            assert defs.update_tag(bands(3), 0).version == 2
        warned = [r.getMessage() for r in caplog.records if "now holds" in r.getMessage()]
        assert len(warned) == 2
        assert "segment 'gold' (node 'is_gold')" in warned[0] and "number values" in warned[0]
        assert "segment 'high' (node 'segment.condition.all_of.conditions[0]')" in warned[1]
        # External: old values may remain, so both kinds are accepted.
        defs.create_segment(pb.Segment(segment_id="gold_again", condition=gold))
        defs.create_segment(pb.Segment(segment_id="tier_3", condition=compare(TAG, "tier", C.OPERATOR_EQ, 3)))
        # A rule tag's values are the new kind: its readers follow, the old kind is refused.
        defs.update_segment(pb.Segment(segment_id="high", condition=has_tag("grade", C.OPERATOR_GTE, 3)), 0)
        with pytest.raises(InvalidArgument, match="tag 'grade' holds number values"):
            defs.create_segment(pb.Segment(segment_id="high_again", condition=high))


def test_a_tag_kind_is_what_its_rule_gives_not_a_contradicting_stored_value_type(tmp_path: Path) -> None:
    """A builtin tag stored before the value_type checks with a value_type contradicting its formula: its values are
    the formula's (True), so comparing with True is accepted and with a string refused."""
    with profile_app(profile_settings(tmp_path)) as app:
        defs = app.definitions
        legacy = pb.TagDefinition(
            name="rich", value_type=types_pb2.VALUE_TYPE_STRING, builtin=pb.BuiltinTag(formula="high_net_worth")
        )
        now = dt.datetime.now(dt.UTC)
        with app.core.writing() as conn:
            defs._insert_tag(conn, legacy, 1, now, now)
        defs.load()
        defs.create_segment(pb.Segment(segment_id="rich", condition=has_tag("rich", C.OPERATOR_EQ, True)))
        with pytest.raises(InvalidArgument, match="tag 'rich' holds bool values"):
            defs.create_segment(pb.Segment(segment_id="rich_yes", condition=has_tag("rich", C.OPERATOR_EQ, "yes")))


def test_a_tag_becoming_of_no_known_kind_warns_nobody(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Bands of several kinds hold any kind: nothing to break, so no warning (it named every reader)."""
    with profile_app(profile_settings(tmp_path)) as app:
        defs = app.definitions
        when = compare(FEATURE, "events_total", C.OPERATOR_GT, 0)
        defs.create_tag(
            pb.TagDefinition(name="grade", bands=pb.TagBands(bands=[pb.TagBand(value=to_proto("a"), condition=when)]))
        )
        defs.create_segment(pb.Segment(segment_id="a", condition=has_tag("grade", C.OPERATOR_EQ, "a")))
        mixed = pb.TagBands(bands=[pb.TagBand(value=to_proto("a"), condition=when)], default_value=to_proto(1))
        with caplog.at_level("WARNING", logger="qiming.profile"):
            defs.update_tag(pb.TagDefinition(name="grade", bands=mixed), 0)
        assert not [r for r in caplog.records if "now holds" in r.getMessage()]
