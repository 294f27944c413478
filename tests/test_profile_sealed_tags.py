"""Level-3 tag values are SM4-sealed at rest (profile_tag.sealed_value, profile_0005): the raw row holds no
plaintext, evaluation and authorised reads see the value, rows stored in clear before are sealed by the sweep.
On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from profile_helpers import ANONYMOUS, event, profile_app, profile_settings, ref
from test_ddl_snapshots import offline_migration_sql

from svc_common.conditions import to_proto
from svc_common.db import Database
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.protection._sm import SealError
from svc_profile.store import SCHEMA

LEVEL_3 = types_pb2.SENSITIVITY_LEVEL_3
MODEL = types_pb2.Provenance(source=types_pb2.Provenance.SOURCE_MODEL, writer="svc_modeling")
UNMASK = frozenset({"unmask"})
SECRET = "5M-10M CNY"


def _external(name: str, sensitivity: int = 0) -> pb.TagDefinition:
    return pb.TagDefinition(name=name, external=pb.ExternalTag(writer="svc_modeling"), sensitivity=sensitivity)


def _banded(name: str, value: str, sensitivity: int = 0) -> pb.TagDefinition:
    """A rule tag worth ``value`` for customers of branch SH."""
    field = C.FieldRef(source=C.FieldRef.SOURCE_ATTRIBUTE, name="branch")
    sh = C.Condition(comparison=C.Comparison(field=field, operator=C.OPERATOR_EQ, value=to_proto("SH")))
    band = pb.TagBand(value=to_proto(value), condition=sh)
    return pb.TagDefinition(name=name, bands=pb.TagBands(bands=[band]), sensitivity=sensitivity)


def _tag_is(name: str, value: str) -> C.Condition:
    return C.Condition(has_tag=C.TagPresence(tag_name=name, operator=C.OPERATOR_EQ, value=to_proto(value)))


def _write(app: Any, user: str, tag: str, value: object, id_type: int = types_pb2.ID_TYPE_CUSTOMER) -> None:
    written, errors = app.tags.write(
        [pb.TagWrite(user=ref(user, id_type), tag_name=tag, value=to_proto(value))], MODEL, ""
    )
    assert (written, errors) == (1, [])


def _raw(app: Any) -> dict[tuple[str, str], tuple[str, bytes | None]]:
    """{(profile_id, tag): (tag_value text, sealed_value)} straight from the table."""
    with app.core.database.connection() as conn:
        rows = conn.execute(sa.text("SELECT profile_id, name, tag_value, sealed_value FROM profile_tag")).all()
    return {(p, n): (str(v), bytes(s) if s is not None else None) for p, n, v, s in rows}


def _pid(app: Any, user: str) -> str:
    with app.core.database.connection() as conn:
        return app.core.find(conn, app.core.policy.ref(types_pb2.ID_TYPE_CUSTOMER, user, "user"))


def _values(profile: pb.Profile) -> dict[str, object]:
    from svc_common.conditions import from_proto

    return {t.name: from_proto(t.value) for t in profile.tags}


def test_level_3_values_are_sealed_at_rest_and_evaluated_in_clear(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        defs = app.definitions
        defs.create_tag(_external("aum_band", LEVEL_3))
        defs.create_tag(_external("churn"))
        defs.create_tag(_banded("private_tier", "tier-secret", LEVEL_3))
        defs.create_tag(_banded("public_tier", "tier-open"))
        defs.create_segment(pb.Segment(segment_id="rich", condition=_tag_is("aum_band", SECRET)))
        defs.create_segment(pb.Segment(segment_id="tiered", condition=_tag_is("private_tier", "tier-secret")))
        logins = C.Condition(event_count=C.EventCount(event_type="login", window_seconds=86_400, min_count=1))
        active_rich = C.Condition(all_of=C.ConditionList(conditions=[_tag_is("aum_band", SECRET), logins]))
        defs.create_segment(pb.Segment(segment_id="active_rich", condition=active_rich))
        for user, branch in (("C1", "SH"), ("C2", "BJ")):
            app.profiles.upsert_attributes(ref(user), {"branch": to_proto(branch)}, [], "crm", frozenset())
        _write(app, "C1", "aum_band", SECRET)
        _write(app, "C2", "aum_band", "1M-5M CNY")
        _write(app, "C1", "churn", 0.4)
        c1, c2 = _pid(app, "C1"), _pid(app, "C2")

        raw = _raw(app)
        for key in ((c1, "aum_band"), (c2, "aum_band"), (c1, "private_tier")):
            text, sealed = raw[key]
            assert text == '["sealed"]' and sealed is not None, key
        every_column = repr(raw).encode()
        for secret in (SECRET, "1M-5M", "tier-secret"):
            assert secret not in repr(raw) and secret.encode() not in every_column
        assert raw[(c1, "churn")] == ('["d",0.4]', None)  # level 1: unchanged, in clear
        assert raw[(c1, "public_tier")] == ('["s","tier-open"]', None)

        # Conditions on the sealed values (a write's re-evaluation, then a full recompute) and authorised reads.
        def members(segment_id: str) -> set[str]:
            return {u for u in ("C1", "C2") if app.segments.check(segment_id, _key(app, u))[0]}

        assert members("rich") == {"C1"} and members("tiered") == {"C1"}
        app.segments.recompute("rich")
        app.segments.recompute("tiered")
        assert members("rich") == {"C1"} and members("tiered") == {"C1"}
        # The log consumer's lean tag rows (then its hot cache) open them too.
        app.consumer.handle([event("login", user_id="C1"), event("login", user_id="C2")], "b1")
        assert members("active_rich") == {"C1"}
        app.consumer.handle([event("login", user_id="C1")], "b2")
        assert members("active_rich") == {"C1"}

        shown = app.profiles.get(ref("C1"), ["tags"], UNMASK)
        assert _values(shown) == {
            "aum_band": SECRET,
            "churn": 0.4,
            "private_tier": "tier-secret",
            "public_tier": "tier-open",
        }
        plain = app.profiles.get(ref("C1"), ["tags"], frozenset())
        assert _values(plain) == {"churn": 0.4, "public_tier": "tier-open"}
        assert {"tags.aum_band", "tags.private_tier"} <= set(plain.masked_fields)
        batch, _ = app.profiles.batch_get([ref("C1")], ["tags"], UNMASK)
        assert _values(batch[0]) == _values(shown)
        listed = {t.name: t.tag_value for t in app.tags.list_user_tags(ref("C1"), UNMASK)}
        assert listed["aum_band"] == ["s", SECRET] and listed["private_tier"] == ["s", "tier-secret"]
        assert _raw(app)[(c1, "private_tier")][0] == '["sealed"]'  # re-evaluation kept it sealed


def _key(app: Any, user: str) -> Any:
    return app.core.policy.ref(types_pb2.ID_TYPE_CUSTOMER, user, "user")


def test_a_sealed_value_opens_only_on_its_own_row(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        app.definitions.create_tag(_external("aum_band", LEVEL_3))
        for user in ("C1", "C2"):
            app.profiles.upsert_attributes(ref(user), {"branch": to_proto("SH")}, [], "crm", frozenset())
            _write(app, user, "aum_band", f"{user}-secret")
        c1, c2 = _pid(app, "C1"), _pid(app, "C2")
        copied = _raw(app)[(c1, "aum_band")][1]
        with app.core.database.connection(write=True) as conn:
            conn.execute(
                sa.text("UPDATE profile_tag SET sealed_value = :s WHERE profile_id = :p AND name = 'aum_band'"),
                {"s": copied, "p": c2},
            )
        with pytest.raises(SealError):
            app.tags.list_user_tags(ref("C2"), UNMASK)


def test_clear_rows_are_read_and_then_sealed_by_the_sweep(tmp_path: Path, database_url: str) -> None:
    """Rows stored in clear — before profile_0005, or while the definition was below level 3 — read the same,
    and are sealed at start (``seal_sensitive_tags``) or when the definition is raised to level 3."""
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        defs = app.definitions
        defs.create_tag(_external("aum_band"))
        defs.create_tag(_external("old_secret", LEVEL_3))
        defs.create_segment(pb.Segment(segment_id="rich", condition=_tag_is("aum_band", SECRET)))
        app.profiles.upsert_attributes(ref("C1"), {"branch": to_proto("SH")}, [], "crm", frozenset())
        _write(app, "C1", "aum_band", SECRET)
        c1 = _pid(app, "C1")
        assert _raw(app)[(c1, "aum_band")] == (f'["s","{SECRET}"]', None)
        with app.core.database.connection(write=True) as conn:  # as a release before profile_0005 stored it
            conn.execute(
                sa.text(
                    "INSERT INTO profile_tag (profile_id, name, tag_value, source, writer, writer_version,"
                    " written_us, expires_us, trace_id) VALUES (:p, 'old_secret', '[\"s\",\"old-value\"]', 'MODEL',"
                    " 'svc_modeling', '', 1, NULL, '')"
                ),
                {"p": c1},
            )
        listed = {t.name: t.tag_value for t in app.tags.list_user_tags(ref("C1"), UNMASK)}
        assert listed == {"aum_band": ["s", SECRET], "old_secret": ["s", "old-value"]}

        assert defs.seal_sensitive_tags() == 1  # what the service does at start
        assert _raw(app)[(c1, "old_secret")][0] == '["sealed"]'
        assert _raw(app)[(c1, "aum_band")] == (f'["s","{SECRET}"]', None)  # level 1: left alone
        assert defs.seal_sensitive_tags() == 0

        raised = _external("aum_band", LEVEL_3)
        defs.update_tag(raised, 0)
        text, sealed = _raw(app)[(c1, "aum_band")]
        assert text == '["sealed"]' and SECRET.encode() not in (sealed or b"")
        listed = {t.name: t.tag_value for t in app.tags.list_user_tags(ref("C1"), UNMASK)}
        assert listed == {"aum_band": ["s", SECRET], "old_secret": ["s", "old-value"]}
        app.segments.recompute("rich")
        assert app.segments.check("rich", _key(app, "C1"))[0]

        # Lowered again: new writes go in clear and replace the sealed value (reads take both).
        defs.update_tag(_external("aum_band"), 0)
        _write(app, "C1", "aum_band", "1M-5M CNY")
        assert _raw(app)[(c1, "aum_band")] == ('["s","1M-5M CNY"]', None)


def test_a_merge_moves_a_sealed_value_sealed_for_the_survivor(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        app.definitions.create_tag(_external("aum_band", LEVEL_3))
        app.consumer.handle([event("app_start", anonymous_id="dev-1")], "b1")
        _write(app, "dev-1", "aum_band", SECRET, ANONYMOUS)
        app.consumer.handle([event("login", user_id="C1", anonymous_id="dev-1")], "b2")  # dev-1 merges into C1
        c1 = _pid(app, "C1")
        raw = _raw(app)
        assert list(raw) == [(c1, "aum_band")] and raw[(c1, "aum_band")][0] == '["sealed"]'
        assert _values(app.profiles.get(ref("C1"), ["tags"], UNMASK)) == {"aum_band": SECRET}


def test_one_call_writing_sealed_and_clear_tags_reports_unknown_ids_by_position(
    tmp_path: Path, database_url: str
) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        app.definitions.create_tag(_external("aum_band", LEVEL_3))
        app.definitions.create_tag(_external("churn"))
        app.profiles.upsert_attributes(ref("C1"), {"branch": to_proto("SH")}, [], "crm", frozenset())
        writes = [
            pb.TagWrite(user=ref("C1"), tag_name="churn", value=to_proto(0.1)),
            pb.TagWrite(user=ref("NOBODY"), tag_name="aum_band", value=to_proto("x")),
            pb.TagWrite(user=ref("C1"), tag_name="aum_band", value=to_proto("first")),
            pb.TagWrite(user=ref("NOBODY2"), tag_name="churn", value=to_proto(0.2)),
            pb.TagWrite(user=ref("C1"), tag_name="aum_band", value=to_proto(SECRET)),
        ]
        written, errors = app.tags.write(writes, MODEL, "")
        assert written == 3 and [(e[0], e[1]) for e in errors] == [(1, "PROFILE_NOT_FOUND"), (3, "PROFILE_NOT_FOUND")]
        c1 = _pid(app, "C1")
        raw = _raw(app)
        assert raw[(c1, "churn")] == ('["d",0.1]', None) and raw[(c1, "aum_band")][0] == '["sealed"]'
        assert _values(app.profiles.get(ref("C1"), ["tags"], UNMASK)) == {"aum_band": SECRET, "churn": 0.1}


def _offline_sql(dialect_name: str, step: str) -> str:
    path = Path(__file__).resolve().parent.parent / "svc_profile/store/migrations/versions/profile_0005_sealed_tags.py"
    return offline_migration_sql(path, dialect_name, step).upper()


@pytest.mark.parametrize("dialect_name", ["opengauss", "dm", "postgresql", "sqlite"])
def test_the_migration_compiles_for_every_database(dialect_name: str) -> None:
    assert "ALTER TABLE PROFILE_TAG ADD" in _offline_sql(dialect_name, "upgrade")
    assert " SEALED_VALUE " in _offline_sql(dialect_name, "upgrade") + " "
    downgrade = _offline_sql(dialect_name, "downgrade")
    assert "DELETE FROM PROFILE_TAG WHERE SEALED_VALUE IS NOT NULL" in downgrade and "DROP" in downgrade


def test_the_migration_adds_the_column_and_the_way_back_drops_sealed_rows(tmp_path: Path, database_url: str) -> None:
    db = Database.from_settings(profile_settings(tmp_path, database_url))
    migrations = SCHEMA.migrations
    columns = "profile_id, name, tag_value, source, writer, writer_version, written_us, trace_id"
    insert = sa.text(f"INSERT INTO profile_tag ({columns}) VALUES (:p, :n, :v, 'MODEL', 'm', '', 1, '')")
    try:
        assert migrations.upgrade(db.engine, "profile_0004") == "profile_0004"
        with db.connection(write=True) as conn:
            conn.execute(insert, {"p": "p1", "n": "churn", "v": '["d",0.4]'})
        assert migrations.upgrade(db.engine, "profile_0005") == "profile_0005"
        with db.connection(write=True) as conn:
            assert conn.execute(sa.text("SELECT tag_value, sealed_value FROM profile_tag")).all() == [
                ('["d",0.4]', None)
            ]
            conn.execute(
                sa.text(
                    f"INSERT INTO profile_tag ({columns}, sealed_value)"
                    " VALUES (:p, 'aum', :v, 'MODEL', 'm', '', 1, '', :s)"
                ),
                {"p": "p1", "v": '["sealed"]', "s": b"\x01sealed"},
            )
        with db.engine.connect() as conn:
            command.downgrade(migrations._config(conn), "profile_0004")
            conn.commit()
        with db.connection() as conn:
            assert conn.execute(sa.text("SELECT name, tag_value FROM profile_tag")).all() == [("churn", '["d",0.4]')]
        assert migrations.upgrade(db.engine) == migrations.head()
    finally:
        db.dispose()


def test_sealed_rows_in_bulk_read_the_same_lean_and_full(tmp_path: Path, database_url: str) -> None:
    """Many sealed rows in one upsert (PostgreSQL: one statement of arrays, the bytes included), read back by the
    consumer's lean read and by load_tags."""
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        store = app.core.store
        pids = [f"p{i:03d}" for i in range(50)]
        rows = [
            {
                "profile_id": pid,
                "name": name,
                "tag_value": ["s", f"{pid}-{name}"],
                "source": "MODEL",
                "writer": "m",
                "writer_version": "1",
                "written_us": 5,
                "expires_us": None,
                "trace_id": "",
            }
            for pid in pids
            for name in ("aum_band", "churn")
        ]
        with app.core.writing() as conn:
            store.upsert_tags(conn, rows, sensitive={"aum_band"})
        raw = _raw(app)
        assert all(raw[(p, "aum_band")][0] == '["sealed"]' for p in pids)
        assert all(raw[(p, "churn")] == (f'["s","{p}-churn"]', None) for p in pids)
        with app.core.database.connection() as conn:
            lean, full = store.tag_rows(conn, pids), store.load_tags(conn, pids)
        for pid in pids:
            for name in ("aum_band", "churn"):
                assert lean[pid][name].tag_value == full[pid][name].tag_value == ["s", f"{pid}-{name}"]
