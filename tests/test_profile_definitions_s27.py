"""Findings of the definitions walk of session 27: an attribute named with a leading "_" was stored, left out by every
reader but the SQL recompute (membership flipped at each write and recompute); a condition on an attribute name with a
NUL failed every recompute of its segment as if the database were down; a computed tag could become external, its
computed values left on the profiles where nothing kept them current; a band's value skipped the checks a written
value meets (NaN, a 100,000-character text)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from profile_helpers import profile_app, profile_settings, ref

from svc_common.conditions import compile_condition, evaluate, references, to_proto
from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_profile.engine import SegmentRule
from svc_profile.sqlseg import segment_where

ATTRIBUTE = C.FieldRef.SOURCE_ATTRIBUTE
UNMASK = frozenset({"unmask"})


def _compare(name: str, op: int, value: object = None) -> C.Condition:
    comparison = C.Comparison(field=C.FieldRef(source=ATTRIBUTE, name=name), operator=op)
    if value is not None:
        comparison.value.CopyFrom(to_proto(value))
    return C.Condition(comparison=comparison)


def test_an_attribute_name_with_a_leading_underscore_is_refused(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        with pytest.raises(InvalidArgument, match="not starting with '_'"):
            app.profiles.upsert_attributes(ref("U1"), {"_vip": to_proto("yes")}, [], "crm", UNMASK)
        app.profiles.upsert_attributes(ref("U1"), {"vip_": to_proto("yes")}, [], "crm", UNMASK)  # elsewhere: fine


@pytest.mark.parametrize("name", ["_vip", "a\x00b", "A", "a b", "x" * 65])
def test_a_condition_on_a_name_no_attribute_can_have_is_refused_naming_the_node(tmp_path: Path, name: str) -> None:
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        segment = pb.Segment(segment_id="s1", condition=_compare(name, C.OPERATOR_NOT_EXISTS))
        with pytest.raises(InvalidArgument, match=r"unknown attribute.*not starting with '_'"):
            app.definitions.create_segment(segment)


@pytest.mark.parametrize("name", ["_vip", "a\x00b"])
def test_a_stored_condition_on_such_a_name_is_answered_as_every_reader_answers_it(tmp_path: Path, name: str) -> None:
    """A definition stored before the check: the recompute answers in Python (SQL read the "_" entry every other reader
    leaves out, and failed on the NUL)."""
    now = time.time_ns() // 1000
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        app.profiles.upsert_attributes(ref("U1"), {"city": to_proto("sh")}, [], "crm", UNMASK)
        engine, tables = app.core.engine, app.core.store.t
        for op in (C.OPERATOR_EXISTS, C.OPERATOR_NOT_EXISTS):
            node = compile_condition(_compare(name, op), field="c")
            with app.core.database.connection() as conn:
                assert segment_where(node, tables, conn.dialect.name, now, engine.clock, app.core.is_sensitive) is None
                rule = SegmentRule("x", 1, node, references(node))
                persons = engine.people(conn, None, now, segments=[rule], with_tags=False)
                assert [evaluate(node, p) for p in persons.values()] == [op == C.OPERATOR_NOT_EXISTS]


def test_a_computed_tag_stays_computed(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        app.definitions.create_tag(pb.TagDefinition(name="t1", condition=_compare("x", C.OPERATOR_EQ, "a")))
        external = pb.TagDefinition(name="t1", external=pb.ExternalTag(writer="svc_modeling"), value_type=1)
        with pytest.raises(InvalidArgument, match="a computed tag stays computed") as refused:
            app.definitions.update_tag(external, 0)
        assert refused.value.violations[0].field == "definition.rule"
        app.definitions.create_tag(pb.TagDefinition(name="t2", external=pb.ExternalTag(writer="crm"), value_type=1))
        with pytest.raises(InvalidArgument, match="an external tag stays external"):
            app.definitions.update_tag(pb.TagDefinition(name="t2", condition=_compare("x", C.OPERATOR_EXISTS)), 0)


@pytest.mark.parametrize(
    ("where", "value", "reason"),
    [
        ("bands", float("nan"), "NaN"),
        ("bands", "x" * 100_000, "longer than"),
        ("default", float("inf"), "NaN"),
        ("default", "x" * 8_193, "longer than"),
    ],
)
def test_a_band_value_meets_the_checks_a_written_value_meets(
    tmp_path: Path, where: str, value: object, reason: str
) -> None:
    band = pb.TagBand(condition=_compare("x", C.OPERATOR_EXISTS), value=to_proto(value if where == "bands" else "ok"))
    bands = pb.TagBands(bands=[band], default_value=to_proto(value if where == "default" else "none"))
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        with pytest.raises(InvalidArgument, match=reason) as refused:
            app.definitions.create_tag(pb.TagDefinition(name="banded", bands=bands))
        field = "definition.bands.bands[0].value" if where == "bands" else "definition.bands.default_value"
        assert refused.value.violations[0].field == field


@pytest.mark.parametrize(
    ("value", "operand", "op"),
    [
        (9007199254740993, 9007199254740992.0, C.OPERATOR_EQ),  # 2^53 + 1 is not 2^53.0
        (9007199254740993, 9007199254740992.0, C.OPERATOR_GT),
        (4.611686018427388e18, 4611686018427387904, C.OPERATOR_EQ),  # that double is exactly 2^62
    ],
)
def test_a_recompute_compares_numbers_past_2_53_as_the_consumer_does(
    tmp_path: Path, database_url: str, value: object, operand: object, op: int
) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        app.definitions.create_segment(pb.Segment(segment_id="s1", condition=_compare("acct_no", op, operand)))
        app.profiles.upsert_attributes(ref("U1"), {"acct_no": to_proto(value)}, [], "crm", UNMASK)
        live = app.segments.check("s1", (2, "U1"))[0]
        assert live == (value == operand if op == C.OPERATOR_EQ else value > operand)  # Python's exact answer
        app.segments.recompute("s1")
        assert app.segments.check("s1", (2, "U1"))[0] == live


def test_an_attribute_holding_a_nul_is_refused(tmp_path: Path) -> None:
    settings = profile_settings(tmp_path, finance_pack=False)
    with profile_app(settings) as app, pytest.raises(InvalidArgument, match="NUL"):
        app.profiles.upsert_attributes(ref("U1"), {"note": to_proto("a\x00b")}, [], "crm", UNMASK)
