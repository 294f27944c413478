"""The log consumer against a real svc_collect: identities stitched, features exact, a crash in the middle of
a batch replayed without double counting; on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from profile_helpers import (
    ANONYMOUS,
    CANONICAL,
    DAY,
    collector,
    event,
    profile_app,
    profile_settings,
    publish,
    read_batches,
    ref,
)

from svc_common.conditions import Money, to_proto
from svc_common.errors import FailedPrecondition, InvalidArgument, NotFound
from svc_common.pb.qiming.common.v1 import types_pb2


def _value(profile, name):
    from svc_common.conditions import from_proto

    return from_proto(profile.features[name]) if name in profile.features else None


def test_identities_features_and_exact_replay_after_a_crash(tmp_path: Path, database_url: str) -> None:
    now = time.time_ns() // 1000
    events = [
        event("app_start", anonymous_id="dev-1", session_id="s1", at_us=now - 3 * DAY),
        event("quote_view", anonymous_id="dev-1", session_id="s1", at_us=now - 3 * DAY + 1, product_category="stock"),
        event("login", user_id="C100", anonymous_id="dev-1", session_id="s2", at_us=now - 2 * DAY),
        event("trade_filled", user_id="C100", session_id="s2", at_us=now - 2 * DAY + 5, product_risk_level=4),
        event(
            "fund_view",
            user_id="C100",
            session_id="s3",
            at_us=now - 40 * DAY,
            product_category="fund",
            fund_type="bond",
        ),
        event(
            "fund_view", user_id="C100", session_id="s3", at_us=now - 1000, product_category="fund", fund_type="equity"
        ),
        event("page_view", anonymous_id="null", session_id="s9", at_us=now),  # a placeholder: no person
        event("app_start", user_id="C200", anonymous_id="dev-2", at_us=now),
        # A second customer logging in on C100's device: refused, the device stays with C100.
        event("login", user_id="C200", anonymous_id="dev-1", at_us=now),
    ]
    with collector(tmp_path) as collect:
        publish(collect.address, events)
        batches = read_batches(collect.address, batch_size=4)
        with profile_app(profile_settings(tmp_path, database_url)) as app:
            consumer = app.consumer
            consumer.handle(*batches[0])
            consumer.fail_after_features = True  # crash after the features of batch 2 are written
            with pytest.raises(RuntimeError, match="injected crash"):
                consumer.handle(*batches[1])
            consumer.fail_after_features = False
            assert consumer.load_cursor() == batches[0][1]  # the crashed batch left nothing behind
            for batch in read_batches(collect.address, after=consumer.load_cursor(), batch_size=4):
                consumer.handle(*batch)
            assert consumer.refused_merges == 1

            by_device = app.profiles.get(ref("dev-1", ANONYMOUS), [], frozenset())
            by_customer = app.profiles.get(ref("C100"), [], frozenset())
            assert by_device.profile_id == by_customer.profile_id
            assert (
                app.profiles.get(ref(by_device.profile_id, CANONICAL), [], frozenset()).profile_id
                == by_device.profile_id
            )
            ids = {(i.identity.type, i.identity.value): i.linked_by for i in by_customer.identities}
            assert ids[(ANONYMOUS, "dev-1")] in ("event", "login_event")
            assert _value(by_customer, "events_total") == 6  # exact: nothing counted twice
            assert _value(by_customer, "sessions") == 3
            assert _value(by_customer, "trade_count") == 1
            assert _value(by_customer, "count.fund_view.30d") == 1 and _value(by_customer, "count.fund_view.90d") == 2
            assert _value(by_customer, "count.app_start.7d") == 1
            assert _value(by_customer, "views.fund.bond") == 1 and _value(by_customer, "views.stock") == 1
            assert _value(by_customer, "risk.max_traded_level") == 4
            other = app.profiles.get(ref("C200"), [], frozenset())
            assert other.profile_id != by_customer.profile_id
            assert _value(other, "events_total") == 2
            with pytest.raises(NotFound):
                app.profiles.get(ref("nobody"), [], frozenset())
            with pytest.raises(InvalidArgument, match="placeholder"):
                app.profiles.get(ref("guest", ANONYMOUS), [], frozenset())


def test_attributes_protected_links_and_merges(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        profiles = app.profiles
        profile, created = profiles.upsert_attributes(
            ref("C1"), {"aum_fen": to_proto(Money(400_000_000)), "risk_rating": to_proto("C3")}, [], "crm", frozenset()
        )
        assert created and "aum_fen" in profile.masked_fields and "aum_fen" not in profile.attributes
        assert profile.attributes["risk_rating"].string_value == "C3"
        assert {t.name for t in profile.tags} >= {"fin_high_net_worth", "fin_investor_tier"}
        unmasked = profiles.get(ref("C1"), ["attributes"], frozenset({"unmask"}))
        assert unmasked.attributes["aum_fen"].money_fen_value == 400_000_000
        with app.core.database.connection() as conn:  # level 3 is sealed at rest
            row = app.core.store.load_persons(conn, [profile.profile_id])[profile.profile_id]
            assert "aum_fen" not in row.attributes and row.sealed_attributes

        anon, _ = profiles.upsert_attributes(
            ref("dev-9", ANONYMOUS), {"age_band": to_proto("30-39")}, [], "app", frozenset()
        )
        merged, loser = profiles.link(ref("C1"), types_pb2.Identity(type=ANONYMOUS, value="dev-9"), "", frozenset())
        assert loser == anon.profile_id and merged.profile_id == profile.profile_id
        assert merged.attributes["age_band"].string_value == "30-39"
        assert profiles.get(ref(anon.profile_id, CANONICAL), [], frozenset()).profile_id == profile.profile_id

        profiles.upsert_attributes(ref("C2"), {"branch": to_proto("SH01")}, [], "crm", frozenset())
        with pytest.raises(FailedPrecondition, match="two different customers"):
            profiles.link(ref("C1"), types_pb2.Identity(type=types_pb2.ID_TYPE_CUSTOMER, value="C2"), "", frozenset())
        with pytest.raises(InvalidArgument, match="placeholder"):
            profiles.link(ref("C1"), types_pb2.Identity(type=ANONYMOUS, value="0"), "", frozenset())

        fund = types_pb2.Identity(type=types_pb2.ID_TYPE_FUND_ACCOUNT, value="310000123456")
        linked, _ = profiles.link(ref("C1"), fund, "", frozenset())
        stored = [i.identity.value for i in linked.identities if i.identity.type == types_pb2.ID_TYPE_FUND_ACCOUNT]
        assert stored and stored[0].startswith("ps1:")  # a pseudonym, never the account number
        assert (
            profiles.get(ref("310000123456", types_pb2.ID_TYPE_FUND_ACCOUNT), [], frozenset()).profile_id
            == profile.profile_id
        )

        new_pid = profiles.unlink(types_pb2.Identity(type=ANONYMOUS, value="dev-9"))
        assert new_pid != profile.profile_id
        assert profiles.delete(ref("C2"), "PIPL-2026-001")
        with pytest.raises(NotFound):
            profiles.get(ref("C2"), [], frozenset())
