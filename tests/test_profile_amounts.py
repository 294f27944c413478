"""A trade's amount: fen under ``amount_properties``, yuan under ``yuan_amount_properties`` (0.2.9: ``amount_yuan``, and
``amount`` where a broker's system sends it in yuan), ``money_fen_value`` fen under any name, halves rounded away
from zero; an absurd amount is bounded, so it no longer fails the log consumer's batch at every retry. In
svc_profile's consumer (SQLite and PostgreSQL) and svc_modeling's snapshots."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from profile_helpers import DAY, event, profile_app, profile_settings, ref

from svc_common.amounts import INT64_MAX, MAX_AMOUNT_FEN
from svc_common.config import load_settings
from svc_common.errors import ConfigError
from svc_modeling.config import ModelingSettings
from svc_modeling.snapshot import SnapshotBuilder
from svc_profile.config import ProfileSettings
from svc_profile.features import merge_features

UNMASK = frozenset({"unmask"})


def _trade(user: str, at_us: int, name: str, kind: str, value: Any) -> Any:
    e = event("trade_filled", user_id=user, at_us=at_us)
    setattr(e.properties[name], kind, value)
    return e


def _turnover(app: Any, user: str) -> tuple[int, int]:
    features = app.profiles.get(ref(user), [], UNMASK).features
    return features["turnover_fen"].money_fen_value, features["turnover_fen.30d"].money_fen_value


CASES = [
    # (user, property, kind, value, fen counted)
    ("yuan-double", "amount_yuan", "double_value", 12345.67, 1_234_567),
    ("yuan-int", "amount_yuan", "int_value", 100, 10_000),
    ("yuan-half", "amount_yuan", "double_value", 0.285, 29),  # round(0.285 * 100) would give 28
    ("yuan-negative", "amount_yuan", "double_value", -0.005, -1),  # half away from zero
    ("yuan-typed", "amount_yuan", "money_fen_value", 250, 250),  # the type says fen
    ("fen-int", "amount", "int_value", 500, 500),  # amount is fen unless moved (as before 0.2.9)
    ("fen-double", "amount_fen", "double_value", 12.5, 13),  # round(12.5) would give 12
    ("fen-turnover", "turnover_fen", "int_value", 7, 7),
]


def test_each_amount_is_read_in_the_unit_its_name_or_type_says(tmp_path: Path, database_url: str) -> None:
    now = time.time_ns() // 1000 - DAY
    batch = [_trade(user, now + i, name, kind, value) for i, (user, name, kind, value, _) in enumerate(CASES)]
    # Both kinds of name on one trade: the fen name wins (fen names are read first).
    both = _trade("both", now, "amount_yuan", "double_value", 99.0)
    both.properties["amount_fen"].money_fen_value = 42
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        app.consumer.handle([*batch, both], "c1")
        for user, _, _, _, fen in CASES:
            assert _turnover(app, user) == (fen, fen), user
        assert _turnover(app, "both") == (42, 42)


def test_amount_in_yuan_where_the_broker_moves_it(tmp_path: Path) -> None:
    settings = profile_settings(tmp_path, amount_properties=("amount_fen",), yuan_amount_properties=("amount",))
    with profile_app(settings) as app:
        app.consumer.handle([_trade("Y", time.time_ns() // 1000 - DAY, "amount", "double_value", 12345.67)], "c1")
        assert _turnover(app, "Y") == (1_234_567, 1_234_567)


def test_an_absurd_amount_is_bounded_and_the_batch_commits(tmp_path: Path, database_url: str) -> None:
    """A double of 1e300 and two trades of 2**63 - 1 fen are valid events: before 0.2.9 each made a stored sum
    overflow 64 bits and the batch failed at every retry (the consumer stopped there)."""
    now = time.time_ns() // 1000 - DAY
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        app.consumer.handle([_trade("huge", now, "amount_yuan", "double_value", 1e300)], "c1")
        top = (1 << 63) - 1
        twice = [_trade("max", now + i, "amount_fen", "money_fen_value", top) for i in range(2)]
        small = _trade("max", now + 2, "amount", "int_value", 5)
        app.consumer.handle([*twice, small], "c2")
        app.consumer.handle([_trade("low", now, "amount", "double_value", -1e300)], "c3")
        assert _turnover(app, "huge") == (MAX_AMOUNT_FEN, MAX_AMOUNT_FEN)
        assert _turnover(app, "max") == (2 * MAX_AMOUNT_FEN + 5, 2 * MAX_AMOUNT_FEN + 5)
        assert _turnover(app, "low") == (-MAX_AMOUNT_FEN, -MAX_AMOUNT_FEN)


def test_a_merge_of_two_turnovers_saturates_instead_of_overflowing() -> None:
    merged = merge_features({"turnover_fen": ["m", INT64_MAX - 1]}, {"turnover_fen": ["m", 10]})
    assert merged["turnover_fen"] == ["m", INT64_MAX]


@pytest.mark.parametrize("settings_class", [ProfileSettings, ModelingSettings])
def test_a_name_in_both_unit_lists_is_refused_at_start(tmp_path: Path, settings_class: type) -> None:
    with pytest.raises(ConfigError, match="amount named in both amount_properties"):
        load_settings(settings_class, data_dir=tmp_path, yuan_amount_properties=("amount_yuan", "amount"))


def test_a_snapshot_reads_amounts_as_the_live_profile_does() -> None:
    at = 1_780_000_000_000_000
    builder = SnapshotBuilder(ModelingSettings(), at)
    builder.add([_trade("C1", at - DAY, "amount_yuan", "double_value", 12345.67)])
    features = builder.features("C1")
    assert (features["turnover_fen"], features["turnover_fen.30d"]) == (1_234_567, 1_234_567)


def test_a_turnover_window_saturates_in_a_profile_and_in_a_snapshot() -> None:
    from svc_modeling.snapshot import Customer
    from svc_profile.model import Days, Person

    clock = Days(8)
    now = 1_780_000_000_000_000
    today = clock.of(now)
    days = {"trade_filled": {today: (1, INT64_MAX), today - 1: (1, INT64_MAX)}}
    person = Person("p", days=days, clock=clock, now=now, trade_types=("trade_filled",))
    assert person.derived("turnover_fen.30d") == INT64_MAX
    builder = SnapshotBuilder(ModelingSettings(), now)
    assert builder.window(Customer(days=days), "turnover_fen.30d") == INT64_MAX
