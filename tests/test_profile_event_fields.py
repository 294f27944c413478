"""The retained events keep their channel, ids and context fields (profile_0006): event filters on them work in
segments, tags and funnels; rows stored before the migration read as events without them. On SQLite and
PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from profile_helpers import ANONYMOUS, CUSTOMER, event, profile_app, profile_settings, ref
from test_ddl_snapshots import offline_migration_sql

from svc_common.conditions import to_proto
from svc_common.db import Database
from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_profile.store import SCHEMA

VERSIONS = Path(__file__).resolve().parent.parent / "svc_profile" / "store" / "migrations" / "versions"


def _compare(source: int, name: str, operator: int, value: object = None) -> C.Condition:
    field = C.FieldRef(source=source, name=name)
    comparison = C.Comparison(field=field, operator=operator)
    if value is not None:
        comparison.value.CopyFrom(to_proto(value))
    return C.Condition(comparison=comparison)


def _within(event_type: str, event_filter: C.Condition) -> C.Condition:
    spec = C.EventCount(event_type=event_type, min_count=1, window_seconds=7 * 86_400, filter=event_filter)
    return C.Condition(event_count=spec)


FROM_APP = _compare(C.FieldRef.SOURCE_EVENT, "channel", C.OPERATOR_EQ, "app")


def _from(channel: int, *args: Any, **kwargs: Any) -> Any:
    e = event(*args, **kwargs)
    e.channel = channel
    return e


def _member(app: Any, segment_id: str, user: str, id_type: int = CUSTOMER) -> bool:
    return app.segments.check(segment_id, app.core.policy.ref(id_type, user, "user"))[0]


def test_filters_on_channel_ids_and_context_match_only_such_events(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        defs = app.definitions
        defs.create_segment(pb.Segment(segment_id="app_logins", condition=_within("login", FROM_APP)))
        new_app = _compare(C.FieldRef.SOURCE_CONTEXT, "app_version", C.OPERATOR_STARTS_WITH, "9.")
        ios = _compare(C.FieldRef.SOURCE_CONTEXT, "os", C.OPERATOR_EQ, "iOS")
        both = C.Condition(all_of=C.ConditionList(conditions=[new_app, ios]))
        defs.create_tag(pb.TagDefinition(name="new_ios_app", condition=_within("app_start", both)))
        signed_in = _compare(C.FieldRef.SOURCE_EVENT, "user_id", C.OPERATOR_EXISTS)
        defs.create_segment(pb.Segment(segment_id="signed_in_views", condition=_within("page_view", signed_in)))
        device = _compare(C.FieldRef.SOURCE_EVENT, "anonymous_id", C.OPERATOR_EQ, "dev-9")
        defs.create_segment(pb.Segment(segment_id="on_dev_9", condition=_within("page_view", device)))

        c1_start = _from(types_pb2.CHANNEL_APP, "app_start", user_id="C1")
        c1_start.context.app_version, c1_start.context.os, c1_start.context.device_model = "9.1.0", "iOS", "iPhone15"
        c2_start = _from(types_pb2.CHANNEL_APP, "app_start", user_id="C2")
        c2_start.context.app_version, c2_start.context.os = "8.7.0", "iOS"
        batch = [
            _from(types_pb2.CHANNEL_APP, "login", user_id="C1"),
            _from(types_pb2.CHANNEL_WEB, "login", user_id="C2"),
            c1_start,
            c2_start,
            _from(types_pb2.CHANNEL_WEB, "page_view", user_id="C1", anonymous_id="dev-9"),
            _from(types_pb2.CHANNEL_WEB, "page_view", anonymous_id="dev-3"),
        ]
        app.consumer.handle(batch, "c1")
        assert _member(app, "app_logins", "C1") and not _member(app, "app_logins", "C2")
        assert _member(app, "signed_in_views", "C1") and not _member(app, "signed_in_views", "dev-3", ANONYMOUS)
        assert _member(app, "on_dev_9", "C1")
        tags = {t.name for t in app.profiles.get(ref("C1"), ["tags"], frozenset()).tags}
        assert "new_ios_app" in tags
        assert "new_ios_app" not in {t.name for t in app.profiles.get(ref("C2"), ["tags"], frozenset()).tags}

        # A full recompute reads the same rows.
        app.segments.recompute("app_logins")
        assert _member(app, "app_logins", "C1") and not _member(app, "app_logins", "C2")

        with app.core.database.connection() as conn:
            rows = conn.execute(
                sa.text("SELECT event_type, channel, user_id, anonymous_id, context_fields, screen FROM profile_event")
            ).all()
        stored = {(r[0], r[2] or r[3]): tuple(r[1:5]) for r in rows}
        assert stored[("app_start", "C1")][0] == types_pb2.CHANNEL_APP
        assert stored[("page_view", "dev-3")] == (types_pb2.CHANNEL_WEB, None, "dev-3", None)
        context = next(r[4] for r in rows if r[0] == "app_start" and r[2] == "C1")
        assert context == '{"app_version":"9.1.0","os":"iOS","device_model":"iPhone15"}'


LONG_URL = "https://example.com/fund/detail?" + "x" * 280 + "&utm_campaign=spring"  # 330 characters


@pytest.mark.parametrize(
    ("condition", "matches"),
    [
        (_compare(C.FieldRef.SOURCE_CONTEXT, "page_url", C.OPERATOR_CONTAINS, "utm_campaign=spring"), True),
        (_compare(C.FieldRef.SOURCE_CONTEXT, "page_url", C.OPERATOR_EQ, LONG_URL), True),
        (_compare(C.FieldRef.SOURCE_CONTEXT, "page_url", C.OPERATOR_EQ, LONG_URL[:256]), False),
        (_compare(C.FieldRef.SOURCE_CONTEXT, "screen", C.OPERATOR_EQ, "s" * 300), True),
        (_compare(C.FieldRef.SOURCE_CONTEXT, "screen", C.OPERATOR_EQ, "s" * 256), False),
        (_compare(C.FieldRef.SOURCE_EVENT_PROPERTY, "note", C.OPERATOR_CONTAINS, "tail"), True),
    ],
)
def test_filters_compare_long_values_whole(tmp_path: Path, condition: C.Condition, matches: bool) -> None:
    """svc_collect accepts strings up to its max_string_chars: a retained event keeps them whole (it cut context
    fields and string properties to 256 characters, so a filter missed what lay past the cut, or matched a prefix)."""
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        app.definitions.create_segment(pb.Segment(segment_id="long", condition=_within("page_view", condition)))
        e = event("page_view", user_id="C1", screen="s" * 300, note="n" * 300 + "tail")
        e.context.page_url = LONG_URL
        app.consumer.handle([e], "c1")
        assert _member(app, "long", "C1") is matches


def test_a_funnel_step_filter_on_the_channel(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        batch = []
        for user, channel in (("C1", types_pb2.CHANNEL_APP), ("C2", types_pb2.CHANNEL_WEB)):
            batch.append(_from(channel, "view", user_id=user))
            batch.append(_from(channel, "buy", user_id=user))
        app.consumer.handle(batch, "c1")
        steps = [pb.FunnelStep(event_type="view"), pb.FunnelStep(event_type="buy", filter=FROM_APP)]
        overall = app.analytics.funnel(steps, 3600, None, None)[0]
        assert [s.count for s in overall.steps] == [2, 1]
        unfiltered = [pb.FunnelStep(event_type="view"), pb.FunnelStep(event_type="buy")]
        assert [s.count for s in app.analytics.funnel(unfiltered, 3600, None, None)[0].steps] == [2, 2]


def test_rows_stored_before_the_migration_read_as_events_without_those_fields(
    tmp_path: Path, database_url: str
) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        defs = app.definitions
        no_channel = _compare(C.FieldRef.SOURCE_EVENT, "channel", C.OPERATOR_NOT_EXISTS)
        defs.create_segment(pb.Segment(segment_id="app_logins", condition=_within("login", FROM_APP)))
        defs.create_segment(pb.Segment(segment_id="unknown_channel", condition=_within("login", no_channel)))
        app.consumer.handle([_from(types_pb2.CHANNEL_APP, "login", user_id="C1")], "c1")
        assert _member(app, "app_logins", "C1") and not _member(app, "unknown_channel", "C1")
        with app.core.database.connection(write=True) as conn:  # as profile_0006 leaves a row stored before it
            conn.execute(sa.text("UPDATE profile_event SET channel = NULL, user_id = NULL, anonymous_id = NULL"))
        app.segments.recompute("app_logins")
        app.segments.recompute("unknown_channel")
        assert not _member(app, "app_logins", "C1") and _member(app, "unknown_channel", "C1")


def _offline_sql(dialect_name: str, step: str) -> str:
    return offline_migration_sql(VERSIONS / "profile_0006_event_fields.py", dialect_name, step)


@pytest.mark.parametrize("dialect_name", ["opengauss", "dm", "postgresql", "sqlite"])
def test_the_migration_compiles_for_every_database(dialect_name: str) -> None:
    upgrade = _offline_sql(dialect_name, "upgrade").upper()
    for column in ("CHANNEL", "USER_ID", "ANONYMOUS_ID", "CONTEXT_FIELDS"):
        assert f"ALTER TABLE PROFILE_EVENT ADD {column}" in upgrade.replace(" COLUMN ", " ")
    downgrade = _offline_sql(dialect_name, "downgrade").upper()
    assert downgrade.count("ALTER TABLE PROFILE_EVENT DROP") == 4


def test_the_migration_keeps_the_stored_events_and_back(tmp_path: Path, database_url: str) -> None:
    db = Database.from_settings(profile_settings(tmp_path, database_url))
    migrations = SCHEMA.migrations
    columns = "event_id, profile_id, occurred_us, event_type, session_id, screen, properties"
    row = {"e": "e1", "p": "p1", "t": 1_000, "y": "login", "s": "s1", "c": "home", "j": "{}"}
    try:
        assert migrations.upgrade(db.engine, "profile_0005") == "profile_0005"
        with db.connection(write=True) as conn:
            conn.execute(sa.text(f"INSERT INTO profile_event ({columns}) VALUES (:e, :p, :t, :y, :s, :c, :j)"), row)
        assert migrations.upgrade(db.engine, "profile_0006") == "profile_0006"
        with db.connection() as conn:
            stored = conn.execute(
                sa.text(f"SELECT {columns}, channel, user_id, anonymous_id, context_fields FROM profile_event")
            )
            assert [tuple(r) for r in stored] == [
                ("e1", "p1", 1_000, "login", "s1", "home", "{}", None, None, None, None)
            ]
        with db.engine.connect() as conn:
            command.downgrade(migrations._config(conn), "profile_0005")
            conn.commit()
        with db.connection() as conn:
            assert conn.execute(sa.text(f"SELECT {columns} FROM profile_event")).all() == [tuple(row.values())]
        assert migrations.upgrade(db.engine) == migrations.head()
    finally:
        db.dispose()


def test_a_filter_on_a_channel_name_no_channel_has_is_refused(tmp_path: Path) -> None:
    """channel reads as the Channel name (app, wechat_mini_program …): "wechat" could never match, so a definition
    comparing with it is refused naming the value; real names are accepted."""
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        wrong = C.Comparison(field=C.FieldRef(source=C.FieldRef.SOURCE_EVENT, name="channel"), operator=C.OPERATOR_IN)
        wrong.values.extend([to_proto("wechat_mini_program"), to_proto("wechat")])
        segment = pb.Segment(segment_id="wechat", condition=_within("fund_view", C.Condition(comparison=wrong)))
        with pytest.raises(InvalidArgument, match="'wechat' is not a channel") as refused:
            app.definitions.create_segment(segment)
        assert refused.value.violations[0].field.endswith("filter.comparison.values[1]")
        del wrong.values[1]
        segment.condition.CopyFrom(_within("fund_view", C.Condition(comparison=wrong)))
        assert app.definitions.create_segment(segment).version == 1
