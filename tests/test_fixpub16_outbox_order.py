"""A person's outbox rows reach the log in the order they were made, even when one was rejected and sent again later
(review of session 16): each row's wait doubled on its own, so after a rejected ``$segment_entered`` was held back a
later ``$segment_exited`` of the same person could be sent first, and svc_campaign, which acts on the event it reads
last, saw a member where there was none. Real svc_collect, a host with a wrong keyring fixed later, a clock of the
test's own."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from collect_helpers import KEYRING
from profile_helpers import collector, profile_app, profile_settings, read_batches, ref

import svc_profile.outbox as outbox_module
from svc_common.conditions import to_proto
from svc_common.logclient import CollectClient
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.protection import JsonKeyProvider, SystemEventSigner, generate_keyring
from svc_profile.outbox import OutboxPublisher

SECOND = 1_000_000


def test_a_persons_later_change_waits_for_its_rejected_earlier_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyring = generate_keyring().to_json()  # a host installed without the broker's keyring
    wrong = profile_settings(tmp_path / "p", keyring_json=keyring, outbox_rejected_retry_seconds=60)
    clock = {"now": 10**15}
    monkeypatch.setattr(outbox_module, "now_us", lambda: clock["now"])
    start = clock["now"]
    with collector(tmp_path) as collect, profile_app(wrong) as app:
        field = C.FieldRef(source=C.FieldRef.SOURCE_ATTRIBUTE, name="branch")
        branch = C.Condition(comparison=C.Comparison(field=field, operator=C.OPERATOR_EQ, value=to_proto("bj")))
        app.definitions.create_segment(pb.Segment(segment_id="bj_branch", condition=branch))

        async def scenario() -> None:
            client = CollectClient(collect.address)
            publisher = OutboxPublisher(app.core, client)

            async def at(seconds: int) -> int:
                clock["now"] = start + seconds * SECOND
                return await publisher.drain()

            try:
                app.profiles.upsert_attributes(ref("k1"), {"branch": to_proto("bj")}, [], "crm", frozenset())
                for seconds in (0, 60, 180):  # entered: rejected (bad signature), held back 60 s, then 120 s, ...
                    await at(seconds)
                app.profiles.upsert_attributes(ref("k1"), {"branch": to_proto("sh")}, [], "crm", frozenset())
                app.profiles.upsert_attributes(ref("k2"), {"branch": to_proto("bj")}, [], "crm", frozenset())
                assert await at(400) == 1  # k1's exit waits behind its held-back entry; k2's entry goes (rejected)
                app.core.signer = SystemEventSigner(JsonKeyProvider(KEYRING))  # the keyring is fixed
                for seconds in (460, 900, 2000, 4000):
                    await at(seconds)
            finally:
                await client.close()

        asyncio.run(scenario())
        logged = [
            (e.user_id, e.event_type)
            for batch, _ in read_batches(collect.address)
            for e in batch
            if e.event_type.startswith("$segment_")
        ]
    assert [kind for who, kind in logged if who == "k1"] == ["$segment_entered", "$segment_exited"]
    assert [kind for who, kind in logged if who == "k2"] == ["$segment_entered"]


def test_the_publisher_reads_and_marks_off_the_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its database calls ran on the event loop's thread: a write lock held by another writer (up to the busy
    timeout) stalled every call the process served. They run on a worker thread now."""
    import threading

    from svc_common.pb.qiming.collect.v1 import collect_pb2

    class Accepting:
        async def publish(self, events):
            status = collect_pb2.EVENT_STATUS_ACCEPTED
            return collect_pb2.IngestResponse(
                results=[collect_pb2.EventResult(index=i, status=status) for i in range(len(events))]
            )

    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        field = C.FieldRef(source=C.FieldRef.SOURCE_ATTRIBUTE, name="branch")
        branch = C.Condition(comparison=C.Comparison(field=field, operator=C.OPERATOR_EQ, value=to_proto("bj")))
        app.definitions.create_segment(pb.Segment(segment_id="bj_branch", condition=branch))
        app.profiles.upsert_attributes(ref("k1"), {"branch": to_proto("bj")}, [], "crm", frozenset())
        threads: list[int] = []
        connection = app.core.database.connection

        def recorded(*args, **kwargs):
            threads.append(threading.get_ident())
            return connection(*args, **kwargs)

        monkeypatch.setattr(app.core.database, "connection", recorded)

        async def drain() -> tuple[int, int]:
            return await OutboxPublisher(app.core, Accepting()).drain(), threading.get_ident()

        sent, loop_thread = asyncio.run(drain())
        assert sent == 1 and len(threads) == 2  # the read of due rows, the write of their outcome
        assert loop_thread not in threads


def test_due_rows_hold_back_a_persons_later_rows_for_a_while_and_sent_rows_are_purged(tmp_path: Path) -> None:
    """``due``: a person's later rows wait behind its rejected row for ``hold_us`` from its first rejection, then go
    without it (a row that can never pass must not block the person's erasure for ever); rows of persons without a
    rejection go together. ``purge_sent`` deletes rows sent before a time, never an unsent one."""
    from sqlalchemy import insert, select

    from svc_profile.store import _outbox

    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        t = app.core.store.t["outbox"]
        now, hour = 10**15, 3_600 * SECOND
        rows = [
            # id, person, sent, rejected at, retry at
            (1, "k1", None, now - hour, now - 1),  # rejected an hour ago, due again
            (2, "k1", None, None, None),  # behind it
            (3, "k2", None, None, None),
            (4, "k2", None, None, None),  # k2 has no rejection: both go
            (5, None, None, None, None),  # written before person_key: always due
            (6, "k3", now - 2 * 86_400 * SECOND, None, None),  # sent two days ago
            (7, "k3", now - 60 * SECOND, None, None),  # sent a minute ago
        ]
        with app.core.database.connection(write=True) as conn:
            for outbox_id, person, sent, rejected, retry in rows:
                values = {"outbox_id": outbox_id, "event_id": str(outbox_id), "body": b"", "created_us": now}
                values |= {"person_key": person, "sent_us": sent, "rejected_us": rejected, "retry_us": retry}
                values |= {"rejected_reason": "UNSIGNED_SYSTEM_EVENT" if rejected else None}
                conn.execute(insert(t).values(values))
        with app.core.database.connection() as conn:
            held = [r.outbox_id for r in _outbox.due(conn, t, now, 10, hold_us=2 * hour)]
            released = [r.outbox_id for r in _outbox.due(conn, t, now, 10, hold_us=hour // 2)]
        assert held == [1, 3, 4, 5]
        assert released == [1, 2, 3, 4, 5]  # the rejection is older than the hold: k1's later row goes
        with app.core.database.connection(write=True) as conn:
            assert _outbox.purge_sent(conn, t, now - 86_400 * SECOND) == 1
            assert [r.outbox_id for r in conn.execute(select(t.c.outbox_id).order_by(t.c.outbox_id))] == [
                1,
                2,
                3,
                4,
                5,
                7,
            ]
