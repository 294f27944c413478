"""What the acceptance walk of svc_profile on 2026-12-07 found (session 21): each test fails on the code before its
fix."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from profile_helpers import ANONYMOUS, CUSTOMER, event, profile_app, profile_process, profile_settings, ref
from test_ddl_snapshots import offline_migration_sql

from svc_common.conditions import from_proto, to_proto
from svc_common.db import Database
from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pb_grpc
from svc_profile.store import SCHEMA


def _carrying(event_type: str, device: str, customer: str) -> object:
    carrier = event(event_type, anonymous_id=device, session_id="s1")
    carrier.identities.add(type=CUSTOMER, value=customer)
    return carrier


# Finding 1 (major): a person who gains a customer number from the log is evaluated in full, as one linked by
# LinkIdentities is: a stage and the dormant score depend on having a customer, which no event type's rules name.
@pytest.mark.parametrize("event_type", ["$alias", "page_view"])
def test_a_device_profile_that_gains_a_customer_number_from_the_log_is_evaluated_in_full(
    tmp_path: Path, database_url: str, event_type: str
) -> None:
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        app.consumer.handle([event("page_view", anonymous_id="dev-9", session_id="s0")], "c1")
        before = app.profiles.get(ref("dev-9", ANONYMOUS), ["tags"], frozenset())
        assert before.lifecycle_stage == pb.LIFECYCLE_STAGE_PROSPECT
        assert "fin_dormant_activation" not in {t.name for t in before.tags}
        app.consumer.handle([_carrying(event_type, "dev-9", "C9200")], "c2")
        after = app.profiles.get(ref("C9200"), ["tags"], frozenset())
        assert after.profile_id == before.profile_id
        tags = {t.name: from_proto(t.value) for t in after.tags}
        assert after.lifecycle_stage == pb.LIFECYCLE_STAGE_NEW
        assert tags["lifecycle_stage"] == "new" and tags["fin_dormant_activation"] == 0
        # What a full evaluation of everyone gives: the same.
        app.consumer.handle([event("page_view", user_id="C9200", session_id="s2")], "c3")
        again = app.profiles.get(ref("C9200"), ["tags"], frozenset())
        assert again.lifecycle_stage == pb.LIFECYCLE_STAGE_NEW


# Finding 4: CreateSegment without an id gets one (profile.proto: "Server-assigned unless given at creation").
def test_a_segment_created_without_an_id_gets_one_from_the_server(tmp_path: Path) -> None:
    branch = C.FieldRef(source=C.FieldRef.SOURCE_ATTRIBUTE, name="branch")
    north = C.Condition(comparison=C.Comparison(field=branch, operator=C.OPERATOR_EQ, value=to_proto("n")))
    with profile_process(tmp_path, QIMING_PROFILE_FINANCE_PACK="false") as profile:
        channel = grpc.insecure_channel(profile.address)
        pb_grpc.ProfileServiceStub(channel).UpsertAttributes(
            pb.UpsertAttributesRequest(user=ref("G1"), attributes={"branch": to_proto("n")}), timeout=30
        )
        segments = pb_grpc.SegmentServiceStub(channel)
        made = [
            segments.CreateSegment(pb.CreateSegmentRequest(segment=pb.Segment(condition=north)), timeout=30)
            for _ in range(2)
        ]
        ids = [m.segment.segment_id for m in made]
        assert all(re.fullmatch(r"seg_[0-9a-f]{16}", i) for i in ids) and ids[0] != ids[1], ids
        got = segments.GetSegment(pb.GetSegmentRequest(segment_id=ids[0]), timeout=30).segment
        assert got.segment_id == ids[0] and got.version == 1
        check = segments.CheckMembership(pb.CheckMembershipRequest(segment_id=ids[1], user=ref("G1")), timeout=30)
        assert check.member
        channel.close()


# Finding 3: archiving a tag removes its values (they were served as current for good).
def test_archiving_a_tag_removes_its_values_from_every_profile(tmp_path: Path, database_url: str) -> None:
    logged_in = C.Condition(event_count=C.EventCount(event_type="login", min_count=1, window_seconds=86_400))
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        app.definitions.create_tag(
            pb.TagDefinition(name="tmp_tag", value_type=types_pb2.VALUE_TYPE_BOOL, condition=logged_in)
        )
        app.definitions.create_tag(
            pb.TagDefinition(name="kept_tag", value_type=types_pb2.VALUE_TYPE_BOOL, condition=logged_in)
        )
        app.consumer.handle([event("login", user_id="C1"), event("login", user_id="C2")], "c1")
        for user in ("C1", "C2"):
            names = {t.name for t in app.profiles.get(ref(user), ["tags"], frozenset()).tags}
            assert {"tmp_tag", "kept_tag"} <= names
        assert app.definitions.archive_tag("tmp_tag").archived
        for user in ("C1", "C2"):
            names = {t.name for t in app.profiles.get(ref(user), ["tags"], frozenset()).tags}
            assert "tmp_tag" not in names and "kept_tag" in names
        app.consumer.handle([event("login", user_id="C1")], "c2")  # not evaluated again
        assert "tmp_tag" not in {t.name for t in app.profiles.get(ref("C1"), ["tags"], frozenset()).tags}


# Review of the session: a WriteTags group checked before an archive, waiting for the writer's lock meanwhile, wrote
# its value after the archive removed the tag's values.
def test_a_tag_archived_while_a_write_waits_for_the_lock_refuses_that_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manual = types_pb2.Provenance(source=types_pb2.Provenance.SOURCE_MANUAL, writer="crm", writer_version="1")
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        app.definitions.create_tag(
            pb.TagDefinition(name="vip", value_type=types_pb2.VALUE_TYPE_BOOL, external=pb.ExternalTag(writer="crm"))
        )
        app.definitions.create_tag(
            pb.TagDefinition(name="gold", value_type=types_pb2.VALUE_TYPE_BOOL, external=pb.ExternalTag(writer="crm"))
        )
        app.consumer.handle([event("login", user_id="C1")], "c1")
        vip = pb.TagWrite(user=ref("C1"), tag_name="vip", value=to_proto(True))
        gold = pb.TagWrite(user=ref("C1"), tag_name="gold", value=to_proto(True))
        assert app.tags.write([vip], manual, "") == (1, [])
        real_writing = app.core.writing
        archived: list[str] = []

        def archive_meanwhile(*args, **kwargs):  # runs between the checks of the rows and the writer's lock
            if not archived:
                archived.append("vip")
                app.definitions.archive_tag("vip")  # its own writing() is the real one
            return real_writing(*args, **kwargs)

        monkeypatch.setattr(app.core, "writing", archive_meanwhile)
        written, errors = app.tags.write([vip, gold], manual, "")
        assert written == 1
        assert errors == [
            (
                0,
                "TAG_ARCHIVED",
                "writes[0].tag_name",
                "writes[0].tag_name: tag 'vip' is archived: its writes are refused",
            )
        ]
        names = {t.name for t in app.profiles.get(ref("C1"), ["tags"], frozenset()).tags}
        assert "vip" not in names and "gold" in names


# Review of the session: tags archived by an earlier release keep their values until the migration removes them.
def test_the_migration_removes_the_values_of_tags_archived_before(tmp_path: Path, database_url: str) -> None:
    db = Database.from_settings(profile_settings(tmp_path, database_url))
    migrations = SCHEMA.migrations
    definition = sa.text(
        "INSERT INTO profile_tag_definition (name, version, body, archived, created_at, updated_at)"
        " VALUES (:n, 1, :b, :a, :t, :t)"
    )
    value = sa.text(
        "INSERT INTO profile_tag (profile_id, name, tag_value, source, writer, writer_version, written_us, trace_id)"
        " VALUES (:p, :n, '[\"b\", true]', 'RULE', 'tag:x', '1', 1, '')"
    )
    try:
        assert migrations.upgrade(db.engine, "profile_0009") == "profile_0009"
        now = dt.datetime.now(dt.UTC)
        with db.connection(write=True) as conn:
            conn.execute(
                definition, [{"n": n, "b": b"", "a": a, "t": now} for n, a in (("old", True), ("live", False))]
            )
            conn.execute(value, [{"p": p, "n": n} for p in ("p1", "p2") for n in ("old", "live")])
        assert migrations.upgrade(db.engine) == migrations.head()
        with db.connection() as conn:
            left = conn.execute(sa.text("SELECT profile_id, name FROM profile_tag ORDER BY 1, 2")).all()
        assert [tuple(r) for r in left] == [("p1", "live"), ("p2", "live")]
    finally:
        db.dispose()


def test_the_migration_compiles_for_the_domestic_databases() -> None:
    path = Path(__file__).parents[1] / "svc_profile/store/migrations/versions/profile_0010_archived_tag_values.py"
    for dialect in ("dm", "opengauss", "postgresql", "sqlite"):
        sql = offline_migration_sql(path, dialect)
        assert "DELETE FROM profile_tag WHERE profile_tag.name IN" in sql, (dialect, sql)
        assert "profile_tag_definition.archived IS" in sql, (dialect, sql)


# Noted by the walk: ExportMembers took an id type that is none and matched nothing, silently.
def test_an_export_asking_for_an_unknown_id_type_is_refused_naming_it(tmp_path: Path) -> None:
    logged_in = C.Condition(event_count=C.EventCount(event_type="login", min_count=1, window_seconds=86_400))
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        app.definitions.create_segment(pb.Segment(segment_id="active", condition=logged_in))
        app.consumer.handle([event("login", user_id="C1")], "c1")
        ((_, ids, _),) = next(iter(app.segments.export("active", 10, [CUSTOMER])))
        assert [i.id_value for i in ids] == ["C1"]
        with pytest.raises(InvalidArgument) as refused:
            next(iter(app.segments.export("active", 10, [CUSTOMER, 99])))
        assert refused.value.violations[0].field == "id_types[1]" and "99 is not an id type" in refused.value.message
        with pytest.raises(InvalidArgument):
            next(iter(app.segments.export("active", 10, [types_pb2.ID_TYPE_UNSPECIFIED])))
