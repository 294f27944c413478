"""The log consumer keeps the tag and membership rows of the persons it evaluated (``HotPersons.tags`` /
``members``) and applies its own writes to them: a value that flips back and forth across batches, and a
segment entered, left and entered again, come out as with every row read from the database. On SQLite and
PostgreSQL."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from profile_helpers import (
    ANONYMOUS,
    CANONICAL,
    CUSTOMER,
    DAY,
    event,
    profile_app,
    profile_settings,
    ref,
    second_database,
)
from sqlalchemy import select

from svc_common.conditions import to_proto
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_profile.features import LazyFeatures, decoded_features


def _views(user: str, fund_type: str, n: int, at: int) -> list[Any]:
    return [
        event("fund_view", user_id=user, at_us=at + i, product_category="fund", fund_type=fund_type) for i in range(n)
    ]


def _flip_flop() -> list[list[Any]]:
    """Per batch, fund views that make each person's preferred fund type (``fin_fund_preference``) flip:
    equity, bond, equity, bond, equity — with a bystander in every batch who is evaluated too."""
    now = time.time_ns() // 1000 - DAY
    batches = [[event("app_start", user_id=u, at_us=now) for u in ("A", "B", "C")]]
    counts = {"equity": 0, "bond": 0}
    for i, kind in enumerate(["equity", "bond", "equity", "bond", "equity"]):
        other = "bond" if kind == "equity" else "equity"
        n = counts[other] - counts[kind] + 1  # one more than the other kind: the preference flips
        counts[kind] += n
        at = now + (i + 1) * 1000
        batches.append([*_views("A", kind, n, at), *_views("B", kind, n, at), *_views("C", "equity", 1, at)])
    return batches


def _state(app: Any) -> dict[str, Any]:
    t = app.core.store.t
    with app.core.database.connection() as conn:
        owner = {r.profile_id: r.id_value for r in conn.execute(select(t["identity"])) if r.id_type != 8}
        tags = sorted((owner[r.profile_id], r.name, str(r.tag_value)) for r in conn.execute(select(t["tag"])))
        members = sorted(
            (owner[r.profile_id], r.segment_id, r.is_member, r.seq) for r in conn.execute(select(t["member"]))
        )
        outbox = sorted(r.event_id for r in conn.execute(select(t["outbox"])))
    return {"tags": tags, "members": members, "outbox": len(outbox)}


def test_cached_tags_and_memberships_follow_the_batches_writes(tmp_path: Path, database_url: str) -> None:
    batches = _flip_flop()
    field = C.FieldRef(source=C.FieldRef.SOURCE_TAG, name="fin_fund_preference")
    cond = C.Condition(comparison=C.Comparison(field=field, operator=C.OPERATOR_EQ, value=to_proto("equity")))
    states = []
    with second_database(tmp_path, database_url) as second:
        for hot, url in ((0, database_url), (100_000, second)):
            with profile_app(profile_settings(tmp_path / f"h{hot}", url, hot_persons=hot)) as app:
                app.definitions.create_segment(pb.Segment(segment_id="equity_fans", condition=cond))
                seen = []
                for i, batch in enumerate(batches):
                    app.consumer.handle(batch, f"c{i}")
                    seen.append(_state(app))  # after every batch: a stale row can be overwritten again later
                    if i == 2:
                        # As any other writer does (Core.writing): the next batch reads the rows from the database
                        # again, so the cache then holds a stored value that this batch's writes must replace.
                        app.core.hot.clear()
                if hot:
                    assert app.core.hot.rule_hits >= 6  # A and B read from the cache in the later batches
                states.append(seen)
    assert states[0] == states[1]
    last = states[0][-1]
    fans = [m for m in last["members"] if m[1] == "equity_fans"]
    # A and B entered, left, entered, left, entered: five transitions each, seq 5, member.
    assert [(m[0], m[2], m[3]) for m in fans if m[0] in ("A", "B")] == [("A", True, 5), ("B", True, 5)]
    assert ("A", "fin_fund_preference", str(["s", "equity"])) in last["tags"]
    assert ("A", "fin_fund_preference", str(["s", "bond"])) in states[0][-2]["tags"]
    assert last["outbox"] == 11  # A and B five each, C once


def test_lazy_features_read_as_the_decoded_document() -> None:
    """The consumer's persons read their features through ``LazyFeatures``: every read equals
    ``decoded_features`` (timestamps, money, lists; internal ``_`` entries hidden)."""
    doc = {
        "events_total": ["i", 7],
        "first_seen_at": ["t", 1_700_000_000_000_000],
        "turnover_fen": ["m", 12_345],
        "views.fund.bond": ["i", 2],
        "tags_seen": ["l", ["a", "b"]],
        "score": ["d", 0.5],
        "_last_session": "s1",
    }
    lazy, plain = LazyFeatures(doc), decoded_features(doc)
    assert dict(lazy) == plain and {**lazy} == plain and len(lazy) == len(plain) == 6
    for name in [*doc, "missing"]:
        assert lazy.get(name) == plain.get(name)
        assert lazy.get(name, "x") == plain.get(name, "x")
        assert (name in lazy) == (name in plain)
    assert lazy["turnover_fen"] == plain["turnover_fen"] and lazy.get("first_seen_at") is lazy.get("first_seen_at")
    with pytest.raises(KeyError):
        lazy["_last_session"]


def test_day_rows_read_for_evaluation_equal_the_generic_read(tmp_path: Path, database_url: str) -> None:
    """``load_days`` with wanted types (SQLite: the driver's tuples; PostgreSQL: through the key) returns exactly
    the buckets of those types that the generic statement returns, for more persons than one chunk of ids."""
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        store = app.core.store
        pids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(1, 1203)]
        deltas = {
            (pid, kind, day): [1 + i % 3, 100 * (i % 2)]
            for i, pid in enumerate(pids)
            for kind in ("login", "quote_view", "page_view")
            for day in (20_000 + i % 5, 20_010)
        }
        with app.core.writing() as conn:
            store.add_days(conn, deltas)
        with app.core.database.connection() as conn:
            everything = store.load_days(conn, pids[::-1], None, 20_002)
            wanted = store.load_days(conn, pids[::-1], ["quote_view", "login"], 20_002)
    expected = {
        pid: {k: v for k, v in by_type.items() if k in ("quote_view", "login")} for pid, by_type in everything.items()
    }
    assert wanted == expected and sum(len(d) for t in wanted.values() for d in t.values()) > 2_000


def test_rule_tag_values_are_written_as_json_text_writes_them() -> None:
    """``Engine._tags`` hands the driver each value's text (``encode_doc``): the same text as ``JsonText``."""
    import datetime as dt

    from svc_common.conditions import Money
    from svc_common.db import JsonText
    from svc_profile.hot import encode_doc
    from svc_profile.model import encode

    bind = JsonText().process_bind_param
    for value in [True, 5, 2.5, '低风险 "q"', Money(12), ("a", "b"), dt.datetime(2026, 1, 2, tzinfo=dt.UTC)]:
        assert encode_doc(encode(value)) == bind(encode(value), None)  # type: ignore[arg-type]


def test_remembered_id_keys_equal_the_policys(tmp_path: Path) -> None:
    """The resolver remembers customer and device keys across batches: the same persons as without memory,
    placeholders still no id, and a device id never taken for the same text as a customer id."""
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        batch = [
            event("page_view", user_id=" C1 "),
            event("page_view", user_id="null"),
            event("page_view", anonymous_id="C1"),
            event("login", user_id="C1", anonymous_id=" d9"),
        ]
        for i in range(3):
            app.consumer.handle(batch, f"c{i}")
        resolver = app.consumer.resolver
        assert resolver._users == {" C1 ": (CUSTOMER, "C1"), "null": None, "C1": (CUSTOMER, "C1")}
        assert resolver._devices == {"C1": (ANONYMOUS, "C1"), " d9": (ANONYMOUS, "d9")}
        with app.core.database.connection() as conn:
            owners = app.core.store.lookup_ids(conn, [(CUSTOMER, "C1"), (ANONYMOUS, "C1"), (ANONYMOUS, "d9")])
        assert len(set(owners.values())) == 2 and owners[(CUSTOMER, "C1")] == owners[(ANONYMOUS, "d9")]


def test_cached_day_buckets_follow_the_batches_deltas(tmp_path: Path, database_url: str) -> None:
    """The consumer keeps evaluated persons' day buckets (``HotPersons.days``) and adds each batch's deltas to
    them: a count window entered and left again across batches (page views 2 to 3 in 7 days), trades and logins
    on several days (finance tags, lifecycle), the cache emptied once in the middle, equal after every batch to
    a consumer reading every bucket from the database."""
    now = time.time_ns() // 1000 - DAY
    batches = [[event("app_start", user_id=u, at_us=now - 20 * DAY) for u in ("A", "B", "C")]]
    for i in range(6):
        at = now + i * 1000
        batch = [event("page_view", user_id="A", at_us=at - (i % 3) * DAY)]
        batch += [event("page_view", user_id="B", at_us=at - 8 * DAY)] if i % 2 else []  # outside the window
        batch += [event("page_view", user_id="B", at_us=at)] if i in (1, 4) else []
        batch += [event("trade_filled", user_id="C", at_us=at - i * 5 * DAY, amount_fen=1000 * (i + 1))]
        batch += [event("login", user_id=u, at_us=at - i * 7 * DAY) for u in ("A", "C")]
        batches.append(batch)
    window = C.EventCount(event_type="page_view", min_count=2, max_count=3, window_seconds=7 * 86_400)
    states = []
    with second_database(tmp_path, database_url) as second:
        for hot, url in ((0, database_url), (100_000, second)):
            with profile_app(profile_settings(tmp_path / f"h{hot}", url, hot_persons=hot)) as app:
                app.definitions.create_segment(
                    pb.Segment(segment_id="viewers", condition=C.Condition(event_count=window))
                )
                seen = []
                for i, batch in enumerate(batches):
                    app.consumer.handle(batch, f"c{i}")
                    seen.append(_state(app))
                    if i == 3:
                        app.core.hot.clear()  # read from the database again, then cached again
                if hot:
                    assert app.core.hot.day_hits >= 8  # A and C evaluated from cached buckets in later batches
                states.append(seen)
    assert states[0] == states[1]
    viewers = [m for m in states[0][-1]["members"] if m[1] == "viewers"]
    assert [(m[0], m[2], m[3]) for m in viewers] == [("A", False, 2), ("B", True, 1)]  # A entered and left


def test_cached_day_buckets_are_dropped_when_the_window_moves() -> None:
    """Buckets cached for one set of types and first day are not served for another (a day boundary passed,
    definitions changed): those persons are read again; deltas before the first day or of other types are not
    added."""
    from svc_profile.hot import HotPersons

    hot = HotPersons(10)
    assert hot.day_rows(["p"], ["login"], 100) == ({}, ["p"])
    hot.days["p"] = {"login": {100: (1, 0)}}
    hot.add_days({("p", "login", 100): [2, 5], ("p", "login", 99): [1, 0], ("p", "trade", 101): [1, 9]})
    hot.add_days({("p", "login", 102): [1, 0], ("q", "login", 102): [1, 0]})
    assert hot.day_rows(["p", "q"], ["login"], 100) == ({"p": {"login": {100: (3, 5), 102: (1, 0)}}}, ["q"])
    assert hot.day_rows(["p"], ["login"], 101) == ({}, ["p"]) and hot.days == {}
    hot.days["p"] = {}
    assert hot.day_rows(["p"], ["login", "trade"], 101) == ({}, ["p"])


def test_a_merge_reads_the_winners_day_buckets_and_tags_again(tmp_path: Path, database_url: str) -> None:
    """A device's page views and manual tag merged into a cached customer (a login on the device) count in the
    same batch's evaluation: the merge moved them in the database, so the winner's cached buckets and tag rows
    are not used."""
    now = time.time_ns() // 1000 - DAY
    batches = [
        [
            event("app_start", user_id="W", at_us=now),
            *[event("page_view", anonymous_id="D", at_us=now + i) for i in (1, 2)],
        ],
        [event("page_view", user_id="W", at_us=now + 3)],
        [event("login", user_id="W", anonymous_id="D", at_us=now + 4)],
    ]
    window = C.EventCount(event_type="page_view", min_count=3, window_seconds=7 * 86_400)
    vip = C.FieldRef(source=C.FieldRef.SOURCE_TAG, name="vip")
    tagged = C.Condition(comparison=C.Comparison(field=vip, operator=C.OPERATOR_EQ, value=to_proto(True)))
    states = []
    with second_database(tmp_path, database_url) as second:
        for hot, url in ((0, database_url), (100_000, second)):
            with profile_app(profile_settings(tmp_path / f"h{hot}", url, hot_persons=hot)) as app:
                app.definitions.create_segment(
                    pb.Segment(segment_id="viewers", condition=C.Condition(event_count=window))
                )
                app.definitions.create_tag(pb.TagDefinition(name="vip", external=pb.ExternalTag(writer="crm")))
                app.definitions.create_segment(pb.Segment(segment_id="vips", condition=tagged))
                for i, batch in enumerate(batches):
                    app.consumer.handle(batch, f"c{i}")
                    if i == 0:
                        with app.core.writing() as conn:  # a manual tag on the device's profile
                            device = app.core.store.lookup_ids(conn, [(ANONYMOUS, "D")])[(ANONYMOUS, "D")]
                            app.core.store.upsert_tags(conn, [_manual(device, "vip", True)])
                    if hot and i == 1:
                        assert app.core.hot.days and app.core.hot.tags  # W's are cached before the merge
                states.append(_state(app))
    assert states[0] == states[1]
    assert [m[2] for m in states[0]["members"] if m[1] == "viewers"] == [True]  # the merged profile, 3 views
    assert [m[2] for m in states[0]["members"] if m[1] == "vips"] == [True]  # and the device's tag


def _manual(pid: str, name: str, value: object) -> dict[str, Any]:
    from svc_profile.model import encode

    return {
        "profile_id": pid,
        "name": name,
        "tag_value": encode(value),
        "source": "MANUAL",
        "writer": "test",
        "writer_version": "1",
        "written_us": time.time_ns() // 1000,
        "expires_us": None,
        "trace_id": "",
    }


def test_cached_day_buckets_are_bounded() -> None:
    """``hot_day_buckets``: persons whose buckets would exceed it are not kept (read again next time); buckets
    that batches add count, and past the bound the persons cached longest ago are dropped at the next store."""
    from svc_profile.hot import HotPersons, PersonRow

    hot = HotPersons(10, day_limit=3)
    rows = {p: PersonRow(p, 0, 0, "{}", None, {}, "NEW", 0) for p in ("p", "q")}
    hot.day_rows([], ["login"], 100)
    days = {"p": {"login": {100: [1, 0], 101: [1, 0]}}, "q": {"login": {100: [1, 0], 102: [2, 0]}}}
    hot.store({}, {}, rows, days=days)
    assert hot.days == {"p": {"login": {100: (1, 0), 101: (1, 0)}}} and hot.day_buckets == 2
    hot.add_days({("p", "login", 102): [1, 0], ("p", "login", 100): [1, 0]})
    assert hot.day_buckets == 3
    hot.add_days({("p", "login", 103): [1, 0]})
    hot.forget_merged(["q"])
    assert hot.day_buckets == 4
    hot.store({}, {}, rows, days={"q": {}})
    assert hot.days == {"q": {}} and hot.day_buckets == 0
    hot.forget_merged(["q"])
    assert hot.days == {} and hot.day_buckets == 0
    none = HotPersons(10, day_limit=0)
    none.store({}, {}, rows, days={"q": {}})
    assert none.days == {} and none.day_rows(["q"], ["login"], 100) == ({}, ["q"])


def test_a_day_cache_past_its_bound_drops_the_persons_cached_longest_ago() -> None:
    """At the bound the cache drops its oldest persons (to 90 % of it), not everything: batches at the bound would
    otherwise read every person's buckets again after each emptying."""
    from svc_profile.hot import HotPersons, PersonRow

    hot = HotPersons(10, day_limit=10)
    hot.day_rows([], ["login"], 100)
    for pid in ("a", "b", "c"):
        rows = {pid: PersonRow(pid, 0, 0, "{}", None, {}, "NEW", 0)}
        hot.store({}, {}, rows, days={pid: {"login": {100: [1, 0], 101: [1, 0], 102: [1, 0]}}})
    assert list(hot.days) == ["a", "b", "c"] and hot.day_buckets == 9
    hot.add_days({("c", "login", 103): [1, 0], ("c", "login", 104): [1, 0]})
    assert hot.day_buckets == 11
    hot.store({}, {}, {})
    assert list(hot.days) == ["b", "c"] and hot.day_buckets == 8
    assert hot.day_rows(["a", "b"], ["login"], 100)[1] == ["a"]


def test_a_merge_of_two_profiles_holding_the_same_event_keeps_one_copy(tmp_path: Path, database_url: str) -> None:
    """An event sent again after svc_collect's de-duplication window, while its device was unlinked from the
    customer, is stored under both profiles (the events' key is person, time, event id). Their merge keeps one
    copy instead of failing the batch on every retry (which would stop the consumer)."""
    now = time.time_ns() // 1000 - 3_600_000_000
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        view = event("page_view", anonymous_id="D", at_us=now, event_id="11111111-1111-1111-1111-111111111111")
        app.consumer.handle([view], "c1")
        with app.core.database.connection() as conn:
            first = app.core.store.lookup_ids(conn, [(ANONYMOUS, "D")])[(ANONYMOUS, "D")]
        app.profiles.link(ref(first, CANONICAL), ref("C1", CUSTOMER), "", frozenset())
        second = app.profiles.unlink(ref("D", ANONYMOUS))  # the device now has a profile of its own
        app.consumer.handle([view], "c2")  # the same event again: it lands on the device's new profile
        t = app.core.store.t["event"]
        with app.core.database.connection() as conn:
            assert sorted(r.profile_id for r in conn.execute(select(t))) == sorted([first, second])
        app.consumer.handle([event("login", user_id="C1", anonymous_id="D", at_us=now + 10)], "c3")  # a merge
        with app.core.database.connection() as conn:
            owners = [(r.event_id, r.event_type) for r in conn.execute(select(t).where(t.c.event_type == "page_view"))]
            assert owners == [(view.event_id, "page_view")]
            assert len({r.profile_id for r in conn.execute(select(t))}) == 1


def test_a_writer_waiting_while_a_batch_commits_does_not_see_its_write_undone_by_the_cache(
    tmp_path: Path, database_url: str
) -> None:
    """An RPC merge that waits for the writer lock while a log batch commits must run after the consumer has
    stored the batch's rows in its cache: run in between, its clearing of the cache would be undone by rows read
    before the merge, and the next batch would write stale features and buckets back."""
    now = time.time_ns() // 1000 - 3_600_000_000
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        rpc: list[threading.Thread] = []

        def merge_from_another_thread() -> None:
            if not rpc:
                thread = threading.Thread(
                    target=app.profiles.link, args=(ref("W", CUSTOMER), ref("D", ANONYMOUS), "", frozenset())
                )
                rpc.append(thread)
                thread.start()
                thread.join(timeout=1.0)  # give it the lock if the consumer has let it go

        app.core.on_commit.append(merge_from_another_thread)
        first = [event("page_view", user_id="W", at_us=now)]
        first += [event("page_view", anonymous_id="D", at_us=now + i) for i in (1, 2)]
        app.consumer.handle(first, "c1")
        rpc[0].join(timeout=30)
        assert not rpc[0].is_alive()
        app.consumer.handle([event("page_view", user_id="W", at_us=now + 5)], "c2")
        with app.core.database.connection() as conn:
            w = app.core.store.lookup_ids(conn, [(CUSTOMER, "W")])[(CUSTOMER, "W")]
            stored = app.core.store.load_persons(conn, [w])[w].features
            days = app.core.store.load_days(conn, [w], ["page_view"], 0)[w]["page_view"]
        assert stored.get("events_total") == ["i", 4]  # every page view folded into W once
        assert sum(v[0] for v in days.values()) == 4
