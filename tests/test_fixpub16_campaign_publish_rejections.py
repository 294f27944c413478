"""svc_campaign's event publisher deleted every pending ``$message_*`` event once svc_collect answered, a rejected
(quarantined) one included, with only a count at WARNING (acceptance walk, finding 1, "every other publisher"). A
rejected event now stays pending, marked with the rejection, logged at ERROR once per episode and sent again after
its retry time."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path

import pytest
from campaign_helpers import campaign_service
from collect_helpers import KEYRING, make_event
from profile_helpers import collector, read_batches
from sqlalchemy import select, update

from svc_campaign.publisher import EventPublisher
from svc_campaign.store._outbox import add_pending_event
from svc_common.logclient import CollectClient
from svc_common.protection import JsonKeyProvider, SystemEventSigner, generate_keyring

SIGNER = SystemEventSigner(JsonKeyProvider(KEYRING))
OTHER_KEYRING = SystemEventSigner(JsonKeyProvider(generate_keyring().to_json()))


def _pending(service) -> list:
    p = service.t["pending_event"]
    with service.db.connection() as conn:
        return list(conn.execute(select(p).order_by(p.c.created_at)))


def test_a_rejected_message_event_stays_pending_until_the_log_takes_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The rejection here: signed with another keyring than svc_collect's (session 17: svc_collect refuses a
    $message_* event without svc_campaign's valid signature; a schema can no longer be registered on one). Fixing
    the cause (the shared keyring) sends them at the next retry."""
    now = dt.datetime.now(dt.UTC)
    with collector(tmp_path) as collect, campaign_service(tmp_path / "c") as service:
        sent, other = make_event("$message_sent", message_id="m1"), make_event("$message_clicked", message_id="m1")
        with service.db.connection(write=True) as conn:
            add_pending_event(conn, service.t, sent.event_id, sent.SerializeToString(), now)
            add_pending_event(conn, service.t, other.event_id, other.SerializeToString(), now)
        caplog.set_level(logging.DEBUG, logger="qiming.campaign.delivery")

        async def go(signer: SystemEventSigner) -> list[int]:
            client = CollectClient(collect.address)
            publisher = EventPublisher(service.db, service.t, client, signer=lambda: signer, rejected_retry_seconds=30)
            try:
                return [await publisher.run_once(), await publisher.run_once()]
            finally:
                await client.close()

        assert asyncio.run(go(OTHER_KEYRING)) == [2, 0]  # the second round: the rejected ones wait for their retry
        rows = _pending(service)
        assert {row.event_id for row in rows} == {sent.event_id, other.event_id}
        for row in rows:
            assert row.rejected_reason == "UNSIGNED_SYSTEM_EVENT" and "does not verify" in row.rejected_message
            assert row.rejections == 1 and row.rejected_quarantine_id
            assert row.retry_at - row.rejected_at == dt.timedelta(seconds=30)
        errors = [r.message for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 2 and sent.event_id in errors[0] + errors[1]
        assert all(row.rejected_quarantine_id in errors[0] + errors[1] for row in rows)

        p = service.t["pending_event"]
        with service.db.connection(write=True) as conn:
            conn.execute(update(p).values(retry_at=now))  # as if their retry time had come
        assert asyncio.run(go(SIGNER)) == [2, 0]
        assert _pending(service) == []
        logged = [e for batch, _ in read_batches(collect.address) for e in batch]
        assert {e.event_id for e in logged} == {sent.event_id, other.event_id}
        assert all(SIGNER.verify(e) for e in logged)


def test_a_customers_later_event_waits_behind_its_held_back_earlier_one(tmp_path: Path) -> None:
    """A customer's events reach the log in the order they were made: with the $message_sent held back after a
    rejection, its $message_clicked waits (it went first before), for up to the hold; another customer's events go."""
    now = dt.datetime.now(dt.UTC)
    with campaign_service(tmp_path / "c") as service:
        sent = make_event("$message_sent", user_id="c1", message_id="m1")
        clicked = make_event("$message_clicked", user_id="c1", message_id="m1")
        other = make_event("$message_sent", user_id="c2", message_id="m2")
        other_clicked = make_event("$message_clicked", user_id="c2", message_id="m2")
        later = now + dt.timedelta(seconds=1)
        with service.db.connection(write=True) as conn:
            for event, at in ((sent, now), (clicked, later), (other, later), (other_clicked, later)):
                add_pending_event(conn, service.t, event.event_id, event.SerializeToString(), at, event.user_id)
            p = service.t["pending_event"]
            rejected = {"rejected_reason": "UNKNOWN_PROPERTY", "rejected_at": now}
            rejected["retry_at"] = now + dt.timedelta(hours=1)
            conn.execute(update(p).where(p.c.event_id == sent.event_id).values(rejected))
        store = EventPublisher(service.db, service.t, None, signer=lambda: SIGNER).store
        c2 = {other.event_id, other_clicked.event_id}

        def due(at: dt.datetime, hold: dt.timedelta) -> tuple[str, set[str]]:
            """The first due event (the oldest), and the others (of one time)."""
            with service.db.connection() as conn:
                ids = [row.event_id for row in store.pending_events(conn, 10, at, hold)]
            return (ids[0], set(ids[1:])) if ids and ids[0] == sent.event_id else ("", set(ids))

        day = dt.timedelta(days=1)
        assert due(now, day) == ("", c2)  # c1's click waits behind its held-back send
        assert due(now + dt.timedelta(hours=2), day) == (sent.event_id, c2)  # the send is due, the click still waits
        assert due(now + dt.timedelta(days=2), day) == (sent.event_id, {clicked.event_id, *c2})  # past the hold
