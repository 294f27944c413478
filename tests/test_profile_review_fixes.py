"""Regression tests for the defects a review of svc_profile found (/tmp/report-review-prof.md, numbered as there):
each test fails on the code before its fix."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from google.protobuf.timestamp_pb2 import Timestamp
from profile_helpers import ANONYMOUS, CUSTOMER, DAY, event, profile_app, profile_settings, ref

from svc_common.conditions import from_proto, to_proto
from svc_common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import event_pb2, types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_profile.model import from_us
from svc_profile.segments import Sweeper, SweepWatermark


# 1. The log never links a second customer number to a customer's profile.
@pytest.mark.parametrize("event_type", ["page_view", "login", "$alias"])
def test_an_event_carrying_a_second_customer_number_is_refused_and_counted(
    tmp_path: Path, database_url: str, event_type: str
) -> None:
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        app.consumer.handle([event("login", user_id="C1", anonymous_id="dev-1")], "c1")
        carrier = event(event_type, user_id="C1", anonymous_id="dev-9")
        carrier.identities.add(type=CUSTOMER, value="C2")
        counts = app.consumer.handle([carrier], "c2")
        assert counts["refused"] == 1 and app.consumer.refused_merges == 1
        with pytest.raises(NotFound):  # C2 was not linked anywhere
            app.profiles.get(ref("C2"), [], frozenset())
        # C2's own later login makes a profile of its own, not C1's.
        app.consumer.handle([event("login", user_id="C2", anonymous_id="dev-2")], "c3")
        c1 = app.profiles.get(ref("C1"), ["identities"], frozenset())
        c2 = app.profiles.get(ref("C2"), [], frozenset())
        assert c2.profile_id != c1.profile_id
        assert [i.identity.value for i in c1.identities if i.identity.type == CUSTOMER] == ["C1"]


def test_a_new_person_whose_event_carries_two_customer_numbers_keeps_the_first(
    tmp_path: Path, database_url: str
) -> None:
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        carrier = event("$alias", anonymous_id="dev-5")
        carrier.identities.add(type=CUSTOMER, value="C5")
        carrier.identities.add(type=CUSTOMER, value="C6")
        counts = app.consumer.handle([carrier], "c1")
        assert counts["refused"] == 1
        assert app.profiles.get(ref("C5"), [], frozenset()).profile_id
        with pytest.raises(NotFound):
            app.profiles.get(ref("C6"), [], frozenset())


# 2. A builtin parameter of the wrong type or range is refused at definition time and never stops the consumer.
@pytest.mark.parametrize(
    ("tag", "name", "value"),
    [
        ("fin_trading_frequency", "window_days", "thirty"),
        ("fin_trading_frequency", "window_days", 0),
        ("fin_trading_frequency", "window_days", 401),
        ("fin_trading_frequency", "high", "20"),
        ("fin_trading_frequency", "medium", 4.5),
        ("lifecycle_stage", "new_days", "x"),
        ("fin_dormant_activation", "quote_event", ""),
        ("fin_dormant_activation", "fund_event", 7),
        ("fin_dormant_activation", "login_weight", True),
        ("fin_dormant_activation", "quote_cap", 0),
        ("fin_risk_mismatch", "view_share", 1.5),
        ("fin_risk_mismatch", "min_views", 0),  # would divide by zero views
        ("fin_fund_preference", "holding_weight", "half"),
    ],
)
def test_a_builtin_parameter_of_the_wrong_type_or_range_is_refused_naming_it(
    tmp_path: Path, tag: str, name: str, value: object
) -> None:
    with profile_app(profile_settings(tmp_path, f"sqlite:///{tmp_path / 't.db'}")) as app:
        definition = app.definitions.get_tag(tag)
        definition.builtin.parameters[name].CopyFrom(to_proto(value))
        with pytest.raises(InvalidArgument) as refused:
            app.definitions.update_tag(definition, 0)
        assert [v.field for v in refused.value.violations] == [f"definition.builtin.parameters[{name}]"]
        assert app.definitions.get_tag(tag).version == 1  # nothing stored
        app.consumer.handle([event("trade_filled", user_id="C1", amount_fen=100)], "c1")
        assert app.consumer.load_cursor() == "c1"


def test_good_builtin_parameters_are_still_accepted(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, f"sqlite:///{tmp_path / 't.db'}")) as app:
        definition = app.definitions.get_tag("fin_dormant_activation")
        for name, value in {"window_days": 60, "quote_event": "stock_quote", "quote_cap": 5, "login_weight": 0}.items():
            definition.builtin.parameters[name].CopyFrom(to_proto(value))
        assert app.definitions.update_tag(definition, 0).version == 2
        definition = app.definitions.get_tag("fin_risk_mismatch")
        definition.builtin.parameters["view_share"].CopyFrom(to_proto(1))  # an int where the default is a float
        assert app.definitions.update_tag(definition, 0).version == 2


def test_a_bad_parameter_stored_before_validation_is_left_at_its_default(tmp_path: Path, database_url: str) -> None:
    """A version stored by an older release: loading it uses the default for the bad parameter, so the log
    consumer keeps going."""
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        definition = app.definitions.get_tag("fin_trading_frequency")
        definition.builtin.parameters["window_days"].CopyFrom(to_proto("thirty"))
        definition.builtin.parameters["high"].CopyFrom(to_proto(10))
        with app.core.writing() as conn:  # past validation, as an older release stored it
            app.definitions._insert_tag(conn, definition, 2, dt.datetime.now(dt.UTC), dt.datetime.now(dt.UTC))
        app.definitions.load()
        rule = app.core.engine.tags["fin_trading_frequency"]
        assert rule.version == 2 and rule.params["window_days"] == 30 and rule.params["high"] == 10
        app.consumer.handle([event("trade_filled", user_id="C1", amount_fen=100)], "c1")
        assert app.consumer.load_cursor() == "c1"
        tags = app.profiles.get(ref("C1"), ["tags"], frozenset()).tags
        assert {t.name for t in tags} >= {"fin_trading_frequency"}


def _tag(app: Any, user: str, name: str) -> object:
    profile = app.profiles.get(ref(user), ["tags"], frozenset())
    return {t.name: from_proto(t.value) for t in profile.tags}.get(name)


def _set_parameters(app: Any, tag: str, **values: object) -> None:
    definition = app.definitions.get_tag(tag)
    for name, value in values.items():
        definition.builtin.parameters[name].CopyFrom(to_proto(value))
    app.definitions.update_tag(definition, 0)


# 8. The builtin formulas read the event types and windows their parameters name.
def test_dormant_activation_reads_the_event_type_its_parameter_names(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        _set_parameters(app, "fin_dormant_activation", quote_event="stock_quote")
        app.consumer.handle([event("stock_quote", user_id="C1") for _ in range(20)], "c1")
        assert _tag(app, "C1", "fin_dormant_activation") == 25  # 25 × min(20 / 20, 1), in the consumer
        app.segments.refresh_everyone("recompute")
        assert _tag(app, "C1", "fin_dormant_activation") == 25  # and in a recompute of everyone


def test_trading_frequency_counts_trades_over_a_window_longer_than_90_days(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        _set_parameters(app, "fin_trading_frequency", window_days=120)
        now = time.time_ns() // 1000
        app.consumer.handle([event("trade_filled", user_id="C1", at_us=now - 100 * DAY) for _ in range(5)], "c1")
        assert _tag(app, "C1", "fin_trading_frequency") == "medium"  # 5 trades ≥ 4 within 120 days
        app.segments.refresh_everyone("recompute")
        assert _tag(app, "C1", "fin_trading_frequency") == "medium"


def _opened(app: Any, user: str, days_ago: int, now: int) -> None:
    opened = to_proto(from_us(now - days_ago * DAY))
    app.profiles.upsert_attributes(ref(user), {"account_opened_at": opened}, [], "crm", frozenset())


def _stage(app: Any, user: str) -> int:
    return app.profiles.get(ref(user), [], frozenset()).lifecycle_stage


# 6. AT_RISK → CHURNED happens in the sweep for a customer who was never active.
def test_the_sweep_churns_an_account_never_active_when_it_ages_past_churned_days(
    tmp_path: Path, database_url: str
) -> None:
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        now = time.time_ns() // 1000
        _opened(app, "C1", 80, now)  # never active: AT_RISK until 90 days after opening
        _opened(app, "C2", 200, now)
        app.consumer.handle([event("login", user_id="C2", at_us=now - 40 * DAY)], "c1")  # AT_RISK by its login
        assert _stage(app, "C1") == _stage(app, "C2") == pb.LIFECYCLE_STAGE_AT_RISK
        result = app.segments.sweep(now, now + DAY)  # day 81: C1 still AT_RISK, C2 has a login in the window
        assert result["candidates"] == 1  # only C1 ages; C2 is left to its login's bucket
        for k in range(2, 12):
            app.segments.sweep(now + (k - 1) * DAY, now + k * DAY)
        assert _stage(app, "C1") == pb.LIFECYCLE_STAGE_CHURNED
        assert _stage(app, "C2") == pb.LIFECYCLE_STAGE_AT_RISK
        with app.core.writing() as conn:  # the sweep missed nothing
            assert app.core.engine.refresh(conn, None, now + 11 * DAY, cause="test")["lifecycle"] == 0


# 7. The first sweep after a downtime covers every day boundary since the last sweep (kept in the database).
def test_the_first_sweep_after_a_downtime_covers_every_boundary_since_the_last(
    tmp_path: Path, database_url: str
) -> None:
    settings = profile_settings(tmp_path, database_url)
    login_7d = C.Condition(event_count=C.EventCount(event_type="login", min_count=1, window_seconds=7 * 86_400))
    now = time.time_ns() // 1000
    with profile_app(settings) as app:
        app.definitions.create_segment(pb.Segment(segment_id="login_7d", condition=login_7d))
        _opened(app, "C1", 60, now)
        app.consumer.handle([event("login", user_id="C1", at_us=now)], "c1")
        assert app.segments.check("login_7d", (CUSTOMER, "C1"))[0]
        app.segments.catch_up(now)  # the last sweep before the service stops
    with profile_app(settings) as app:  # a new process, ten days later
        result = app.segments.catch_up(now + 10 * DAY)
        assert result["candidates"] >= 1 and "everyone" not in result
        assert not app.segments.check("login_7d", (CUSTOMER, "C1"))[0]
        with app.core.writing() as conn:  # the sweep missed nothing
            changes = app.core.engine.refresh(conn, None, now + 10 * DAY, cause="test")
        assert changes["exited"] == changes["entered"] == changes["lifecycle"] == 0
        # The next sweep starts from there.
        assert app.segments.catch_up(now + 10 * DAY + 60_000_000)["candidates"] == 0


def test_a_sweep_after_more_than_a_month_down_evaluates_everyone_once(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, f"sqlite:///{tmp_path / 't.db'}")) as app:
        now = time.time_ns() // 1000
        _opened(app, "C1", 10, now)
        app.segments.catch_up(now)
        assert _stage(app, "C1") == pb.LIFECYCLE_STAGE_NEW
        result = app.segments.catch_up(now + 100 * DAY)
        assert result["everyone"] == 1 and result["candidates"] == 1
        assert _stage(app, "C1") != pb.LIFECYCLE_STAGE_NEW


def test_a_sweep_with_nothing_to_do_keeps_the_consumers_hot_persons(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, f"sqlite:///{tmp_path / 't.db'}", finance_pack=False)) as app:
        now = time.time_ns() // 1000
        app.segments.catch_up(now)
        app.consumer.handle([event("page_view", user_id="C1")], "c1")
        assert app.core.hot.rows
        assert app.segments.catch_up(now + 1)["candidates"] == 0  # saving the watermark changes no person
        assert app.core.hot.rows


def test_the_sweeper_task_sweeps_from_the_stored_watermark(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, f"sqlite:///{tmp_path / 't.db'}", finance_pack=False)) as app:
        watermark = SweepWatermark(app.segments)
        assert watermark.load() is None
        before = time.time_ns() // 1000

        async def one_sweep() -> None:
            task = asyncio.create_task(Sweeper(app.segments, 3600).run())
            while watermark.load() is None:
                await asyncio.sleep(0.01)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        asyncio.run(asyncio.wait_for(one_sweep(), 30))
        assert watermark.load() >= before


def _wide(n: int) -> C.Condition:
    """A condition of ``n`` nodes: any_of over n - 1 attribute comparisons."""
    leaves = [
        C.Condition(
            comparison=C.Comparison(
                field=C.FieldRef(source=C.FieldRef.SOURCE_ATTRIBUTE, name=f"a{i}"),
                operator=C.OPERATOR_EQ,
                value=to_proto(i),
            )
        )
        for i in range(n - 1)
    ]
    return C.Condition(any_of=C.ConditionList(conditions=leaves))


def _bands(*sizes: int) -> pb.TagDefinition:
    bands = [pb.TagBand(value=to_proto(f"b{i}"), condition=_wide(n)) for i, n in enumerate(sizes)]
    return pb.TagDefinition(name="banded", bands=pb.TagBands(bands=bands))


# 16. The 256-node limit holds for a whole bands definition, and the bands are bounded.
def test_the_node_limit_counts_every_band_of_a_tag(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, f"sqlite:///{tmp_path / 't.db'}", finance_pack=False)) as app:
        with pytest.raises(InvalidArgument) as refused:
            app.definitions.create_tag(_bands(200, 200))  # each band alone is within the limit
        assert [v.field for v in refused.value.violations] == ["definition.bands.bands[1].condition"]
        with pytest.raises(InvalidArgument) as refused:
            app.definitions.create_tag(_bands(*[2] * 65))
        assert [v.field for v in refused.value.violations] == ["definition.bands.bands[64]"]
        assert app.definitions.create_tag(_bands(128, 128)).version == 1  # 256 in all: accepted


def _compare(source: int, name: str, operator: int, value: object) -> C.Condition:
    field = C.FieldRef(source=source, name=name)
    return C.Condition(comparison=C.Comparison(field=field, operator=operator, value=to_proto(value)))


def _model_write(app: Any, user: str, tag: str, value: object, **fields: Any) -> None:
    provenance = types_pb2.Provenance(source=types_pb2.Provenance.SOURCE_MODEL, writer="svc_modeling")
    written, errors = app.tags.write(
        [pb.TagWrite(user=ref(user), tag_name=tag, value=to_proto(value), **fields)], provenance, ""
    )
    assert written == 1 and not errors


# 4. WriteTags re-evaluates the segments and rule tags that read the written value as a score.
def test_a_score_write_re_evaluates_segments_and_tags_reading_it_as_a_score(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        external = pb.ExternalTag(writer="svc_modeling")
        app.definitions.create_tag(pb.TagDefinition(name="churn_score", external=external))
        likely = _compare(C.FieldRef.SOURCE_SCORE, "churn_score", C.OPERATOR_GT, 0.8)
        app.definitions.create_segment(pb.Segment(segment_id="likely_churn", condition=likely))
        app.definitions.create_tag(pb.TagDefinition(name="churn_risk", condition=likely))
        app.profiles.upsert_attributes(ref("C1"), {"branch": to_proto("SH")}, [], "crm", frozenset())
        _model_write(app, "C1", "churn_score", 0.93)
        assert app.segments.check("likely_churn", (CUSTOMER, "C1"))[0]
        assert _tag(app, "C1", "churn_risk") is True
        _model_write(app, "C1", "churn_score", 0.2)
        assert not app.segments.check("likely_churn", (CUSTOMER, "C1"))[0]


def _in(segment_id: str) -> C.Condition:
    return C.Condition(in_segment=C.SegmentMembership(segment_id=segment_id))


def _all(*conditions: C.Condition) -> C.Condition:
    return C.Condition(all_of=C.ConditionList(conditions=list(conditions)))


def _member(app: Any, segment_id: str, user: str) -> bool:
    return app.segments.check(segment_id, (CUSTOMER, user))[0]


# 3. Segments reading in_segment of a static list or of a recomputed segment follow its changes.
def test_readers_of_a_static_list_follow_set_static_members(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        defs = app.definitions
        defs.create_segment(pb.Segment(segment_id="uplift", static_list=pb.StaticSegment(source="svc_modeling")))
        in_sh = _compare(C.FieldRef.SOURCE_ATTRIBUTE, "branch", C.OPERATOR_EQ, "SH")
        defs.create_segment(pb.Segment(segment_id="uplift_sh", condition=_all(_in("uplift"), in_sh)))
        defs.create_segment(pb.Segment(segment_id="uplift_sh_copy", condition=_in("uplift_sh")))  # a reader's reader
        for user, branch in (("C1", "SH"), ("C2", "BJ")):
            app.profiles.upsert_attributes(ref(user), {"branch": to_proto(branch)}, [], "crm", frozenset())
        app.segments.set_static("uplift", [(CUSTOMER, "C1"), (CUSTOMER, "C2")], True)
        assert _member(app, "uplift_sh", "C1") and _member(app, "uplift_sh_copy", "C1")
        assert not _member(app, "uplift_sh", "C2")
        app.segments.set_static("uplift", [(CUSTOMER, "C2")], True)  # C1 leaves the list
        assert not _member(app, "uplift_sh", "C1") and not _member(app, "uplift_sh_copy", "C1")
        with app.core.writing() as conn:  # nothing left stale
            changes = app.core.engine.refresh(conn, None, time.time_ns() // 1000, cause="test")
        assert changes["entered"] == changes["exited"] == 0


@pytest.mark.parametrize("source", [C.FieldRef.SOURCE_ATTRIBUTE, C.FieldRef.SOURCE_TAG])  # SQL / evaluator recompute
def test_readers_of_a_segment_follow_its_recompute(tmp_path: Path, database_url: str, source: int) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        defs = app.definitions
        defs.create_tag(pb.TagDefinition(name="tier", external=pb.ExternalTag(writer="svc_modeling")))
        gold = _compare(source, "tier", C.OPERATOR_EQ, "gold")
        defs.create_segment(pb.Segment(segment_id="premium", condition=gold))
        defs.create_segment(pb.Segment(segment_id="premium_readers", condition=_in("premium")))
        app.profiles.upsert_attributes(ref("C1"), {"tier": to_proto("gold")}, [], "crm", frozenset())
        _model_write(app, "C1", "tier", "gold")
        assert _member(app, "premium", "C1") and _member(app, "premium_readers", "C1")
        silver = _compare(source, "tier", C.OPERATOR_EQ, "silver")
        defs.update_segment(pb.Segment(segment_id="premium", condition=silver), 0)
        app.segments.recompute("premium")  # what UpdateSegment's job runs
        assert not _member(app, "premium", "C1")
        assert not _member(app, "premium_readers", "C1")


# 5. When a written tag's value expires, the sweep re-evaluates the segments and rule tags that read it.
def test_the_sweep_re_evaluates_readers_of_a_written_tag_when_it_expires(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        defs = app.definitions
        defs.create_tag(pb.TagDefinition(name="vip_campaign", external=pb.ExternalTag(writer="svc_modeling")))
        defs.create_tag(pb.TagDefinition(name="unread", external=pb.ExternalTag(writer="svc_modeling")))
        has_vip = C.Condition(has_tag=C.TagPresence(tag_name="vip_campaign"))
        defs.create_segment(pb.Segment(segment_id="vip", condition=has_vip))
        defs.create_tag(pb.TagDefinition(name="vip_rule", condition=has_vip))
        for user in ("C1", "C2"):
            app.profiles.upsert_attributes(ref(user), {"branch": to_proto("SH")}, [], "crm", frozenset())
        clock, hour = app.core.engine.clock, 3_600_000_000
        # Sweeps within one day from 01:00 tomorrow (a day boundary would select persons for other reasons).
        now = (clock.of(time.time_ns() // 1000) + 1) * DAY - clock.offset_us + hour
        expiry = Timestamp()
        expiry.FromMicroseconds(now + hour)
        _model_write(app, "C1", "vip_campaign", True, expires_at=expiry)
        _model_write(app, "C2", "unread", True, expires_at=expiry)  # no rule reads it: selects no one
        assert _member(app, "vip", "C1") and _tag(app, "C1", "vip_rule") is True
        assert app.segments.sweep(now, now + hour // 2)["candidates"] == 0  # not expired yet
        result = app.segments.sweep(now + hour // 2, now + 2 * hour)  # expired within this interval
        assert result["candidates"] == 1
        assert not _member(app, "vip", "C1")
        with app.core.database.connection() as conn:
            tags = app.core.store.load_tags(conn, None)
        assert "vip_rule" not in tags.get(app.profiles.get(ref("C1"), [], frozenset()).profile_id, {})
        with app.core.writing() as conn:  # the sweep missed nothing
            changes = app.core.engine.refresh(conn, None, now + 2 * hour, cause="test")
        assert changes["exited"] == changes["tag_writes"] == 0


# 10. A condition on fund_pref.<type> reads the share GetProfile shows (with the pack tag's weights).
def test_a_condition_on_fund_preference_matches_the_share_the_profile_shows(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        fans = _compare(C.FieldRef.SOURCE_FEATURE, "fund_pref.equity", C.OPERATOR_GTE, 0.5)
        app.definitions.create_segment(pb.Segment(segment_id="equity_fans", condition=fans))
        views = [event("fund_view", user_id="C1", product_category="fund", fund_type="equity") for _ in range(3)]
        app.consumer.handle(views, "c1")
        features = app.profiles.get(ref("C1"), ["features"], frozenset()).features
        assert from_proto(features["fund_pref.equity"]) == 1.0
        assert _member(app, "equity_fans", "C1")
        # Holdings only count now (the tag's weights): all in bonds, so equity's share drops to 0.
        _set_parameters(app, "fin_fund_preference", attention_weight=0, holding_weight=1)
        holding = {"fund_holding_bond_fen": to_proto(1_000_000)}
        app.profiles.upsert_attributes(ref("C1"), holding, [], "crm", frozenset())
        features = app.profiles.get(ref("C1"), ["features"], frozenset()).features
        assert from_proto(features["fund_pref.equity"]) == 0.0 and from_proto(features["fund_pref.bond"]) == 1.0
        assert not _member(app, "equity_fans", "C1")


def _within(event_type: str, event_filter: C.Condition, days: int = 7) -> C.Condition:
    spec = C.EventCount(event_type=event_type, min_count=1, window_seconds=days * 86_400, filter=event_filter)
    return C.Condition(event_count=spec)


# 9. Event filters answered from the retained events may only read what those keep: the others are refused. Since
# profile_0006 they keep the channel, ids and context fields (tests/test_profile_event_fields.py); not the IP.
def test_event_filters_on_fields_the_retained_events_do_not_keep_are_refused(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, f"sqlite:///{tmp_path / 't.db'}", finance_pack=False)) as app:
        defs = app.definitions
        by_ip = _compare(C.FieldRef.SOURCE_CONTEXT, "ip", C.OPERATOR_EQ, "10.0.0.1")
        with pytest.raises(InvalidArgument, match=r"context field 'ip' is not kept .*level 3") as refused:
            defs.create_segment(pb.Segment(segment_id="office_logins", condition=_within("login", by_ip)))
        field = "segment.condition.event_count.filter.comparison.field.name"
        assert [v.field for v in refused.value.violations] == [field]
        nested = _all(_within("login", C.Condition(any_of=C.ConditionList(conditions=[by_ip]))))
        with pytest.raises(InvalidArgument) as refused:
            defs.create_tag(pb.TagDefinition(name="office", condition=nested))
        field = (
            "definition.condition.all_of.conditions[0].event_count.filter.any_of.conditions[0].comparison.field.name"
        )
        assert [v.field for v in refused.value.violations] == [field]
        by_receipt = _compare(C.FieldRef.SOURCE_EVENT, "received_at", C.OPERATOR_EXISTS, None)
        bands = pb.TagBands(bands=[pb.TagBand(value=to_proto("x"), condition=_within("login", by_receipt))])
        with pytest.raises(InvalidArgument, match="event field 'received_at' is not kept") as refused:
            defs.create_tag(pb.TagDefinition(name="banded", bands=bands))
        assert refused.value.violations[0].field.startswith("definition.bands.bands[0].condition.event_count.filter")
        step = pb.FunnelStep(event_type="login", filter=by_ip)
        with pytest.raises(InvalidArgument) as refused:
            app.analytics.funnel([pb.FunnelStep(event_type="app_start"), step], 3600, None, None)
        assert [v.field for v in refused.value.violations] == ["steps[1].filter.comparison.field.name"]


def test_event_filters_on_kept_fields_are_accepted_and_match(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        on_home = _compare(C.FieldRef.SOURCE_CONTEXT, "screen", C.OPERATOR_EQ, "Home")
        by_card = _compare(C.FieldRef.SOURCE_EVENT_PROPERTY, "method", C.OPERATOR_EQ, "card")
        typed = _compare(C.FieldRef.SOURCE_EVENT, "event_type", C.OPERATOR_EQ, "login")
        condition = _all(_within("login", on_home), _within("login", typed), _within("deposit", by_card))
        app.definitions.create_segment(pb.Segment(segment_id="home_card", condition=condition))
        batch = [event("login", user_id="C1", screen="Home"), event("deposit", user_id="C1", method="card")]
        app.consumer.handle(batch, "c1")
        assert _member(app, "home_card", "C1")


# 13. UnlinkIdentity re-evaluates the profile the id was taken from. Since walk 2026-12-06 (finding 8) a profile's
# only customer number is not unlinked at all (its data would stay behind, out of reach of an erasure by it): the
# device is, and the customer's profile keeps its stage.
def test_unlinking_a_customer_number_re_evaluates_the_profile_left_behind(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        app.consumer.handle([event("login", user_id="C1", anonymous_id="dev-1")], "c1")
        assert app.profiles.get(ref("dev-1", ANONYMOUS), [], frozenset()).lifecycle_stage == pb.LIFECYCLE_STAGE_NEW
        with pytest.raises(FailedPrecondition):
            app.profiles.unlink(types_pb2.Identity(type=CUSTOMER, value="C1"))
        kept = app.profiles.get(ref("C1"), ["tags"], frozenset())
        assert kept.lifecycle_stage == pb.LIFECYCLE_STAGE_NEW
        assert {t.name: from_proto(t.value) for t in kept.tags}.get("lifecycle_stage") == "new"
        app.profiles.unlink(types_pb2.Identity(type=ANONYMOUS, value="dev-1"))  # a shared device
        assert app.profiles.get(ref("C1"), [], frozenset()).lifecycle_stage == pb.LIFECYCLE_STAGE_NEW
        assert app.profiles.get(ref("dev-1", ANONYMOUS), [], frozenset()).profile_id != kept.profile_id


# 14. A linked_by longer than its column is INVALID_ARGUMENT (PostgreSQL answered INTERNAL).
def test_a_too_long_linked_by_is_invalid_argument(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        app.profiles.upsert_attributes(ref("C1"), {"branch": to_proto("SH")}, [], "crm", frozenset())
        device = types_pb2.Identity(type=ANONYMOUS, value="dev-1")
        with pytest.raises(InvalidArgument) as refused:
            app.profiles.link(ref("C1"), device, "crm_manual_merge_ticket_2026_12_05_x", frozenset())
        assert [v.field for v in refused.value.violations] == ["linked_by"]
        profile, _ = app.profiles.link(ref("C1"), device, "crm_manual_merge", frozenset())
        assert {i.identity.value: i.linked_by for i in profile.identities}.get("dev-1") == "crm_manual_merge"


# 11. A merge loser's $segment_exited names the ids its $segment_entered named.
def test_a_merged_profiles_exit_names_its_own_device(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        viewed = C.Condition(event_count=C.EventCount(event_type="page_view", min_count=1, window_seconds=7 * 86_400))
        app.definitions.create_segment(pb.Segment(segment_id="viewers", condition=viewed))
        app.consumer.handle([event("app_start", user_id="C1")], "c1")
        app.consumer.handle([event("page_view", anonymous_id="dev-1")], "c2")  # the visitor enters
        app.consumer.handle([event("login", user_id="C1", anonymous_id="dev-1")], "c3")  # merged into C1's profile
        outbox = app.core.store.t["outbox"]
        with app.core.database.connection() as conn:
            bodies = [r[0] for r in conn.execute(sa.select(outbox.c.body).order_by(outbox.c.outbox_id))]
        sent = [event_pb2.Event.FromString(b) for b in bodies]
        entered, exited = (
            [(e.user_id, e.anonymous_id) for e in sent if e.event_type == kind]
            for kind in ("$segment_entered", "$segment_exited")
        )
        assert ("", "dev-1") in entered and exited == [("", "dev-1")]


# 12. ComputePaths keeps a session whole when another session of the same person interleaves with it.
def test_paths_of_two_interleaved_sessions_of_one_person(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        t = time.time_ns() // 1000 - 3_600_000_000
        second = 1_000_000
        batch = [  # app and web at once: s1 Home → Fund, s2 Home → Quote
            event("page_view", user_id="C1", session_id="s1", screen="Home", at_us=t),
            event("page_view", user_id="C1", session_id="s2", screen="Home", at_us=t + second),
            event("page_view", user_id="C1", session_id="s1", screen="Fund", at_us=t + 2 * second),
            event("page_view", user_id="C1", session_id="s2", screen="Quote", at_us=t + 3 * second),
            event("page_view", user_id="C2", session_id="s3", screen="Home", at_us=t),
            event("page_view", user_id="C2", session_id="s3", screen="Fund", at_us=t + second),
        ]
        app.consumer.handle(batch, "c1")
        paths, sessions = app.analytics.paths("Home", 1, True, None, None, 10)
        assert sorted(paths) == [(("Fund",), 2), (("Quote",), 1)] and sessions == 3


def _has(tag: str, node_id: str = "") -> C.Condition:
    return C.Condition(node_id=node_id, has_tag=C.TagPresence(tag_name=tag))


def _any(*conditions: C.Condition) -> C.Condition:
    return C.Condition(any_of=C.ConditionList(conditions=list(conditions)))


# 17. Cycle and unknown-segment errors name the request path of the node, not only its node_id.
def test_cycle_and_unknown_segment_errors_name_the_request_path(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, f"sqlite:///{tmp_path / 't.db'}", finance_pack=False)) as app:
        defs = app.definitions
        defs.create_tag(pb.TagDefinition(name="x", external=pb.ExternalTag(writer="svc_modeling")))
        defs.create_tag(pb.TagDefinition(name="a", condition=_any(_has("x"))))
        defs.create_tag(pb.TagDefinition(name="b", condition=_has("a")))
        with pytest.raises(InvalidArgument, match=r"'box-7'.*cycle") as refused:
            defs.update_tag(pb.TagDefinition(name="a", condition=_any(_has("x"), _has("b", "box-7"))), 0)
        assert [v.field for v in refused.value.violations] == [
            "definition.condition.any_of.conditions[1].has_tag.tag_name"
        ]
        bands = pb.TagBands(bands=[pb.TagBand(value=to_proto("y"), condition=_has("b"))])
        with pytest.raises(InvalidArgument, match="cycle") as refused:
            defs.update_tag(pb.TagDefinition(name="a", bands=bands), 0)
        assert [v.field for v in refused.value.violations] == ["definition.bands.bands[0].condition.has_tag.tag_name"]

        defs.create_segment(pb.Segment(segment_id="s1", condition=_has("a")))
        loop = C.Condition(node_id="box-9", in_segment=C.SegmentMembership(segment_id="s1"))
        with pytest.raises(InvalidArgument, match=r"'box-9'.*cycle") as refused:
            defs.update_segment(pb.Segment(segment_id="s1", condition=_any(_has("a"), loop)), 0)
        field = "segment.condition.any_of.conditions[1].in_segment.segment_id"
        assert [v.field for v in refused.value.violations] == [field]
        unknown = C.Condition(node_id="box-3", in_segment=C.SegmentMembership(segment_id="nope"))
        with pytest.raises(InvalidArgument, match="unknown segment") as refused:
            defs.create_segment(pb.Segment(segment_id="s2", condition=_all(_has("a"), unknown)))
        field = "segment.condition.all_of.conditions[1].in_segment.segment_id"
        assert [v.field for v in refused.value.violations] == [field]


# 15. A tag defined at sensitivity level 3 is masked on read for callers without an unmask role.
def test_a_level_3_tag_is_masked_for_callers_without_an_unmask_role(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        band = pb.TagDefinition(
            name="aum_band", external=pb.ExternalTag(writer="svc_modeling"), sensitivity=types_pb2.SENSITIVITY_LEVEL_3
        )
        app.definitions.create_tag(band)
        app.definitions.create_tag(pb.TagDefinition(name="churn", external=pb.ExternalTag(writer="svc_modeling")))
        app.profiles.upsert_attributes(ref("C1"), {"branch": to_proto("SH")}, [], "crm", frozenset())
        _model_write(app, "C1", "aum_band", "5M-10M CNY")
        _model_write(app, "C1", "churn", 0.4)
        plain = app.profiles.get(ref("C1"), ["tags"], frozenset())
        assert [t.name for t in plain.tags] == ["churn"] and "tags.aum_band" in plain.masked_fields
        unmasked = app.profiles.get(ref("C1"), ["tags"], frozenset({"unmask"}))
        assert {t.name for t in unmasked.tags} == {"aum_band", "churn"} and not unmasked.masked_fields
        assert [t.name for t in app.tags.list_user_tags(ref("C1"))] == ["churn"]
        assert [t.name for t in app.tags.list_user_tags(ref("C1"), frozenset({"admin"}))] == ["aum_band", "churn"]
        steps = [pb.FunnelStep(event_type="a"), pb.FunnelStep(event_type="b")]
        with pytest.raises(PermissionDenied):
            app.analytics.funnel(steps, 3600, None, None, split_tag="aum_band")
        assert app.analytics.funnel(steps, 3600, None, None, split_tag="aum_band", roles=frozenset({"unmask"}))
