"""Consent history (review 2026-12-06, R9): SetConsent overwrote the record of a channel and purpose, so a grant
later withdrawn left no trace of the grant. Every record is now kept (campaign_0007), read with
``GetConsent(include_history=true)``; the upgrade copies the records in force as the first of each history."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import command
from campaign_helpers import EMAIL, SMS, campaign_service, campaign_settings

from svc_campaign.store import SCHEMA
from svc_common.db import Database
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.common.v1 import types_pb2


def _user(value: str) -> types_pb2.UserRef:
    return types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=value)


def test_a_withdrawn_grant_stays_in_the_history(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        service.set_consent(pb.Consent(user=_user("c1"), channel=SMS, purpose="*", granted=True, source="counter"))
        service.set_consent(pb.Consent(user=_user("c1"), channel=EMAIL, purpose="*", granted=True, source="app"))
        service.set_consent(pb.Consent(user=_user("c1"), channel=SMS, purpose="*", granted=False, source="sms_TD"))
        service.set_consent(pb.Consent(user=_user("c2"), channel=SMS, purpose="*", granted=True, source="app"))
        in_force = service.get_consent(_user("c1"))
        assert [(c.channel, c.granted, c.source) for c in in_force] == [(SMS, False, "sms_TD"), (EMAIL, True, "app")]
        history = service.get_consent(_user("c1"), True)
        assert [(c.channel, c.granted, c.source) for c in history] == [
            (SMS, True, "counter"),
            (EMAIL, True, "app"),
            (SMS, False, "sms_TD"),
        ]
        assert all(c.user.value == "c1" and c.HasField("updated_at") for c in history)


def test_the_upgrade_copies_the_records_in_force(tmp_path) -> None:
    db = Database.from_settings(campaign_settings(tmp_path))
    try:
        SCHEMA.migrations.upgrade(db.engine, "campaign_0006")
        at = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO campaign_consent (user_id, channel, purpose, granted, source, updated_at)"
                    " VALUES ('c1', 1, '*', 0, 'counter', :at), ('c2', 0, 'marketing', 1, 'app', :at)"
                ),
                {"at": at.isoformat()},
            )
        SCHEMA.migrations.upgrade(db.engine)
        with db.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT user_id, channel, purpose, granted, source FROM campaign_consent_history ORDER BY user_id"
                )
            ).all()
        assert [tuple(r) for r in rows] == [("c1", 1, "*", 0, "counter"), ("c2", 0, "marketing", 1, "app")]
        with db.engine.connect() as conn:
            command.downgrade(SCHEMA.migrations._config(conn), "campaign_0006")
            conn.commit()
        with db.engine.connect() as conn:
            assert "campaign_consent_history" not in sa.inspect(conn).get_table_names()
    finally:
        db.dispose()
