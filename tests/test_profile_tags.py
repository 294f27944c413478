"""Tag definitions (validation, versions, cycles, collisions, size), the finance pack's formulas, lifecycle
stages and their history, the time sweep, and the outbox surviving a failed publish."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from profile_helpers import DAY, event, profile_app, profile_settings, ref

from svc_common.conditions import Money, to_proto
from svc_common.errors import Aborted, AlreadyExists, InvalidArgument, Unavailable
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import event_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_profile.engine import SEGMENT_EVENT_NAMESPACE
from svc_profile.segments import OutboxPublisher

FEATURE = C.FieldRef.SOURCE_FEATURE


def compare(source: int, name: str, op: int, value) -> C.Condition:
    return C.Condition(
        comparison=C.Comparison(field=C.FieldRef(source=source, name=name), operator=op, value=to_proto(value))
    )


def tags_of(app, user: str) -> dict:
    from svc_common.conditions import from_proto

    return {t.name: from_proto(t.value) for t in app.profiles.get(ref(user), ["tags"], frozenset()).tags}


def test_definitions_are_validated_versioned_and_acyclic(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path)) as app:
        defs = app.definitions
        heavy = compare(FEATURE, "trade_count", C.OPERATOR_GTE, 10)
        defs.create_tag(pb.TagDefinition(name="heavy", condition=heavy))
        with pytest.raises(AlreadyExists):
            defs.create_tag(pb.TagDefinition(name="heavy", condition=heavy))
        too_big = C.Condition(any_of=C.ConditionList(conditions=[heavy] * 300))
        with pytest.raises(InvalidArgument, match="more than 256 nodes"):
            defs.create_tag(pb.TagDefinition(name="big", condition=too_big))
        with pytest.raises(InvalidArgument, match="segment membership is not allowed"):
            defs.create_tag(
                pb.TagDefinition(name="seg", condition=C.Condition(in_segment=C.SegmentMembership(segment_id="x")))
            )
        with pytest.raises(InvalidArgument, match="unknown tag 'tag_b'"):  # a tag nobody defined
            defs.create_tag(
                pb.TagDefinition(name="tag_a", condition=C.Condition(has_tag=C.TagPresence(tag_name="tag_b")))
            )
        defs.create_tag(pb.TagDefinition(name="tag_b", condition=heavy))
        a = pb.TagDefinition(name="tag_a", condition=C.Condition(has_tag=C.TagPresence(tag_name="tag_b")))
        defs.create_tag(a)
        b = pb.TagDefinition(name="tag_b", condition=C.Condition(has_tag=C.TagPresence(tag_name="tag_a")))
        with pytest.raises(InvalidArgument, match="cycle"):
            defs.update_tag(b, 0)
        with pytest.raises(InvalidArgument, match="unknown formula"):
            defs.create_tag(pb.TagDefinition(name="x", builtin=pb.BuiltinTag(formula="astrology")))
        with pytest.raises(InvalidArgument, match="unknown parameter"):
            defs.update_tag(
                pb.TagDefinition(
                    name="fin_high_net_worth",
                    builtin=pb.BuiltinTag(formula="high_net_worth", parameters={"vibes": to_proto(1)}),
                ),
                0,
            )
        updated = defs.update_tag(pb.TagDefinition(name="heavy", condition=heavy), 1)
        assert updated.version == 2 and defs.get_tag("heavy", 1).version == 1
        with pytest.raises(Aborted):
            defs.update_tag(pb.TagDefinition(name="heavy", condition=heavy), 1)
        bands = pb.TagBands(
            bands=[
                pb.TagBand(value=to_proto("gold"), condition=compare(FEATURE, "trade_count", C.OPERATOR_GTE, 3)),
                pb.TagBand(value=to_proto("silver"), condition=compare(FEATURE, "trade_count", C.OPERATOR_GTE, 1)),
            ]
        )
        defs.create_tag(pb.TagDefinition(name="tier", bands=bands))
        app.consumer.handle([event("trade_filled", user_id="T1") for _ in range(2)], "c1")
        assert tags_of(app, "T1")["tier"] == "silver"
        app.consumer.handle([event("trade_filled", user_id="T1")], "c2")
        assert tags_of(app, "T1")["tier"] == "gold"
        assert defs.archive_tag("tier").archived


def test_finance_pack_and_lifecycle(tmp_path: Path, database_url: str) -> None:
    now = time.time_ns() // 1000
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        up = app.profiles.upsert_attributes
        up(ref("H1"), {"aum_fen": to_proto(Money(300_000_000)), "risk_rating": to_proto("C2")}, [], "crm", frozenset())
        up(ref("H2"), {"aum_fen": to_proto(Money(60_000_000)), "avg_daily_assets_20d_fen": to_proto(Money(60_000_000))},
           [], "crm", frozenset())  # fmt: skip
        up(ref("H3"), {"aum_fen": to_proto(Money(600_000_000))}, [], "crm", frozenset())
        assert (
            tags_of(app, "H1")["fin_high_net_worth"] is True and tags_of(app, "H1")["fin_investor_tier"] == "qualified"
        )
        assert (
            "fin_high_net_worth" not in tags_of(app, "H2")
            and tags_of(app, "H2")["fin_investor_tier"] == "star_eligible"
        )
        assert tags_of(app, "H3")["fin_investor_tier"] == "professional"

        # Dormant account: opened, no assets, no trade; 4 logins of 8, 20 quote views of 20, a deposit attempt.
        opened = to_proto(__import__("datetime").datetime.now(__import__("datetime").UTC))
        up(ref("D1"), {"account_opened_at": opened, "aum_fen": to_proto(Money(0))}, [], "counter", frozenset())
        batch = [event("login", user_id="D1", at_us=now - i * DAY) for i in range(4)]
        batch += [event("quote_view", user_id="D1", at_us=now - 1000 - i) for i in range(20)]
        batch += [event("deposit_attempt", user_id="D1")]
        app.consumer.handle(batch, "c1")
        assert tags_of(app, "D1")["fin_dormant_activation"] == 15 + 25 + 0 + 20

        # Fund preference, trading frequency, risk mismatch (rated C2, trades an R4 product).
        views = [event("fund_view", user_id="H1", fund_type="bond") for _ in range(3)]
        views += [event("fund_view", user_id="H1", fund_type="equity")]
        trades = [event("trade_filled", user_id="H1", product_risk_level="R4") for _ in range(5)]
        app.consumer.handle(views + trades, "c2")
        up(ref("H1"), {"fund_holding_equity_fen": to_proto(Money(100))}, [], "crm", frozenset())
        tags = tags_of(app, "H1")
        assert tags["fin_fund_preference"] == "equity"  # 0.5*0.25 + 0.5*1.0 beats bond 0.5*0.75
        assert tags["fin_trading_frequency"] == "medium" and tags["fin_risk_mismatch"] is True
        profile = app.profiles.get(ref("H1"), ["features"], frozenset())
        assert profile.features["fund_pref.equity"].double_value == pytest.approx(0.625)

        # Lifecycle: active now; the history keeps the transitions, newest first.
        assert app.profiles.get(ref("H1"), [], frozenset()).lifecycle_stage == pb.LIFECYCLE_STAGE_ACTIVE
        history = app.profiles.lifecycle_history(ref("H1"), None, 10)
        assert history[0].to_stage == "ACTIVE"
        # A customer last active 40 days ago is at risk; 100 days ago churned; back again: reactivated.
        app.consumer.handle([event("login", user_id="R1", at_us=now - 100 * DAY)], "c3")
        assert app.profiles.get(ref("R1"), [], frozenset()).lifecycle_stage == pb.LIFECYCLE_STAGE_CHURNED
        app.consumer.handle([event("login", user_id="R1")], "c4")
        assert app.profiles.get(ref("R1"), [], frozenset()).lifecycle_stage == pb.LIFECYCLE_STAGE_REACTIVATED
        app.consumer.handle([event("login", user_id="R2", at_us=now - 40 * DAY)], "c5")
        assert app.profiles.get(ref("R2"), [], frozenset()).lifecycle_stage == pb.LIFECYCLE_STAGE_AT_RISK
        stages = [h.to_stage for h in app.profiles.lifecycle_history(ref("R1"), None, 10)]
        assert stages == ["REACTIVATED", "CHURNED"]


class FlakyClient:
    def __init__(self) -> None:
        self.fail = True
        self.sent: list[event_pb2.Event] = []

    async def publish(self, events):
        if self.fail:
            raise Unavailable("svc_collect is down")
        self.sent.extend(events)
        return collect_pb2.IngestResponse(
            results=[
                collect_pb2.EventResult(index=i, event_id=e.event_id, status=collect_pb2.EVENT_STATUS_ACCEPTED)
                for i, e in enumerate(events)
            ]
        )


def test_sweep_exits_on_time_and_outbox_survives_a_failed_publish(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path)) as app:
        recent = C.Condition(event_count=C.EventCount(event_type="quote_view", min_count=1, window_seconds=2))
        app.definitions.create_segment(pb.Segment(segment_id="just_quoted", condition=recent))
        start = time.time_ns() // 1000
        app.consumer.handle([event("quote_view", user_id="Q1")], "c1")
        assert app.segments.check("just_quoted", (2, "Q1"))[0]
        time.sleep(2.2)
        app.segments.sweep(start, time.time_ns() // 1000)
        assert not app.segments.check("just_quoted", (2, "Q1"))[0]

        client = FlakyClient()
        publisher = OutboxPublisher(app.core, client)
        with pytest.raises(Unavailable):
            asyncio.run(publisher.drain())  # nothing is marked sent when the publish fails
        client.fail = False
        assert asyncio.run(publisher.drain()) == 2 and asyncio.run(publisher.drain()) == 0
        entered, exited = client.sent
        assert (entered.event_type, exited.event_type) == ("$segment_entered", "$segment_exited")
        assert exited.properties["cause"].string_value == "time"
        pid = entered.properties["profile_id"].string_value
        assert entered.event_id == str(uuid.uuid5(SEGMENT_EVENT_NAMESPACE, f"{pid}/just_quoted/1"))
        assert exited.event_id == str(uuid.uuid5(SEGMENT_EVENT_NAMESPACE, f"{pid}/just_quoted/2"))
