"""Written tags (model scores) re-evaluate only what reads them: a segment on the score is entered at once, a
rule tag on the score and a segment on that rule tag follow, and a score nothing reads is stored without
re-evaluating anyone (what lets svc_modeling write a million scores back quickly)."""

from __future__ import annotations

from pathlib import Path

from profile_helpers import profile_app, profile_settings, ref

from svc_common.conditions import to_proto
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_profile.tags import readers_of

TAG = C.FieldRef.SOURCE_TAG
MODEL = types_pb2.Provenance(source=types_pb2.Provenance.SOURCE_MODEL, writer="model:m", writer_version="1")


def at_least(tag: str, value: float) -> C.Condition:
    return C.Condition(
        comparison=C.Comparison(field=C.FieldRef(source=TAG, name=tag), operator=C.OPERATOR_GTE, value=to_proto(value))
    )


def external(name: str) -> pb.TagDefinition:
    return pb.TagDefinition(name=name, value_type=types_pb2.VALUE_TYPE_DOUBLE, external=pb.ExternalTag(writer="m"))


def test_a_score_re_evaluates_only_what_reads_it(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        defs = app.definitions
        for name in ("score_a", "score_b", "score_c"):
            defs.create_tag(external(name))
        defs.create_tag(pb.TagDefinition(name="likely", condition=at_least("score_c", 0.5)))
        defs.create_segment(pb.Segment(segment_id="hot", condition=at_least("score_a", 0.5)))
        has_likely = C.Condition(has_tag=C.TagPresence(tag_name="likely"))
        defs.create_segment(pb.Segment(segment_id="likely_seg", condition=has_likely))
        engine = app.core.engine

        assert readers_of(engine, {"score_b"}) == (False, [])
        reads_a = readers_of(engine, {"score_a"})
        assert reads_a[0] is False and [s.segment_id for s in reads_a[1]] == ["hot"]
        reads_c = readers_of(engine, {"score_c"})
        assert reads_c[0] is True and [s.segment_id for s in reads_c[1]] == ["likely_seg"]

        for customer in ("C1", "C2"):
            app.profiles.upsert_attributes(ref(customer), {"risk_rating": to_proto("C3")}, [], "crm", frozenset())
        refreshes = []
        original = engine.refresh

        def counting(*args, **kwargs):
            refreshes.append(kwargs.get("only_segments"))
            return original(*args, **kwargs)

        engine.refresh = counting

        def write(tag: str, customer: str, value: float) -> None:
            write = pb.TagWrite(user=ref(customer), tag_name=tag, value=to_proto(value))
            assert app.tags.write([write], MODEL, "") == (1, [])

        write("score_b", "C1", 0.9)
        assert refreshes == []  # nothing reads score_b: stored, nobody re-evaluated
        write("score_a", "C1", 0.9)
        write("score_a", "C2", 0.1)
        assert [[s.segment_id for s in only] for only in refreshes] == [["hot"], ["hot"]]

        def member(segment_id: str, customer: str) -> bool:
            key = app.core.policy.ref(types_pb2.ID_TYPE_CUSTOMER, customer, "user")
            return app.segments.check(segment_id, key)[0]

        assert member("hot", "C1") and not member("hot", "C2")
        write("score_c", "C2", 0.7)
        assert member("likely_seg", "C2") and not member("likely_seg", "C1")
        stored = {t.name: t for t in app.tags.list_user_tags(ref("C1"))}
        assert stored["score_b"].writer == "model:m"
