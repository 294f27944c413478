"""Written tags (model scores) re-evaluate only what reads them: a segment on the score is entered at once, a
rule tag on the score and a segment on that rule tag follow, and a score nothing reads is stored without
re-evaluating anyone (what lets svc_modeling write a million scores back quickly)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
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


def test_a_stream_of_scores_is_committed_in_groups_with_row_indexes_across_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from campaign_helpers import InProcessServer

    from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc
    from svc_profile import server as profile_server
    from svc_profile.server import TagServicer

    monkeypatch.setattr(profile_server, "STREAM_GROUP_WRITES", 4)  # groups of at least 4 writes: 3 + 3, then 2
    with profile_app(profile_settings(tmp_path)) as app:
        app.definitions.create_tag(external("score_a"))
        for i in range(7):
            app.profiles.upsert_attributes(ref(f"C{i}"), {"risk_rating": to_proto("C3")}, [], "crm", frozenset())
        groups = []
        original = app.tags.write_group

        def recording(writes, *args):
            groups.append(len(writes))
            return original(writes, *args)

        monkeypatch.setattr(app.tags, "write_group", recording)
        server = InProcessServer(lambda s: profile_pb2_grpc.add_TagServiceServicer_to_server(TagServicer(app), s))
        try:
            with grpc.insecure_channel(server.address) as channel:
                tags = profile_pb2_grpc.TagServiceStub(channel)

                def message(customers: list[str], first: bool = False) -> pb.WriteTagsStreamRequest:
                    writes = [pb.TagWrite(user=ref(c), tag_name="score_a", value=to_proto(0.5)) for c in customers]
                    return pb.WriteTagsStreamRequest(writes=writes, provenance=MODEL if first else None)

                stream = [message(["C0", "C1", "C2"], True), message(["C3", "nobody", "C4"]), message(["C5", "C6"])]
                reply = tags.WriteTagsStream(iter(stream), timeout=30)
                assert reply.written_count == 7 and [e.row_index for e in reply.errors] == [4]
                assert groups == [6, 2]
                too_big = message([f"C{i % 7}" for i in range(10_001)], True)
                with pytest.raises(grpc.RpcError) as refused:
                    tags.WriteTagsStream(iter([too_big]), timeout=30)
                assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        finally:
            server.close()
