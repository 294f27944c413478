"""Session 14 (a compliance review): the free-text reason of a ``DeleteProfile`` is logged with the profile id, and
operators paste request details there ("PIPL ticket 42, customer phone 13655556666" was logged as written). Runs of
11 or more digits (phone, ID and bank card numbers) are masked; a ticket number stays."""

from __future__ import annotations

import logging
from pathlib import Path

from profile_helpers import profile_app, profile_settings, ref

from svc_common.conditions import to_proto


def test_the_erasure_reason_is_logged_without_phone_id_or_card_numbers(tmp_path: Path, caplog) -> None:
    with profile_app(profile_settings(tmp_path)) as app:
        app.profiles.upsert_attributes(ref("C7"), {"risk_rating": to_proto("C2")}, [], "crm", frozenset())
        reason = "PIPL-2026-007: customer phone 136 5555 6666, id 11010119900307123X, card 6222-0212-3456-7890-123"
        with caplog.at_level(logging.INFO, logger="qiming.profile"):
            app.profiles.delete(ref("C7"), reason)
        (record,) = [r for r in caplog.records if r.getMessage() == "profile erased"]
        assert record.reason == "PIPL-2026-007: customer phone ***, id ***, card ***"  # type: ignore[attr-defined]
