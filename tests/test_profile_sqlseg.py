"""A recompute's SQL translation of a segment condition answers exactly as the Python evaluator, on SQLite
and PostgreSQL, over attributes of every kind (missing, other kinds, lists, money, level 3), day-bucket
windows, tags and memberships; what SQL cannot answer exactly falls back to Python."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from profile_helpers import DAY, event, profile_app, profile_settings, ref

from svc_common.conditions import Money, compile_condition, evaluate, references, to_proto
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_profile.engine import SegmentRule
from svc_profile.sqlseg import segment_where

ATTR, FEATURE, TAG = C.FieldRef.SOURCE_ATTRIBUTE, C.FieldRef.SOURCE_FEATURE, C.FieldRef.SOURCE_TAG


def cmp(name: str, op: int, value=None, values=(), source: int = ATTR) -> C.Condition:
    comparison = C.Comparison(field=C.FieldRef(source=source, name=name), operator=op)
    if value is not None:
        comparison.value.CopyFrom(to_proto(value))
    comparison.values.extend(to_proto(v) for v in values)
    return C.Condition(comparison=comparison)


def count(event_type: str, least: int, days: int, most: int = 0) -> C.Condition:
    return C.Condition(
        event_count=C.EventCount(event_type=event_type, min_count=least, max_count=most, window_seconds=days * 86_400)
    )


def all_of(*conditions: C.Condition) -> C.Condition:
    return C.Condition(all_of=C.ConditionList(conditions=list(conditions)))


def any_of(*conditions: C.Condition) -> C.Condition:
    return C.Condition(any_of=C.ConditionList(conditions=list(conditions)))


def negate(condition: C.Condition) -> C.Condition:
    return C.Condition(**{"not": condition})


TRANSLATED = [
    cmp("risk_rating", C.OPERATOR_GTE, "C3"),
    cmp("risk_rating", C.OPERATOR_LT, "C3"),
    cmp("risk_rating", C.OPERATOR_EQ, "C2"),
    cmp("risk_rating", C.OPERATOR_NE, "C2"),
    cmp("risk_rating", C.OPERATOR_BETWEEN, values=("C2", "C4")),
    cmp("age", C.OPERATOR_GT, 30),
    cmp("age", C.OPERATOR_LTE, 40.5),
    cmp("age", C.OPERATOR_NE, 41),
    cmp("age", C.OPERATOR_EXISTS),
    cmp("age", C.OPERATOR_NOT_EXISTS),
    cmp("credit", C.OPERATOR_GTE, 1000),  # money values compare with numbers
    cmp("city", C.OPERATOR_GT, "Z"),  # code-point order: "上海" > "Z"
    negate(cmp("age", C.OPERATOR_GTE, 35)),  # missing or of another kind: not(false) is true
    count("login", 2, 7),
    count("login", 1, 30, most=2),
    C.Condition(event_absence=C.EventAbsence(event_type="login", window_seconds=7 * 86_400)),
    all_of(cmp("risk_rating", C.OPERATOR_GTE, "C3"), count("login", 2, 30)),
    any_of(negate(count("login", 1, 7)), cmp("age", C.OPERATOR_LT, 25)),
    C.Condition(has_tag=C.TagPresence(tag_name="regular")),
    C.Condition(in_segment=C.SegmentMembership(segment_id="base")),
]
FALLBACK = [
    cmp("events_total", C.OPERATOR_GTE, 1, source=FEATURE),
    cmp("aum_fen", C.OPERATOR_GTE, Money(10)),  # level 3: sealed at rest
    cmp("tiers", C.OPERATOR_IN, values=("C1", "C2")),  # list attributes answer IN per element
    cmp("regular", C.OPERATOR_EQ, True, source=TAG),
    C.Condition(event_count=C.EventCount(event_type="login", min_count=1, window_seconds=3600)),
]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sql_translation_agrees_with_the_python_evaluator(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("database_url_postgresql") if backend == "postgresql" else None
    now = time.time_ns() // 1000
    with profile_app(profile_settings(tmp_path, url, finance_pack=False)) as app:
        people = {
            "P1": {"risk_rating": "C3", "age": 31, "credit": Money(5000), "city": "上海"},
            "P2": {"risk_rating": "C2", "age": 40.5, "city": "Beijing"},
            "P3": {"risk_rating": "C5", "age": "forty"},  # a string where a number is expected
            "P4": {"tiers": ["C1", "C2"], "age": 41},  # a list (a risk_rating is C1-C5, one of them)
            "P5": {"aum_fen": Money(100)},  # nothing comparable in clear
            "P6": {"age": 24, "credit": 999.5},
        }
        for user, values in people.items():
            attributes = {k: to_proto(v) for k, v in values.items()}
            app.profiles.upsert_attributes(ref(user), attributes, [], "crm", frozenset())
        regular = pb.TagDefinition(name="regular", condition=count("login", 3, 30))
        app.definitions.create_tag(regular)
        app.definitions.create_segment(pb.Segment(segment_id="base", condition=cmp("age", C.OPERATOR_GTE, 35)))
        batch = [event("login", user_id="P1", at_us=now - i * DAY) for i in range(3)]
        batch += [event("login", user_id="P2", at_us=now - 10 * DAY), event("login", user_id="P3")]
        batch += [event("login", user_id="P6", at_us=now - 20 * DAY) for _ in range(2)]
        batch += [event("page_view", user_id="P4"), event("login", user_id="P7")]
        app.consumer.handle(batch, "c1")
        app.segments.recompute("base")

        engine, tables = app.core.engine, app.core.store.t
        with app.core.database.connection() as conn:
            dialect = conn.dialect.name
            for i, condition in enumerate(TRANSLATED + FALLBACK):
                node = compile_condition(condition, field=f"case[{i}]")
                where = segment_where(node, tables, dialect, now, engine.clock, app.core.is_sensitive)
                assert (where is not None) == (i < len(TRANSLATED)), condition
                if where is None:
                    continue
                rule = SegmentRule(f"case_{i}", 1, node, references(node))
                persons = engine.people(conn, None, now, segments=[rule], with_tags=False)
                expected = {pid for pid, person in persons.items() if evaluate(node, person)}
                p = tables["person"]
                got = {r[0] for r in conn.execute(p.select().with_only_columns(p.c.profile_id).where(where))}
                assert got == expected, (i, condition)

        # The recompute itself: one SQL pass, then a change of data, then again.
        both = all_of(cmp("risk_rating", C.OPERATOR_GTE, "C3"), count("login", 1, 30))
        app.definitions.create_segment(pb.Segment(segment_id="risky_logins", condition=both))
        assert app.segments.recompute("risky_logins") == {"persons": 7, "entered": 2, "exited": 0}
        assert app.segments.check("risky_logins", (2, "P1"))[0] and app.segments.check("risky_logins", (2, "P3"))[0]
        app.profiles.upsert_attributes(ref("P3"), {}, ["risk_rating"], "crm", frozenset())
        app.profiles.upsert_attributes(ref("P2"), {"risk_rating": to_proto("C4")}, [], "crm", frozenset())
        lost = app.profiles.get(ref("P1"), [], frozenset()).profile_id
        with app.core.writing() as conn:  # bypass the real-time path: only a recompute repairs it
            conn.execute(tables["member"].delete().where(tables["member"].c.profile_id == lost))
        # P3 left and P2 joined in real time; the recompute finds P1, whose membership row was lost.
        assert app.segments.recompute("risky_logins") == {"persons": 7, "entered": 1, "exited": 0}
        members = {u for u in people if app.segments.check("risky_logins", (2, u))[0]}
        assert members == {"P1", "P2"}

        # GetProfile reads one person in one statement; it answers as the general (batch) path does.
        for user in [*people, "P7"]:
            one = app.profiles.get(ref(user), [], frozenset({"unmask"}))
            found, missing = app.profiles.batch_get([ref(user)], [], frozenset({"unmask"}))
            assert not missing and one == found[0] and one.identities and one.features
        p1 = app.profiles.get(ref("P1"), [], frozenset())
        assert list(p1.segment_ids) == ["risky_logins"] and [t.name for t in p1.tags] == ["regular"]
        assert "credit" in p1.attributes and p1.features["count.login.7d"].int_value == 3
