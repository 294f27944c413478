"""Findings of the tags, finance pack and lifecycle walk of 2026-12-07 (session 24): lifecycle_stage could be given
another formula (every evaluation then failed) or archived (its parameters reset for good); new_days past
churned_days skipped AT_RISK; account_opened_at took any type or a date centuries ahead; a negative holding put fund
preference shares outside 0-1; view_share 0 flagged everyone; low 0 left no one "none"; the activation score rounded
halves to even."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from profile_helpers import event, profile_app, profile_settings, ref

from svc_common.conditions import Money, to_proto
from svc_common.errors import FailedPrecondition, InvalidArgument
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_profile import finance
from svc_profile.model import Days, Person


def _lifecycle(**parameters: object) -> pb.TagDefinition:
    definition = pb.TagDefinition(name="lifecycle_stage", builtin=pb.BuiltinTag(formula="lifecycle_stage"))
    for name, value in parameters.items():
        definition.builtin.parameters[name].CopyFrom(to_proto(value))
    return definition


def test_lifecycle_stage_keeps_its_formula_and_is_not_archived(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path)) as app:
        defs = app.definitions
        other = pb.TagDefinition(name="lifecycle_stage", builtin=pb.BuiltinTag(formula="high_net_worth"))
        external = pb.TagDefinition(name="lifecycle_stage", external=pb.ExternalTag(writer="crm"))
        logged = C.Condition(event_count=C.EventCount(event_type="quote_view", min_count=1, window_seconds=86_400))
        condition = pb.TagDefinition(name="lifecycle_stage", condition=logged)
        for definition in (other, external, condition):
            with pytest.raises(InvalidArgument, match="keeps its formula"):
                defs.update_tag(definition, 0)
        assert defs.update_tag(_lifecycle(churned_days=180), 0).builtin.parameters["churned_days"].int_value == 180
        with pytest.raises(FailedPrecondition, match=r"change its builtin\.parameters") as caught:
            defs.archive_tag("lifecycle_stage")
        assert caught.value.reason == "TAG_REQUIRED"
        assert app.core.engine.lifecycle_params["churned_days"] == 180
        app.consumer.handle([event("login", "C1")], "1")  # evaluation still works


def test_new_days_past_churned_days_is_refused(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path)) as app:
        with pytest.raises(InvalidArgument, match=r"new_days.*churned_days|churned_days.*new_days"):
            app.definitions.update_tag(_lifecycle(new_days=120), 0)
        app.definitions.update_tag(_lifecycle(new_days=90), 0)  # equal: allowed


def test_a_stored_lifecycle_tag_of_another_formula_leaves_the_stage_machine_on_its_defaults(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path)) as app:
        now = dt.datetime.now(dt.UTC)
        legacy = pb.TagDefinition(name="lifecycle_stage", builtin=pb.BuiltinTag(formula="high_net_worth"))
        with app.core.writing() as conn:
            app.definitions._insert_tag(conn, legacy, 99, now, now)
        app.definitions.load()
        assert app.core.engine.lifecycle_params == finance.DEFAULTS["lifecycle_stage"]
        app.consumer.handle([event("login", "C1")], "1")  # a KeyError before, on every batch
        app.definitions.update_tag(_lifecycle(churned_days=120), 0)  # repaired: the pack's formula again
        assert app.core.engine.lifecycle_params["churned_days"] == 120


def test_lifecycle_stage_is_created_only_as_the_pack_formula(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        other = pb.TagDefinition(name="lifecycle_stage", external=pb.ExternalTag(writer="crm"))
        with pytest.raises(InvalidArgument, match="finance pack's"):
            app.definitions.create_tag(other)
        app.definitions.create_tag(_lifecycle(churned_days=60))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2020-01-01", "PROPERTY_TYPE_MISMATCH"),
        (1577836800, "PROPERTY_TYPE_MISMATCH"),
        (dt.datetime(2200, 1, 1, tzinfo=dt.UTC), "VALUE_NOT_ALLOWED"),
    ],
)
def test_account_opened_at_is_a_timestamp_not_ahead(tmp_path: Path, value: object, reason: str) -> None:
    with profile_app(profile_settings(tmp_path)) as app:
        with pytest.raises(InvalidArgument) as caught:
            app.profiles.upsert_attributes(ref("C1"), {"account_opened_at": to_proto(value)}, [], "crm", frozenset())
        assert caught.value.reason == reason
        assert [v.field for v in caught.value.violations] == ["attributes[account_opened_at]"]
        opened = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
        app.profiles.upsert_attributes(ref("C1"), {"account_opened_at": to_proto(opened)}, [], "crm", frozenset())


def test_fund_preference_shares_stay_within_0_and_1_with_a_negative_holding() -> None:
    person = Person(
        profile_id="p",
        clock=Days(0),
        attributes={"fund_holding_equity_fen": Money(200), "fund_holding_bond_fen": Money(-100)},
    )
    index = finance.fund_preference_index(person, {"attention_weight": 0.5, "holding_weight": 0.5})
    assert index["equity"] == 1.0 and index["bond"] == 0.0
    assert all(0.0 <= share <= 1.0 for share in index.values())


def test_risk_mismatch_needs_a_view_above_the_rating_and_low_is_at_least_1() -> None:
    person = Person(profile_id="p", clock=Days(0), attributes={"risk_rating": "C5"}, features={"risk_views.R1": 5})
    assert finance.risk_mismatch(person, {"min_views": 5, "view_share": 0.0}, None) is None
    low = Person(profile_id="p", clock=Days(0), attributes={"risk_rating": "C1"}, features={"risk_views.R4": 5})
    assert finance.risk_mismatch(low, {"min_views": 5, "view_share": 0.0}, None) is True
    assert "must lie in" in (finance.parameter_problem("trading_frequency_tier", "low", 0) or "")


def test_the_activation_score_rounds_halves_up(tmp_path: Path) -> None:
    """One fund view of the cap of 10 at weight 25 is 2.5: 3 (round() made it 2)."""
    with profile_app(profile_settings(tmp_path)) as app:
        app.consumer.handle([event("fund_view", "C1")], "1")
        profile = app.profiles.get(ref("C1"), ["tags"], frozenset())
        (tag,) = [t for t in profile.tags if t.name == "fin_dormant_activation"]
        assert tag.value.int_value == 3


def test_a_prospect_kept_by_a_link_takes_the_accounts_lifecycle_story(tmp_path: Path) -> None:
    """Neither profile has a customer number, so the link keeps the ref's: a device's prospect. The other's story
    (an account opened 200 days ago: CHURNED) is the person's; before, it was dropped and the merge recorded
    PROSPECT → CHURNED at the time of the link."""
    anonymous, phone = types_pb2.ID_TYPE_ANONYMOUS, types_pb2.ID_TYPE_PHONE_PSEUDONYM
    with profile_app(profile_settings(tmp_path)) as app:
        profiles = app.profiles
        profiles.upsert_attributes(ref("devA", anonymous), {"gender": to_proto("f")}, [], "crm", frozenset())
        opened = dt.datetime.now(dt.UTC) - dt.timedelta(days=200)
        account = ref("13900000000", phone)
        profiles.upsert_attributes(account, {"account_opened_at": to_proto(opened)}, [], "crm", frozenset())
        churned_at = [h.at_us for h in profiles.lifecycle_history(account, None, 10) if h.to_stage == "CHURNED"]
        profile, _ = profiles.link(ref("devA", anonymous), account, "alias_call", frozenset())
        assert pb.LifecycleStage.Name(profile.lifecycle_stage) == "LIFECYCLE_STAGE_CHURNED"
        story = [(h.from_stage, h.to_stage, h.at_us) for h in reversed(profiles.lifecycle_history(account, None, 10))]
        assert [(a, b) for a, b, _ in story] == [("UNSPECIFIED", "PROSPECT"), ("PROSPECT", "CHURNED")]
        assert [at for _, b, at in story if b == "CHURNED"] == churned_at  # when it happened, not at the link
