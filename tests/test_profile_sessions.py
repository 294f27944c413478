"""``sessions`` counts distinct session ids (0.2.7). Before, it counted each switch to another session id than the
last one: a person's events from two devices or two app windows interleaved (a, b, a, b) counted four sessions, and a
merge's count depended on how the replay was batched, so the feature was not exact after replay."""

from __future__ import annotations

import time
from pathlib import Path

from profile_helpers import ANONYMOUS, event, profile_app, profile_settings, ref

from svc_profile import features
from svc_profile.features import RECENT_SESSIONS, FeatureUpdater, merge_features, recent_sessions


def _fold(tmp_path: Path, doc: dict, sessions: list[str]) -> dict:
    updater = FeatureUpdater(profile_settings(tmp_path))
    updater.apply({"p": doc}, ["p"] * len(sessions), [event("page_view", "C1", session_id=s) for s in sessions])
    return doc


def test_interleaved_sessions_count_once_each(tmp_path: Path) -> None:
    doc = _fold(tmp_path, {}, ["a", "b", "a", "b", "a", "c", "", "c"])
    assert doc["sessions"][1] == 3
    assert recent_sessions(doc) == ("c", "a", "b")
    assert "_last_session" not in doc


def test_a_session_back_after_more_than_the_remembered_ones_counts_again(tmp_path: Path) -> None:
    many = [f"s{i}" for i in range(RECENT_SESSIONS + 1)]
    doc = _fold(tmp_path, {}, [*many, "s1", "s0"])
    assert doc["sessions"][1] == RECENT_SESSIONS + 2  # s1 was still remembered, s0 no longer
    assert len(recent_sessions(doc)) == RECENT_SESSIONS


def test_a_document_of_an_earlier_release_goes_on_from_its_last_session(tmp_path: Path) -> None:
    doc = _fold(tmp_path, {"sessions": ("i", 5), "_last_session": "s1"}, ["s1", "s2", "s1"])
    assert doc["sessions"][1] == 6 and recent_sessions(doc) == ("s1", "s2")
    assert "_last_session" not in doc


def test_a_long_session_id_is_remembered_by_its_first_128_characters(tmp_path: Path) -> None:
    long = "x" * 300
    doc = _fold(tmp_path, {}, [long, long[:128], long + "y"])
    assert doc["sessions"][1] == 1 and recent_sessions(doc) == (long[:128],)


def test_a_merge_counts_the_sessions_both_had_once() -> None:
    winner = {"sessions": ("i", 2), "_sessions": ("s2", "s1")}
    loser = {"sessions": ("i", 2), "_sessions": ["s3", "s2"]}  # a document as read from JSON: lists
    merged = merge_features(winner, loser)
    assert merged["sessions"] == ["i", 3] and recent_sessions(merged) == ("s2", "s1", "s3")
    legacy = merge_features(
        {"sessions": ("i", 4), "_last_session": "s9"}, {"sessions": ("i", 1), "_last_session": "s9"}
    )
    assert legacy["sessions"] == ["i", 4] and recent_sessions(legacy) == ("s9",)
    assert features.merge_features({"sessions": ("i", 1)}, {})["sessions"] == ("i", 1)


def test_sessions_are_the_same_whether_a_merge_came_before_or_after_the_events(tmp_path: Path) -> None:
    """The device's and the customer's events folded apart and then merged give the count of the same events folded
    into one person: the distinct sessions (3), where the switches counted 5 and 4."""
    now = time.time_ns() // 1000
    device = [event("page_view", anonymous_id="dev-1", session_id=s, at_us=now - 10 + i) for i, s in enumerate("xyx")]
    customer = [event("page_view", "C1", session_id=s, at_us=now + i) for i, s in enumerate("yzy")]
    login = event("login", "C1", "dev-1", session_id="z", at_us=now + 5)

    def sessions(app) -> int:
        profile = app.profiles.get(ref("dev-1", ANONYMOUS), [], frozenset())
        return profile.features["sessions"].int_value

    with profile_app(profile_settings(tmp_path / "apart")) as app:
        app.consumer.handle(device, "1")
        app.consumer.handle(customer, "2")
        app.consumer.handle([login], "3")  # merges the device's profile into the customer's
        apart = sessions(app)
    with profile_app(profile_settings(tmp_path / "together")) as app:
        app.consumer.handle([login, *device, *customer], "1")
        together = sessions(app)
    assert apart == together == 3


def test_a_merge_keeps_the_session_of_the_side_seen_last() -> None:
    """A login merges the device into the customer: with 16 sessions of the customer's remembered, the device's
    current session (seen last) stays remembered, so its next event does not count it again."""
    customer = {"sessions": ("i", 16), "_sessions": tuple(f"c{i}" for i in range(16)), "last_seen_at": ("t", 10)}
    device = {"sessions": ("i", 1), "_sessions": ("d1",), "last_seen_at": ("t", 20)}
    merged = merge_features(customer, device)
    assert recent_sessions(merged)[0] == "d1" and len(recent_sessions(merged)) == RECENT_SESSIONS
    assert merged["sessions"] == ["i", 17]
