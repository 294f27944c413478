"""svc_profile's outbox marked an event sent whatever svc_collect answered: a rejected (quarantined)
``$segment_entered`` / ``$profile_erased`` was lost without a word (acceptance walk, finding 1). A row now counts as
sent only when the log ACCEPTED it or had it (DUPLICATE); a rejected row stays unsent, marked with the rejection,
logged at ERROR once per episode, held back until its retry time, and signed again when published, so a host whose
keyring is fixed later sends it."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from collect_helpers import KEYRING
from profile_helpers import collector, profile_app, profile_settings, read_batches, ref
from sqlalchemy import select, update

from svc_common.conditions import to_proto
from svc_common.logclient import CollectClient
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.protection import JsonKeyProvider, SystemEventSigner, generate_keyring
from svc_profile.outbox import OutboxPublisher

SIGNER = SystemEventSigner(JsonKeyProvider(KEYRING))


def _outbox(app) -> list:
    t = app.core.store.t["outbox"]
    with app.core.database.connection() as conn:
        return list(conn.execute(select(t).order_by(t.c.outbox_id)))


def _due_now(app) -> None:
    """As if each held-back row's retry time had come."""
    t = app.core.store.t["outbox"]
    with app.core.database.connection(write=True) as conn:
        conn.execute(update(t).where(t.c.sent_us.is_(None)).values(retry_us=0))


def test_a_rejected_outbox_event_stays_queued_marked_and_is_sent_once_the_keyring_is_fixed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A host installed without the broker's keyring: it generated its own, so svc_collect cannot verify its events.
    wrong = profile_settings(tmp_path / "p", keyring_json=generate_keyring().to_json(), outbox_rejected_retry_seconds=5)
    with collector(tmp_path) as collect, profile_app(wrong) as app:
        field = C.FieldRef(source=C.FieldRef.SOURCE_ATTRIBUTE, name="branch")
        branch = C.Condition(comparison=C.Comparison(field=field, operator=C.OPERATOR_EQ, value=to_proto("bj")))
        app.definitions.create_segment(pb.Segment(segment_id="bj_branch", condition=branch))
        app.profiles.upsert_attributes(ref("k1"), {"branch": to_proto("bj")}, [], "crm", frozenset())
        assert app.segments.check("bj_branch", (2, "k1"))[0]
        app.profiles.delete(ref("k1"), "PIPL-123")
        queued = {r.event_id: r for r in _outbox(app)}
        assert len(queued) == 3  # entered, exited (erased), $profile_erased
        seen: list[list] = []
        caplog.set_level(logging.DEBUG, logger="qiming.profile")

        async def go() -> list[int]:
            client = CollectClient(collect.address)
            publisher = OutboxPublisher(app.core, client)
            try:
                counts = [await publisher.drain()]  # every row goes: each rejected
                seen.append(_outbox(app))
                counts.append(await publisher.drain())  # all held back until their retry time: no hot loop
                _due_now(app)
                counts.append(await publisher.drain())  # the person's first row alone (the others wait behind it):
                seen.append(_outbox(app))  # rejected again for the same reason, the same episode
                app.core.signer = SystemEventSigner(JsonKeyProvider(KEYRING))  # keyring file fixed, restarted
                _due_now(app)
                for _ in range(4):
                    counts.append(await publisher.drain())
                return counts
            finally:
                await client.close()

        assert asyncio.run(go()) == [3, 0, 1, 1, 1, 1, 0]  # then the person's rows one after the other, in order

        first, second = seen
        for row in first:
            assert row.sent_us is None and row.rejected_reason == "UNSIGNED_SYSTEM_EVENT" and row.rejections == 1
            assert row.rejected_quarantine_id and row.retry_us - row.rejected_us == 5_000_000
        assert [r.rejections for r in second] == [2, 1, 1]
        assert second[0].rejected_us == first[0].rejected_us  # the episode's start is kept
        assert second[0].retry_us - second[0].rejected_us > 5_000_000  # the wait doubled

        errors = [r for r in caplog.records if r.levelno == logging.ERROR and "rejected outbox event" in r.message]
        assert len(errors) == 3  # once per row and episode, not again on the retry with the same reason
        for record in errors:
            event_id = record.message.split()[4]
            assert "UNSIGNED_SYSTEM_EVENT" in record.message
            assert f"quarantine id {queued_quarantine(first, event_id)}" in record.message
        assert "k1" not in " ".join(r.message for r in errors)  # no customer id in the log

        done = _outbox(app)
        assert all(r.sent_us is not None for r in done)  # sent once signed with the right keyring
        logged = [e for batch, _ in read_batches(collect.address) for e in batch]
        assert [e.event_type for e in logged] == ["$segment_entered", "$segment_exited", "$profile_erased"]
        assert all(SIGNER.verify(e) for e in logged)


def queued_quarantine(rows: list, event_id: str) -> str:
    (row,) = [r for r in rows if r.event_id == event_id]
    return row.rejected_quarantine_id
