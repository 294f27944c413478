"""Security review F2 (/tmp/report-walk-sec.md): svc_profile's level-3 attribute names are svc_collect's (bank cards,
accounts, passwords, balances …) plus common broker names; a value stored in clear under such a name before the
upgrade is masked on read and sealed at its person's next write. SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from profile_helpers import profile_app, profile_settings, ref

from svc_common.conditions import to_proto
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.protection import DEFAULT_SENSITIVE_ATTRIBUTES, DEFAULT_SENSITIVE_PROPERTIES

NEWLY_LEVEL_3 = {
    "bank_card": "6222020200112233445",
    "fund_account": "310000123456",
    "account_number": "A123",
    "password": "hunter2",
    "passport_number": "E12345678",
    "id_card": "110101199003071234",
    "phone_number": "13800138000",
    "balance": 1234.5,
    "amount": 99,
    "tel": "021-12345678",
    "mobile_no": "13900139000",
    "id_no": "110101199003071235",
    "acct": "S0001",
    "total_asset": 5_000_000,
}
OLD_DEFAULT = ("phone", "mobile", "id_number", "real_name", "email", "address", "annual_income")
UNMASK = frozenset({"unmask"})


def stored(app, user: str) -> tuple[dict, bytes | None]:
    with app.core.database.connection() as conn:
        pid = app.core.find(conn, app.core.policy.ref(ref(user).type, user, "user"))
        row = app.core.store.load_persons(conn, [pid])[pid]
    return dict(row.attributes), row.sealed_attributes


def test_the_level_3_attribute_names_are_svc_collects_and_more() -> None:
    assert set(DEFAULT_SENSITIVE_PROPERTIES) <= set(DEFAULT_SENSITIVE_ATTRIBUTES)
    assert set(NEWLY_LEVEL_3) <= set(DEFAULT_SENSITIVE_ATTRIBUTES)
    assert set(OLD_DEFAULT) <= set(DEFAULT_SENSITIVE_ATTRIBUTES)


def test_bank_cards_accounts_and_balances_are_sealed_and_masked(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        values = {k: to_proto(v) for k, v in NEWLY_LEVEL_3.items()}
        profile, _ = app.profiles.upsert_attributes(
            ref("c1"), {**values, "branch": to_proto("SH")}, [], "kyc", frozenset()
        )
        assert set(profile.masked_fields) >= set(NEWLY_LEVEL_3)
        assert set(profile.attributes) == {"branch"}
        clear, sealed = stored(app, "c1")
        assert set(clear) == {"branch"} and sealed is not None
        assert b"6222020200112233445" not in sealed
        unmasked = app.profiles.get(ref("c1"), ["attributes"], UNMASK)
        assert unmasked.attributes["bank_card"].string_value == "6222020200112233445"


def test_a_value_stored_in_clear_before_the_upgrade_is_masked_then_sealed(tmp_path: Path, database_url: str) -> None:
    # Written by a release whose default list was the short one: stored in clear.
    with profile_app(profile_settings(tmp_path, database_url, sensitive_attributes=OLD_DEFAULT)) as old:
        old.profiles.upsert_attributes(
            ref("c1"), {"bank_card": to_proto("6222020200112233445"), "balance": to_proto(10)}, [], "kyc", frozenset()
        )
        clear, sealed = stored(old, "c1")
        assert set(clear) == {"bank_card", "balance"} and sealed is None
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        # Read: masked for a caller without the role, in clear with it; no error.
        profile = app.profiles.get(ref("c1"), [], frozenset())
        assert {"bank_card", "balance"} <= set(profile.masked_fields) and "bank_card" not in profile.attributes
        unmasked = app.profiles.get(ref("c1"), ["attributes"], UNMASK)
        assert unmasked.attributes["bank_card"].string_value == "6222020200112233445"
        # Conditions still see it (evaluated in the service, not in SQL, for a level-3 name).
        field = C.FieldRef(source=C.FieldRef.SOURCE_ATTRIBUTE, name="balance")
        condition = C.Condition(comparison=C.Comparison(field=field, operator=C.OPERATOR_GTE, value=to_proto(5)))
        app.definitions.create_segment(pb.Segment(segment_id="rich", condition=condition))
        app.segments.recompute("rich")
        assert app.segments.check("rich", app.core.policy.ref(ref("c1").type, "c1", "user"))[0]
        # The person's next write seals what was in clear.
        app.profiles.upsert_attributes(ref("c1"), {"branch": to_proto("SH")}, [], "crm", frozenset())
        clear, sealed = stored(app, "c1")
        assert set(clear) == {"branch"} and sealed is not None
        unmasked = app.profiles.get(ref("c1"), ["attributes"], UNMASK)
        assert unmasked.attributes["bank_card"].string_value == "6222020200112233445"
        assert unmasked.attributes["balance"].int_value == 10
