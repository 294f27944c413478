"""DeleteProfile tells the other services: one ``$profile_erased`` per customer id, written to the outbox in the
deletion's transaction (deterministic ids), and svc_profile's own consumer reading it back re-creates nobody."""

from __future__ import annotations

from pathlib import Path

import pytest
from profile_helpers import ANONYMOUS, profile_app, profile_settings, ref

from svc_common.conditions import to_proto
from svc_common.errors import NotFound
from svc_common.pb.qiming.common.v1 import event_pb2, types_pb2


def outbox_events(app) -> list[event_pb2.Event]:
    with app.core.database.connection() as conn:
        return [event_pb2.Event.FromString(row.body) for row in app.core.store.unsent(conn, 1000)]


def test_delete_publishes_profile_erased_and_the_consumer_ignores_it(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        profiles = app.profiles
        person, _ = profiles.upsert_attributes(ref("C7"), {"risk_rating": to_proto("C2")}, [], "crm", frozenset())
        profiles.link(ref("C7"), types_pb2.Identity(type=ANONYMOUS, value="dev-7"), "", frozenset())
        profiles.upsert_attributes(ref("C8"), {"risk_rating": to_proto("C4")}, [], "crm", frozenset())
        before = {e.event_id for e in outbox_events(app)}

        assert profiles.delete(ref("C7"), "PIPL-2026-007") == person.profile_id

        erased = [e for e in outbox_events(app) if e.event_id not in before]
        assert [(e.event_type, e.user_id, e.properties["profile_id"].string_value) for e in erased] == [
            ("$profile_erased", "C7", person.profile_id)
        ]
        # no reason, no attribute leaves with it; signed, so that svc_collect and svc_campaign take it
        assert set(erased[0].properties) == {"profile_id", "$signature"}
        with pytest.raises(NotFound):
            profiles.get(ref("C7"), [], frozenset())

        app.consumer.handle(erased, "")  # the log brings it back to svc_profile's own consumer
        with pytest.raises(NotFound):
            profiles.get(ref("C7"), [], frozenset())
        assert profiles.get(ref("C8"), [], frozenset()).attributes["risk_rating"].string_value == "C4"
