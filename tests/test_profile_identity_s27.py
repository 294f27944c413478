"""Findings of the identities walk of session 27: a customer who signed up after weeks of anonymous browsing was
dated from the browsing (never NEW, AT_RISK at once); a plain event whose first id was new went to a new profile
though another of its ids was a known person's; LinkIdentities was NOT_FOUND for a user id nobody held, though the
same two ids the other way round linked; "NaN", "[object Object]", a braced nil UUID, "−1" (U+2212) and ids of only
zero-width characters were taken as ids. And what the review of those fixes found: a plain event with a new customer
number must not become a known phone's holder's; LinkIdentities of one id with itself stays NOT_FOUND; a device given
a customer number by LinkIdentities or an alias is a new customer too; a customer's profile from before 0.2.10 keeps
the date its account had."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from profile_helpers import ANONYMOUS, CANONICAL, CUSTOMER, DAY, event, profile_app, profile_settings, ref

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


def test_a_plain_event_with_a_new_customer_number_is_that_customers(tmp_path: Path) -> None:
    phone = types_pb2.ID_TYPE_PHONE_PSEUDONYM
    with profile_app(profile_settings(tmp_path)) as app:
        first = event("trade_filled", "C1", amount_fen=100)
        first.identities.add(type=phone, value="13800000000")
        _feed(app, [first], "1")
        trade = event("trade_filled", amount_fen=5_000_000)  # a new account's trade; the household's phone is C1's
        trade.identities.add(type=CUSTOMER, value="C2")
        trade.identities.add(type=phone, value="13800000000")
        _feed(app, [trade], "2")
        assert from_proto(app.profiles.get(ref("C1"), [], UNMASK).features["trade_count"]) == 1
        assert from_proto(app.profiles.get(ref("C2"), [], UNMASK).features["trade_count"]) == 1


def test_link_identities_of_an_id_with_itself_is_not_found(tmp_path: Path) -> None:
    from svc_common.errors import NotFound

    with profile_app(profile_settings(tmp_path)) as app, pytest.raises(NotFound):
        app.profiles.link(ref("C9"), types_pb2.Identity(type=CUSTOMER, value="C9"), "", UNMASK)


@pytest.mark.parametrize("how", ["link_identities", "alias_event", "plain_identity"])
def test_a_device_given_a_customer_number_is_a_new_customer(tmp_path: Path, how: str) -> None:
    now = time.time_ns() // 1000
    with profile_app(profile_settings(tmp_path)) as app:
        _feed(app, [event("page_view", anonymous_id="devA", at_us=now - 60 * DAY)], "1")
        if how == "link_identities":
            app.profiles.link(ref("C1"), types_pb2.Identity(type=ANONYMOUS, value="devA"), "", UNMASK)
        else:
            linking = event("$alias" if how == "alias_event" else "page_view", anonymous_id="devA", at_us=now)
            linking.identities.add(type=CUSTOMER, value="C1")
            _feed(app, [linking], "2")
        assert _stage(app, "C1") == "LIFECYCLE_STAGE_NEW"


def test_a_customers_profile_from_before_the_feature_keeps_its_account_date(tmp_path: Path) -> None:
    import sqlalchemy as sa

    now = time.time_ns() // 1000
    with profile_app(profile_settings(tmp_path)) as app:
        _feed(app, [event("page_view", "C7", at_us=now - k * DAY) for k in (200, 150, 100)], "1")
        assert _stage(app, "C7") == "LIFECYCLE_STAGE_CHURNED"
        with app.core.writing() as conn:  # as 0.2.9 left it: no first_customer_event_at
            person = app.core.store.t["person"]
            for pid, features in conn.execute(sa.select(person.c.profile_id, person.c.features)).all():
                features = dict(features)
                features.pop("first_customer_event_at")
                conn.execute(sa.update(person).where(person.c.profile_id == pid).values(features=features))
        _feed(app, [event("app_start", "C7", at_us=now)], "2")
        assert _stage(app, "C7") == "LIFECYCLE_STAGE_REACTIVATED"  # not NEW: its account dates from its history
        features = app.profiles.get(ref("C7"), [], UNMASK).features
        assert from_proto(features["first_customer_event_at"]).timestamp() < (now - 199 * DAY) / 1e6


def test_a_condition_may_read_the_first_customer_event(tmp_path: Path) -> None:
    from svc_common.pb.qiming.common.v1 import condition_pb2 as C

    field = C.FieldRef(source=C.FieldRef.SOURCE_FEATURE, name="first_customer_event_at")
    condition = C.Condition(comparison=C.Comparison(field=field, operator=C.OPERATOR_EXISTS))
    with profile_app(profile_settings(tmp_path)) as app:
        app.definitions.create_segment(pb.Segment(segment_id="customers_seen", condition=condition))
        _feed(app, [event("page_view", "C1")], "1")
        assert app.segments.check("customers_seen", (CUSTOMER, "C1"))[0]


@pytest.mark.parametrize("value", ["[object Object]", "\u22121", "\u200b", "\ufeff", "NaN"])
def test_sdk_junk_ids_are_placeholders_as_svc_collect_pseudonymizes_them(tmp_path: Path, value: str) -> None:
    with profile_app(profile_settings(tmp_path)) as app:
        policy = app.core.policy
        for id_type, namespace in ((FUND, "fund_account"), (types_pb2.ID_TYPE_PHONE_PSEUDONYM, "phone")):
            assert policy.key(id_type, policy._pseudonyms.pseudonymize(namespace, value)) is None


def test_an_export_lists_a_members_own_canonical_id_alone(tmp_path: Path) -> None:
    from svc_common.pb.qiming.common.v1 import condition_pb2 as C

    viewed = C.Condition(event_count=C.EventCount(event_type="page_view", min_count=1, window_seconds=30 * 86_400))
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        app.definitions.create_segment(pb.Segment(segment_id="pv", condition=viewed))
        _feed(app, [event("page_view", anonymous_id="A1")], "1")
        _feed(app, [event("login", "C1", "A1")], "2")  # merges A1's profile into C1's, which keeps its canonical id
        (page,) = list(app.segments.export("pv", 10, [CANONICAL, CUSTOMER, ANONYMOUS]))
        ((pid, ids, _),) = page
        assert sorted((i.id_type, i.id_value) for i in ids) == sorted(
            [(CANONICAL, pid), (CUSTOMER, "C1"), (ANONYMOUS, "A1")]
        )


def _since_days(app, user: str, now: int) -> float:
    at = from_proto(app.profiles.get(ref(user), [], UNMASK).features["first_customer_event_at"])
    return round((at.timestamp() * 1e6 - now) / DAY, 1)


def test_a_placeholder_user_id_does_not_make_a_device_a_customer(tmp_path: Path) -> None:
    now = time.time_ns() // 1000
    with profile_app(profile_settings(tmp_path)) as app:
        _feed(app, [event("page_view", "undefined", "devA", at_us=now - 60 * DAY)], "1")
        _feed(app, [event("signup", "C1", "devA", at_us=now)], "2")
        assert _stage(app, "C1") == "LIFECYCLE_STAGE_NEW" and _since_days(app, "C1", now) == 0


def test_an_imported_customer_logging_in_on_a_browsed_device_is_new(tmp_path: Path) -> None:
    from svc_common.conditions import to_proto

    now = time.time_ns() // 1000
    with profile_app(profile_settings(tmp_path)) as app:
        _feed(app, [event("page_view", anonymous_id="devA", at_us=now - 60 * DAY)], "1")
        app.profiles.upsert_attributes(ref("C1"), {"branch": to_proto("sh01")}, [], "crm", UNMASK)  # made today
        _feed(app, [event("login", "C1", "devA", at_us=now)], "2")
        assert _stage(app, "C1") == "LIFECYCLE_STAGE_NEW" and _since_days(app, "C1", now) == 0


@pytest.mark.parametrize("batches", [1, 2])
def test_a_customer_number_gained_is_dated_by_the_event_that_gave_it(tmp_path: Path, batches: int) -> None:
    now = time.time_ns() // 1000
    with profile_app(profile_settings(tmp_path)) as app:
        _feed(app, [event("page_view", anonymous_id="devA", at_us=now - 60 * DAY)], "1")
        gain = event("page_view", anonymous_id="devA", at_us=now - 40 * DAY)
        gain.identities.add(type=CUSTOMER, value="C1")
        later = event("page_view", anonymous_id="devA", at_us=now)
        if batches == 1:
            _feed(app, [gain, later], "2")
        else:
            _feed(app, [gain], "2")
            _feed(app, [later], "3")
        assert _since_days(app, "C1", now) == -40  # whatever the batches: a replay splits them otherwise
