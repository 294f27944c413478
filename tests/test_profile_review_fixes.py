"""Regression tests for the defects a review of svc_profile found (/tmp/report-review-prof.md, numbered as there):
each test fails on the code before its fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from profile_helpers import CUSTOMER, event, profile_app, profile_settings, ref

from svc_common.errors import NotFound


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


def test_a_new_person_whose_event_carries_two_customer_numbers_keeps_the_first(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        carrier = event("$alias", anonymous_id="dev-5")
        carrier.identities.add(type=CUSTOMER, value="C5")
        carrier.identities.add(type=CUSTOMER, value="C6")
        counts = app.consumer.handle([carrier], "c1")
        assert counts["refused"] == 1
        assert app.profiles.get(ref("C5"), [], frozenset()).profile_id
        with pytest.raises(NotFound):
            app.profiles.get(ref("C6"), [], frozenset())
