"""ExportMembers reads every page in one snapshot, taken at its first page: a change committed while the export runs
(a static list replaced, a recompute) is not in it, so it never mixes the members before and after. Before 0.2.9
each page was a transaction of its own. On SQLite (WAL) and PostgreSQL (REPEATABLE READ)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest
from campaign_helpers import InProcessServer
from profile_helpers import CUSTOMER, profile_app, profile_settings, ref, wait_for

from svc_common.conditions import to_proto
from svc_common.errors import ResourceExhausted
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc
from svc_profile.server import SegmentServicer

BEFORE = [f"C{i}" for i in range(1, 7)]
AFTER = [f"C{i}" for i in range(7, 13)]


def _customers(pages: list) -> list[str]:
    return [ids[0].id_value for page in pages for _, ids, _ in page]


def test_an_export_is_the_segment_as_it_was_at_its_first_page(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        for user in BEFORE + AFTER:
            app.profiles.upsert_attributes(ref(user), {"branch": to_proto("SH")}, [], "crm", frozenset())
        app.definitions.create_segment(pb.Segment(segment_id="list", static_list=pb.StaticSegment(source="crm")))
        app.segments.set_static("list", [(CUSTOMER, u) for u in BEFORE], True)
        pages = app.segments.export("list", 2, [CUSTOMER])
        read = [next(pages)]
        app.segments.set_static("list", [(CUSTOMER, u) for u in AFTER], True)  # commits while the export runs
        read += list(pages)
        assert len(read) == 3 and sorted(_customers(read)) == BEFORE
        # A new export sees the list as it is now.
        assert sorted(_customers(list(app.segments.export("list", 2, [CUSTOMER])))) == sorted(AFTER)


def test_the_snapshot_isolation_level_is_one_each_server_dialect_takes() -> None:
    """Dameng and openGauss have no server here: their dialects must at least accept the level asked of them."""
    from dmSQLAlchemy.base import DMDialect

    from svc_common.db._engine import _SNAPSHOT_LEVELS
    from svc_common.db.dialects.opengauss import OpenGaussDialect_psycopg

    assert _SNAPSHOT_LEVELS["dm"] in DMDialect().get_isolation_level_values(None)
    assert _SNAPSHOT_LEVELS["opengauss"] in OpenGaussDialect_psycopg().get_isolation_level_values(None)
    assert _SNAPSHOT_LEVELS["postgresql"] == "REPEATABLE READ"


def test_a_cancelled_export_gives_its_snapshot_back(tmp_path: Path, database_url: str) -> None:
    """The snapshot is held between pages only while the stream lives: a client that cancels holds no connection
    (the servicer closes the export as the stream ends; CPython's reference counting would too, later and on the
    event loop)."""
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        for user in BEFORE:
            app.profiles.upsert_attributes(ref(user), {"branch": to_proto("SH")}, [], "crm", frozenset())
        app.definitions.create_segment(pb.Segment(segment_id="list", static_list=pb.StaticSegment(source="crm")))
        app.segments.set_static("list", [(CUSTOMER, u) for u in BEFORE], True)
        pool = app.core.database.engine.pool
        server = InProcessServer(
            lambda s: profile_pb2_grpc.add_SegmentServiceServicer_to_server(SegmentServicer(app), s)
        )
        try:
            with grpc.insecure_channel(server.address) as channel:
                stub = profile_pb2_grpc.SegmentServiceStub(channel)
                call = stub.ExportMembers(pb.ExportMembersRequest(segment_id="list", batch_size=1, id_types=[CUSTOMER]))
                first = next(call)
                assert len(first.members) == 1
                call.cancel()
                assert wait_for(lambda: pool.checkedout() == 0, timeout=10)
                whole = stub.ExportMembers(
                    pb.ExportMembersRequest(segment_id="list", batch_size=4, id_types=[CUSTOMER])
                )
                assert sorted(m.identities[0].value for r in whole for m in r.members) == BEFORE
                assert pool.checkedout() == 0
        finally:
            server.close()


def test_exports_beyond_max_export_streams_are_resource_exhausted_until_one_ends(tmp_path: Path) -> None:
    """Each export holds a connection and a snapshot while its stream lives: a bounded number at once, so that
    clients that stop reading cannot take the pool from the consumer and every other call."""
    with profile_app(profile_settings(tmp_path, finance_pack=False, max_export_streams=2)) as app:
        for user in BEFORE:
            app.profiles.upsert_attributes(ref(user), {"branch": to_proto("SH")}, [], "crm", frozenset())
        app.definitions.create_segment(pb.Segment(segment_id="list", static_list=pb.StaticSegment(source="crm")))
        app.segments.set_static("list", [(CUSTOMER, u) for u in BEFORE], True)
        running = [app.segments.export("list", 1, [CUSTOMER]) for _ in range(2)]
        for pages in running:
            next(pages)
        with pytest.raises(ResourceExhausted) as refused:
            next(app.segments.export("list", 1, [CUSTOMER]))
        assert refused.value.reason == "EXPORTS_RUNNING" and "max_export_streams" in refused.value.message
        running.pop().close()  # a stream ends: its place is free
        assert len(list(app.segments.export("list", 4, [CUSTOMER]))) == 2
        assert len(list(running.pop())) == 5  # the first one still reads its snapshot to the end


def test_svc_modeling_asks_again_when_every_export_is_taken(tmp_path: Path) -> None:
    """svc_modeling's dataset builds read segments through ExportMembers: refused as RESOURCE_EXHAUSTED before its
    first page, an export is asked again (within remote_timeout_seconds) instead of failing the job."""
    from svc_modeling.remote import ProfileClient

    with profile_app(profile_settings(tmp_path, finance_pack=False, max_export_streams=1)) as app:
        for user in BEFORE:
            app.profiles.upsert_attributes(ref(user), {"branch": to_proto("SH")}, [], "crm", frozenset())
        app.definitions.create_segment(pb.Segment(segment_id="list", static_list=pb.StaticSegment(source="crm")))
        app.segments.set_static("list", [(CUSTOMER, u) for u in BEFORE], True)
        server = InProcessServer(
            lambda s: profile_pb2_grpc.add_SegmentServiceServicer_to_server(SegmentServicer(app), s)
        )
        holder = app.segments.export("list", 1, [CUSTOMER])
        next(holder)  # the one export this process serves, taken
        client = ProfileClient(server.address, timeout_seconds=30)
        try:
            result: list = []
            worker = threading.Thread(target=lambda: result.append(client.segment_customers("list")))
            worker.start()
            time.sleep(0.6)  # refused at least once meanwhile
            assert worker.is_alive() and not result
            holder.close()
            worker.join(timeout=30)
            customers, without = result[0]
            assert sorted(customers) == BEFORE and without == 0
        finally:
            client.close()
            server.close()
