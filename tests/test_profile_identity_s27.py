"""Findings of the identities walk of session 27: a customer who signed up after weeks of anonymous browsing was
dated from the browsing (never NEW, AT_RISK at once); a plain event whose first id was new went to a new profile
though another of its ids was a known person's; LinkIdentities was NOT_FOUND for a user id nobody held, though the
same two ids the other way round linked; "NaN", "[object Object]", a braced nil UUID, "−1" (U+2212) and ids of only
zero-width characters were taken as ids."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from profile_helpers import ANONYMOUS, CUSTOMER, DAY, event, profile_app, profile_settings, ref

from svc_common.conditions import from_proto
from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb

UNMASK = frozenset({"unmask"})
WECOM, FUND = types_pb2.ID_TYPE_WECOM, types_pb2.ID_TYPE_FUND_ACCOUNT


def _feed(app, events, cursor: str) -> None:
    app.consumer.handle(events, cursor)


def _stage(app, user: str) -> str:
    return pb.LifecycleStage.Name(app.profiles.get(ref(user), [], UNMASK).lifecycle_stage)


def test_a_signup_after_weeks_of_anonymous_browsing_is_a_new_customer(tmp_path: Path) -> None:
    now = time.time_ns() // 1000
    with profile_app(profile_settings(tmp_path)) as app:
        _feed(app, [event("page_view", anonymous_id="devA", at_us=now - 60 * DAY)], "1")
        _feed(app, [event("signup", user_id="C1", anonymous_id="devA", at_us=now)], "2")
        assert _stage(app, "C1") == "LIFECYCLE_STAGE_NEW"
        features = app.profiles.get(ref("C1"), [], UNMASK).features
        assert from_proto(features["first_seen_at"]).timestamp() < (now - 59 * DAY) / 1e6  # the person's, kept
        assert abs(from_proto(features["first_customer_event_at"]).timestamp() - now / 1e6) < 1
        # A customer's own old events still date the account: backfilled history is not NEW.
        _feed(app, [event("page_view", user_id="C2", at_us=now - 60 * DAY)], "3")
        _feed(app, [event("login", user_id="C2", at_us=now)], "4")
        assert _stage(app, "C2") != "LIFECYCLE_STAGE_NEW"


@pytest.mark.parametrize(
    "identities",
    [[(FUND, "310000123456"), (WECOM, "wx-777")], [(WECOM, "wx-777"), (FUND, "310000123456")]],
)
def test_a_plain_event_is_the_person_of_any_of_its_known_ids_whatever_their_order(
    tmp_path: Path, identities: list
) -> None:
    with profile_app(profile_settings(tmp_path)) as app:
        first = event("trade_filled", "C1", amount_fen=100)
        first.identities.add(type=FUND, value="310000123456")
        _feed(app, [first], "1")
        chat = event("wecom_chat")
        for id_type, value in identities:
            chat.identities.add(type=id_type, value=value)
        device = event("fund_view", anonymous_id="devNEW")  # a known customer number among its identities
        device.identities.add(type=CUSTOMER, value="C1")
        _feed(app, [chat, device], "2")
        customer = app.profiles.get(ref("C1"), [], UNMASK)
        assert from_proto(customer.features["events_total"]) == 3
        assert app.profiles.get(ref("wx-777", WECOM), [], UNMASK).profile_id == customer.profile_id
        with app.core.database.connection() as conn:
            assert app.core.store.count_persons(conn) == 1  # no new profile for either event


@pytest.mark.parametrize("order", ["user_new", "identity_new", "both_new"])
def test_link_identities_links_a_user_id_nobody_holds_as_an_alias_would(tmp_path: Path, order: str) -> None:
    with profile_app(profile_settings(tmp_path)) as app:
        if order == "user_new":  # the device is known, the customer number is not
            _feed(app, [event("page_view", anonymous_id="devA")], "1")
        elif order == "identity_new":
            _feed(app, [event("page_view", "C9")], "1")
        profile, merged = app.profiles.link(ref("C9"), types_pb2.Identity(type=ANONYMOUS, value="devA"), "", UNMASK)
        assert merged == ""
        ids = {(i.identity.type, i.identity.value) for i in profile.identities}
        assert {(CUSTOMER, "C9"), (ANONYMOUS, "devA")} <= ids
        assert app.profiles.get(ref("devA", ANONYMOUS), [], UNMASK).profile_id == profile.profile_id
        assert app.profiles.get(ref("C9"), [], UNMASK).profile_id == profile.profile_id


def test_link_identities_still_refuses_a_second_customer_number(tmp_path: Path) -> None:
    from svc_common.errors import FailedPrecondition

    with profile_app(profile_settings(tmp_path)) as app:
        _feed(app, [event("page_view", "C1")], "1")
        with pytest.raises(FailedPrecondition):  # C2 nobody holds, joining C1's profile: two customers in one
            app.profiles.link(ref("C2"), types_pb2.Identity(type=CUSTOMER, value="C1"), "", UNMASK)


@pytest.mark.parametrize(
    "value",
    ["NaN", "nan", "[object Object]", "{00000000-0000-0000-0000-000000000000}", "\u22121", "\u200b", "\ufeffnull"],
)
def test_sdk_junk_ids_are_placeholders(tmp_path: Path, value: str) -> None:
    with profile_app(profile_settings(tmp_path)) as app:
        _feed(app, [event("login", "C1", value)] + [event("page_view", anonymous_id=value) for _ in range(3)], "1")
        assert from_proto(app.profiles.get(ref("C1"), [], UNMASK).features["events_total"]) == 1
        with pytest.raises(InvalidArgument, match="placeholder"):
            app.profiles.get(ref(value, ANONYMOUS), [], UNMASK)


def test_a_merge_keeps_the_devices_current_session_beside_a_customers_sixteen(tmp_path: Path) -> None:
    t = time.time_ns() // 1000 - DAY
    with profile_app(profile_settings(tmp_path)) as app:
        _feed(app, [event("app_start", "C1", session_id=f"pc{i}", at_us=t + i) for i in range(16)], "1")
        _feed(app, [event("app_start", anonymous_id="devA", session_id="s1", at_us=t + 100)], "2")
        _feed(app, [event("page_view", "C1", session_id="pc99", at_us=t + 200)], "3")  # seen last on the PC
        _feed(app, [event("login", "C1", "devA", session_id="s1", at_us=t + 300)], "4")  # the phone's session goes on
        features = app.profiles.get(ref("C1"), [], UNMASK).features
        assert from_proto(features["sessions"]) == 18  # pc0 … pc15, pc99, s1: s1 once
