"""The consumer's fast path equals the plain one: features folded in cached documents and written as text,
retained events and day buckets as tuples, lean tag reads, the collector paused per batch. On SQLite and
PostgreSQL."""

from __future__ import annotations

import gc
import random
import time
from pathlib import Path
from typing import Any

import pytest
from profile_helpers import ANONYMOUS, CUSTOMER, DAY, event, profile_app, profile_settings, second_database
from sqlalchemy import select

from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_profile.hot import HotPersons, PersonRow, encode_doc
from svc_profile.identity import person_row

MIX = ["page_view", "app_click", "quote_view", "fund_view", "login", "trade_filled", "deposit_attempt"]


def _stream(seed: int, persons: int, n: int) -> list[list[Any]]:
    """Batches of varied events: known and new persons, devices later logged in (merges), trades with amounts
    and risk levels, views with categories, repeated sessions, events out of time order."""
    rng = random.Random(seed)
    now = time.time_ns() // 1000
    out, batch = [], []
    for i in range(n):
        kind = rng.choice(MIX)
        who = rng.randrange(persons)
        props: dict[str, Any] = {}
        if kind == "trade_filled":
            props = {"amount_fen": rng.randrange(1, 10**7), "product_risk_level": rng.randrange(1, 6)}
        elif kind in ("fund_view", "quote_view"):
            props = {"product_category": rng.choice(["fund", "stock"]), "fund_type": rng.choice(["bond", "equity"])}
            if rng.random() < 0.3:
                props["product_risk_level"] = f"R{rng.randrange(1, 6)}"
        ids: dict[str, Any] = {"user_id": f"U{who}"}
        if rng.random() < 0.15:
            ids = {"anonymous_id": f"D{who}"}  # an anonymous device, merged when its owner logs in on it
        elif kind == "login":
            ids["anonymous_id"] = f"D{who}"
        at = now - rng.randrange(40 * DAY)
        batch.append(event(kind, session_id=f"s{who}-{rng.randrange(3)}", at_us=at, screen=kind, **ids, **props))
        if len(batch) == rng.choice([7, 50, 120]) or i == n - 1:
            out.append(batch)
            batch = []
    return out


def _state(app: Any) -> dict[str, Any]:
    """Everything the consumer writes, each person named by its ids (profile ids are random per run)."""
    t = app.core.store.t
    with app.core.database.connection() as conn:
        ids: dict[str, list[str]] = {}
        for r in conn.execute(select(t["identity"])):
            if r.id_type in (CUSTOMER, ANONYMOUS):
                ids.setdefault(r.profile_id, []).append(r.id_value)
        name = {p: ",".join(sorted(v)) for p, v in ids.items()}
        persons = {name[r.profile_id]: (r.features, r.lifecycle_stage) for r in conn.execute(select(t["person"]))}
        days = sorted(
            (name[r.profile_id], r.event_type, r.day, r.n, r.amount_fen) for r in conn.execute(select(t["day"]))
        )
        events = sorted((r.event_id, name[r.profile_id], str(r.properties)) for r in conn.execute(select(t["event"])))
        tags = sorted((name[r.profile_id], r.name, str(r.tag_value), r.source) for r in conn.execute(select(t["tag"])))
        members = sorted(
            (name[r.profile_id], r.segment_id, r.is_member, r.seq) for r in conn.execute(select(t["member"]))
        )
        outbox = len(conn.execute(select(t["outbox"])).all())
    return {"persons": persons, "days": days, "events": events, "tags": tags, "members": members, "outbox": outbox}


@pytest.mark.parametrize("seed", [1, 2])
def test_cached_fast_path_equals_reading_every_person(tmp_path: Path, database_url: str, seed: int) -> None:
    """The same stream through a consumer keeping hot persons and one reading every person from the database
    (hot_persons=0), one batch replayed after an injected crash: identical features, buckets, retained events,
    tags, memberships and outbox."""
    batches = _stream(seed, persons=60, n=900)
    states = []
    cond = C.Condition(event_count=C.EventCount(event_type="quote_view", min_count=2, window_seconds=30 * 86_400))
    with second_database(tmp_path, database_url) as second:
        for hot, url in ((0, database_url), (100_000, second)):
            with profile_app(profile_settings(tmp_path / f"h{hot}", url, hot_persons=hot)) as app:
                app.definitions.create_segment(pb.Segment(segment_id="quoters", condition=cond))
                for i, batch in enumerate(batches):
                    if i == len(batches) // 2:
                        app.consumer.fail_after_features = True
                        with pytest.raises(RuntimeError):
                            app.consumer.handle(batch, f"c{i}")
                        app.consumer.fail_after_features = False
                    app.consumer.handle(batch, f"c{i}")
                if hot:
                    assert app.core.hot.hits > 0
                states.append(_state(app))
    assert states[0] == states[1]
    assert states[0]["outbox"] > 0 and states[0]["tags"] and states[0]["persons"]


def test_features_text_and_event_tuples_round_trip(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        store, t = app.core.store, app.core.store.t
        pids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(1, 4)]
        docs = [
            {"events_total": ["i", i], "views.基金": ["i", 2], "_last_session": "s'1\"", "t": ["t", 10**15]}
            for i in range(3)
        ]
        with app.core.writing() as conn:
            store.insert_persons(conn, [person_row(p, 1) for p in pids])
            store.write_features(
                conn, [(p, encode_doc(d), 7 + i) for i, (p, d) in enumerate(zip(pids, docs, strict=True))]
            )
            rows = [
                (f"e{i}", pids[i % 3], 100 + i, "quote_view", "s", "scr", encode_doc({"k": ["s", f"值{i}"]}))
                for i in range(5)
            ]
            store.insert_events(conn, rows)
            store.insert_events(conn, [(*rows[0][:6], encode_doc({"k": ["s", "again"]}))])  # kept: stored before
        with app.core.database.connection() as conn:
            loaded = store.load_persons(conn, pids)
            assert [(loaded[p].features, loaded[p].updated_us) for p in pids] == [
                (d, 7 + i) for i, d in enumerate(docs)
            ]
            stored = {r.event_id: (r.profile_id, r.occurred_us, r.properties) for r in conn.execute(select(t["event"]))}
            assert stored == {f"e{i}": (pids[i % 3], 100 + i, {"k": ["s", f"值{i}"]}) for i in range(5)}


def test_lean_tag_rows_match_load_tags(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        store = app.core.store
        pids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(1, 5)]
        values = [["b", True], ["i", 30], ["s", "active"], ["l", ["a", "b"]], ["m", 1200], ["d", 0.5], ["i", 30]]
        rows = [
            {
                "profile_id": pids[i % 4],
                "name": f"t{i}",
                "tag_value": v,
                "source": ["RULE", "MODEL", "MANUAL"][i % 3],
                "writer": "w",
                "writer_version": str(i),
                "written_us": i,
                "expires_us": None if i % 2 else 10**6,
                "trace_id": "",
            }
            for i, v in enumerate(values)
        ]
        with app.core.writing() as conn:
            store.insert_persons(conn, [person_row(p, 1) for p in pids])
            store.upsert_tags(conn, rows)
        with app.core.database.connection() as conn:
            full = store.load_tags(conn, pids)
            lean = store.tag_rows(conn, pids)
        assert {p: set(v) for p, v in lean.items()} == {p: set(v) for p, v in full.items()}
        for pid, by_name in full.items():
            for name, row in by_name.items():
                mine = lean[pid][name]
                assert (mine.tag_value, mine.source, mine.writer_version, mine.expires_us) == (
                    row.tag_value,
                    row.source,
                    row.writer_version,
                    row.expires_us,
                )


def test_person_rows_cache_round_trip_and_lazy_attributes() -> None:
    hot = HotPersons(10)
    row = PersonRow("p1", 1, 2, None, b"x", {"events_total": ["i", 3]}, "ACTIVE", 5, attributes={"a": ["s", "é"]})
    hot.store({(2, "C1"): "p1"}, {"p1": "C1"}, {"p1": row})
    found, missing = hot.person_rows(["p1", "p2"])
    assert missing == ["p2"] and hot.customers(["p1"]) == ({"p1": "C1"}, [])
    again = found["p1"]
    assert again._attributes is None  # decoded only when read
    assert (again.attributes, again.features, again.sealed_attributes, again.lifecycle_stage) == (
        {"a": ["s", "é"]},
        {"events_total": ["i", 3]},
        b"x",
        "ACTIVE",
    )
    # The features are the cache's own dict (not decoded from a text per batch): a batch folds into it in place,
    # and one that fails clears the cache (test_profile_pipeline).
    found["p1"].features["events_total"] = ("i", 4)
    assert hot.person_rows(["p1"])[0]["p1"].features == {"events_total": ("i", 4)}


def test_collector_paused_during_a_batch_and_resumed_after_a_failure(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, None, finance_pack=False)) as app:
        seen = []
        original = app.consumer.updater.apply

        def spy(*args: Any) -> Any:
            seen.append(gc.isenabled())
            return original(*args)

        app.consumer.updater.apply = spy  # type: ignore[method-assign]
        assert gc.isenabled()
        app.consumer.handle([event("login", user_id="U1")], "c1")
        app.consumer.fail_after_features = True
        with pytest.raises(RuntimeError):
            app.consumer.handle([event("login", user_id="U1")], "c2")
        assert seen == [False, False] and gc.isenabled()
        gc.disable()  # a process that turned the collector off keeps it off
        try:
            app.consumer.fail_after_features = False
            app.consumer.handle([event("login", user_id="U1")], "c2")
            assert not gc.isenabled()
        finally:
            gc.enable()


@pytest.mark.parametrize("dialect_name", ["sqlite", "postgresql", "dm", "opengauss"])
def test_consumer_statements_compile_for_every_dialect(dialect_name: str) -> None:
    from test_profile_upsert import make_dialect

    from svc_profile.store import tables
    from svc_profile.store._sql import ProfileStore

    store = ProfileStore(None, tables)  # type: ignore[arg-type]  # compile only: no database
    dialect = make_dialect(dialect_name)
    for stmt in (store.features_statement(), store.tag_rows_statement()):
        sql = str(stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": False}))
        assert "profile_id" in sql
