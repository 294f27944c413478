"""Findings of the finance pack walk of session 27: the fund preference compared shares rounded to 4 places (1,000,000
and 1,000,010 CNY held were one share, and the type listed first won); the dormant score rounded a half down where a
tag's own weights and caps made the float sum land a hair below it; a fund preference with both weights 0 was accepted
and then never set; a tag of the lifecycle_stage formula besides the pack's read the pack's stage as its own previous
one and was not aged by the sweep."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from profile_helpers import event, profile_app, profile_settings, ref

from svc_common.conditions import Money, to_proto
from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb

ADMIN = frozenset({"admin"})


def _attributes(app, user: str, **values: object) -> None:
    app.profiles.upsert_attributes(ref(user), {k: to_proto(v) for k, v in values.items()}, [], "crm", ADMIN)


def _tag(app, user: str, name: str) -> object:
    for tag in app.profiles.get(ref(user), ["tags"], ADMIN).tags:
        if tag.name == name:
            return getattr(tag.value, tag.value.WhichOneof("kind"))
    return None


def _builtin(name: str, formula: str, **parameters: object) -> pb.TagDefinition:
    definition = pb.TagDefinition(name=name, builtin=pb.BuiltinTag(formula=formula))
    for key, value in parameters.items():
        definition.builtin.parameters[key].CopyFrom(to_proto(value))
    return definition


@pytest.mark.parametrize(
    ("first", "second"), [("equity", "bond"), ("index", "qdii"), ("bond", "equity"), ("qdii", "money_market")]
)
def test_the_fund_preference_is_the_larger_holding_however_close(tmp_path: Path, first: str, second: str) -> None:
    with profile_app(profile_settings(tmp_path)) as app:
        held = {f"fund_holding_{first}_fen": Money(100_000_000), f"fund_holding_{second}_fen": Money(100_001_000)}
        _attributes(app, "F1", **held)
        assert _tag(app, "F1", "fin_fund_preference") == second
        features = app.profiles.get(ref("F1"), ["features"], ADMIN).features
        assert features[f"fund_pref.{first}"].double_value == features[f"fund_pref.{second}"].double_value == 0.5


def test_the_dormant_score_rounds_an_exact_half_up_with_a_tags_own_weights(tmp_path: Path) -> None:
    weights = {"login_weight": 0, "quote_weight": 0, "deposit_weight": 0, "fund_weight": 11, "fund_cap": 22}
    with profile_app(profile_settings(tmp_path)) as app:
        app.definitions.update_tag(_builtin("fin_dormant_activation", "dormant_activation_potential", **weights), 0)
        _attributes(app, "D1", account_opened_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
        app.consumer.handle([event("fund_view", "D1") for _ in range(15)], "c1")
        assert _tag(app, "D1", "fin_dormant_activation") == 8  # 11 × 15 / 22 = 7.5, half up


def test_a_fund_preference_weighing_nothing_is_refused(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path)) as app:
        zero = _builtin("fin_fund_preference", "fund_preference", attention_weight=0, holding_weight=0)
        with pytest.raises(InvalidArgument, match="must not both be 0"):
            app.definitions.update_tag(zero, 0)
        app.definitions.update_tag(_builtin("fin_fund_preference", "fund_preference", attention_weight=0), 0)


def test_the_lifecycle_formula_is_the_packs_tag_alone(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path)) as app:
        with pytest.raises(InvalidArgument, match="the pack's tag 'lifecycle_stage' alone") as refused:
            app.definitions.create_tag(_builtin("my_stage", "lifecycle_stage", new_days=60))
        assert refused.value.violations[0].field == "definition.builtin.formula"
        app.definitions.update_tag(_builtin("lifecycle_stage", "lifecycle_stage", new_days=60), 0)  # configurable
