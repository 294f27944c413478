"""The score write-back to a real svc_profile (in-process, real gRPC): batches stream as they are scored, every
score arrives exactly with the model's provenance, a scoring failure mid-way ends the stream with its own error,
and the messages built in place equal those built from nested messages."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from campaign_helpers import InProcessServer
from profile_helpers import CUSTOMER, profile_app, profile_settings, ref

from svc_common.conditions import to_proto
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as ppb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc
from svc_modeling import writeback
from svc_modeling.writeback import GrpcProfileTagWriter, ScoreBatch
from svc_profile.server import TagServicer


@pytest.fixture
def profile(tmp_path: Path) -> Iterator[tuple]:
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        for i in range(10):
            app.profiles.upsert_attributes(ref(f"C{i}"), {"branch": to_proto("SH")}, [], "crm", frozenset())
        server = InProcessServer(lambda s: profile_pb2_grpc.add_TagServiceServicer_to_server(TagServicer(app), s))
        try:
            yield app, server.address
        finally:
            server.close()


def tags_of(app, customer: str) -> dict:
    return {t.name: t for t in app.tags.list_user_tags(types_pb2.UserRef(type=CUSTOMER, value=customer))}


def test_batches_reach_svc_profile_with_the_model_as_provenance(profile, monkeypatch) -> None:
    app, address = profile
    monkeypatch.setattr(writeback, "WRITES_PER_MESSAGE", 3)  # several messages per batch
    values = np.random.default_rng(1).random(12)
    ids = np.array([f"C{i}" for i in range(10)] + ["nobody", ""], dtype=object)
    writer = GrpcProfileTagWriter(address)
    try:
        batches = [ScoreBatch(ids[:5], values[:5]), ScoreBatch(ids[5:], values[5:])]
        assert writer.write_scores("churn_score", "churn", 3, iter(batches)) == 10  # nobody and "" are refused
    finally:
        writer.close()
    for i in range(10):
        tag = tags_of(app, f"C{i}")["churn_score"]
        assert tag.tag_value == ["d", values[i]]  # exact: the double itself
        assert (tag.source, tag.writer, tag.writer_version) == ("MODEL", "model:churn", "3")
    definition = app.definitions.get_tag("churn_score")
    assert definition.WhichOneof("rule") == "external" and definition.external.writer == "svc_modeling"


def test_a_scoring_failure_ends_the_stream_with_its_own_error(profile) -> None:
    app, address = profile

    def batches() -> Iterator[ScoreBatch]:
        yield ScoreBatch(np.array(["C1", "C2"], dtype=object), np.array([0.5, 0.6]))
        raise RuntimeError("the model failed on batch 2")

    writer = GrpcProfileTagWriter(address)
    try:
        with pytest.raises(RuntimeError, match="batch 2"):
            writer.write_scores("churn_score", "churn", 1, batches())
        assert writer.write_scores("churn_score", "churn", 2, iter([ScoreBatch(np.array(["C3"]), np.ones(1))])) == 1
    finally:
        writer.close()
    assert "churn_score" not in tags_of(app, "C1")  # the cancelled stream's only group was never committed
    assert tags_of(app, "C3")["churn_score"].writer_version == "2"


def test_messages_built_in_place_equal_nested_construction() -> None:
    pending: queue.SimpleQueue = queue.SimpleQueue()
    provenance = types_pb2.Provenance(source=types_pb2.Provenance.SOURCE_MODEL, writer="model:m", writer_version="1")
    ids, values = ["C1", "客户2"], np.array([0.1 + 0.2, float("nan")])
    pending.put((ids, values))
    pending.put((ids[:1], values[:1]))
    pending.put(None)
    built = list(writeback._messages("s", provenance, pending))

    def nested(first: bool, n: int) -> ppb.WriteTagsStreamRequest:
        writes = [
            ppb.TagWrite(
                user=types_pb2.UserRef(type=CUSTOMER, value=c), tag_name="s", value=types_pb2.Value(double_value=v)
            )
            for c, v in zip(ids[:n], values[:n], strict=True)
        ]
        return ppb.WriteTagsStreamRequest(writes=writes, provenance=provenance if first else None)

    assert [m.SerializeToString() for m in built] == [
        nested(True, 2).SerializeToString(),
        nested(False, 1).SerializeToString(),
    ]
