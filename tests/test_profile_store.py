"""The store's bulk writes (one array per column on PostgreSQL, executemany elsewhere) write what each row
says: additive day buckets, updates, upserts with a repeated key, the outbox in order, binary values. The
consumer's hot persons serve the next batch and are dropped by any other write, a failed batch or a merge."""

from __future__ import annotations

from pathlib import Path

import pytest
from profile_helpers import event, profile_app, profile_settings, ref
from sqlalchemy import select

from svc_common.conditions import to_proto
from svc_profile.identity import person_row


def test_bulk_writes_are_exact(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        store, t = app.core.store, app.core.store.t
        pids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(1, 4)]
        with app.core.writing() as conn:
            store.insert_persons(conn, [person_row(p, 1) for p in pids])
            store.add_days(conn, {(p, "login", 10): [1, 0] for p in pids} | {(pids[0], "trade", 11): [2, 500]})
            store.add_days(conn, {(pids[0], "login", 10): [3, 0], (pids[1], "login", 12): [1, 0]})
            store.update_persons(
                conn,
                [
                    {"profile_id": p, "features": {"events_total": ["i", i]}, "updated_us": 100 + i}
                    for i, p in enumerate(pids)
                ],
                ("features", "updated_us"),
            )
            members = [
                {"segment_id": "s", "profile_id": p, "is_member": True, "seq": 1, "entered_us": 5, "changed_us": 5}
                for p in pids
            ]
            store.upsert_members(conn, members)
            store.upsert_members(conn, [{**members[0], "is_member": False, "seq": 2}, {**members[0], "seq": 3}])
            store.add_outbox(
                conn, [{"event_id": f"e{i}", "body": bytes([i, 0, 255]), "created_us": i} for i in range(5)]
            )
        with app.core.database.connection() as conn:
            days = {(r.profile_id, r.event_type, r.day): (r.n, r.amount_fen) for r in conn.execute(select(t["day"]))}
            assert days == {
                (pids[0], "login", 10): (4, 0),
                (pids[1], "login", 10): (1, 0),
                (pids[2], "login", 10): (1, 0),
                (pids[0], "trade", 11): (2, 500),
                (pids[1], "login", 12): (1, 0),
            }
            rows = store.load_persons(conn, pids)
            assert [(rows[p].features, rows[p].updated_us) for p in pids] == [
                ({"events_total": ["i", i]}, 100 + i) for i in range(3)
            ]
            member = store.load_members(conn, [pids[0]], ["s"])[pids[0]]["s"]
            assert (member.is_member, member.seq) == (True, 3)  # rows with one key apply in order
            assert [bytes(body) for _, body in store.unsent(conn, 10)] == [bytes([i, 0, 255]) for i in range(5)]


def test_hot_persons_serve_the_next_batch_and_other_writes_empty_them(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        hot, consume = app.core.hot, app.consumer.handle

        def total(user: str) -> int:
            return app.profiles.get(ref(user), ["features"], frozenset()).features["events_total"].int_value

        consume([event("login", user_id="U1"), event("login", user_id="U2")], "c1")
        assert len(hot.rows) == 2 and hot.misses == 2
        consume([event("page_view", user_id="U1"), event("page_view", user_id="U1")], "c2")
        assert (hot.hits, hot.misses) == (1, 2) and total("U1") == 3  # read from memory, written exactly

        app.profiles.upsert_attributes(ref("U1"), {"branch": to_proto("B7")}, [], "crm", frozenset())
        assert not hot.rows and not hot.owner  # another writer: nothing kept
        consume([event("page_view", user_id="U1")], "c3")
        assert total("U1") == 4 and "branch" in app.profiles.get(ref("U1"), ["attributes"], frozenset()).attributes

        app.consumer.fail_after_features = True  # a crash in mid-batch empties it; the replay is exact
        with pytest.raises(RuntimeError):
            consume([event("page_view", user_id="U1")], "c4")
        assert not hot.rows and total("U1") == 4
        app.consumer.fail_after_features = False
        consume([event("page_view", user_id="U1")], "c4")
        assert total("U1") == 5

        # A device seen alone, then logged in by U2: merged into U2; the cache starts over.
        consume([event("page_view", anonymous_id="D1"), event("page_view", anonymous_id="D1")], "c5")
        assert len(hot.rows) == 2
        consume([event("login", user_id="U2", anonymous_id="D1")], "c6")
        assert not hot.rows and total("U2") == 4
        consume([event("page_view", anonymous_id="D1")], "c7")  # the device now resolves to U2
        assert total("U2") == 5 and len(hot.rows) == 1
