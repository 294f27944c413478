"""SQLite: the log consumer's bulk writes staged in memory and run as one statement each on the pipeline's thread
(``svc_profile.store._stage``): the same database as ``executemany`` on the consumer's thread, batch after batch of
varied sizes; the big writes no longer run on the consumer's thread."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest
from profile_helpers import DAY, event, profile_app, profile_settings
from test_profile_fastpath import _state

from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_profile.store import _stage
from svc_profile.store._bulk import FEW

QUOTERS = C.Condition(event_count=C.EventCount(event_type="quote_view", min_count=2, window_seconds=30 * 86_400))
KINDS = ["page_view", "page_view", "app_click", "quote_view", "fund_view", "login", "trade_filled"]


def _big_batches(seed: int) -> list[list[Any]]:
    """A batch creating 1,500 persons, then batches of 40 to 2,500 of their events (trades, views, ...) in sizes that
    change from batch to batch, so that each batch's staged tables lie elsewhere in its image than the batch
    before's."""
    rng = random.Random(seed)
    now = time.time_ns() // 1000
    out = [[event("app_start", user_id=f"U{who}", at_us=now - 30 * DAY) for who in range(1500)]]  # creates them all
    for size in (2500, 40, 1800, 700, 2500, 90, 1200):
        batch = []
        for _ in range(size):
            who, kind = rng.randrange(1500), rng.choice(KINDS)
            props: dict[str, Any] = {}
            if kind == "trade_filled":
                props = {"amount_fen": rng.randrange(1, 10**6), "product_risk_level": rng.randrange(1, 6)}
            elif kind == "fund_view":
                props = {"product_category": "fund", "fund_type": rng.choice(["bond", "equity"])}
            at = now - rng.randrange(20 * DAY)
            batch.append(event(kind, user_id=f"U{who}", session_id=f"s{who}-{rng.randrange(3)}", at_us=at, **props))
        out.append(batch)
    return out


def _run(
    tmp_path: Path, batches: list[list[Any]], staged: bool, monkeypatch: pytest.MonkeyPatch, seen: list[tuple[int, int]]
) -> dict:
    with profile_app(profile_settings(tmp_path / f"s{staged}", None, consumer_stage_writes=staged)) as app:
        app.definitions.create_segment(pb.Segment(segment_id="quoters", condition=QUOTERS))
        dialect = app.core.database.engine.dialect
        original = dialect.do_executemany

        batch_number = 0

        def do_executemany(cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
            seen.append((batch_number, len(parameters)))
            original(cursor, statement, parameters, context)

        monkeypatch.setattr(dialect, "do_executemany", do_executemany)
        for batch_number, batch in enumerate(batches):
            app.consumer.submit(batch, f"c{batch_number}")
        app.consumer.drain()
        assert app.consumer.load_cursor() == f"c{len(batches) - 1}"
        return _state(app)


def test_staged_writes_equal_executemany_batch_after_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Features, buckets, retained events, tags, memberships and outbox equal with and without staging, over batches
    whose sizes move each staged table's pages (a statement prepared for one image must not read the next one
    through its places). With staging, once the persons are known (in the consumer's cache: a batch reads nothing,
    so its buffered writes all reach its end), no ``executemany`` of more than a few rows runs at all; with
    ``consumer_stage_writes = false`` they are ``executemany`` calls as before."""
    plain: list[tuple[int, int]] = []
    staged: list[tuple[int, int]] = []
    batches = _big_batches(11)
    expected = _run(tmp_path, batches, False, monkeypatch, plain)
    got = _run(tmp_path, batches, True, monkeypatch, staged)
    assert got == expected
    assert expected["events"] and expected["tags"] and expected["members"] and expected["outbox"]
    assert any(n > FEW for i, n in plain if i > 0)  # without staging the big writes are executemany calls
    assert not [(i, n) for i, n in staged if i > 0 and n > FEW]


def test_a_read_in_mid_batch_runs_the_buffered_writes_as_they_are(tmp_path: Path) -> None:
    """Writes buffered before a read of the same batch run then, on the consumer's thread, as ``executemany``
    (nothing staged yet); what the batch writes after it is staged. The read sees the writes before it."""
    with profile_app(profile_settings(tmp_path, None, finance_pack=False)) as app:
        store, t = app.core.store, app.core.store.t
        conn = app.core.pipeline.begin()
        rows = [(f"p{i}", "login", 100 + i % 3, 1, 0) for i in range(50)]
        store.add_days(conn, {(p, e, d): [n, a] for p, e, d, n, a in rows})
        assert conn.execute(t["day"].select()).all() != []  # a read: the buffered upsert ran before it
        store.add_days(conn, {(p, e, d): [n, a] for p, e, d, n, a in rows})
        conn.commit_later()
        app.core.pipeline.check()
        with app.core.database.connection() as read:
            assert sorted((r.profile_id, r.day, r.n) for r in read.execute(t["day"].select())) == sorted(
                (p, d, 2) for p, _, d, _, _ in rows
            )


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "INSERT INTO t (a, b) VALUES (?, ?)",
            "INSERT INTO t (a, b) SELECT c1, c2 FROM S WHERE true ORDER BY rowid",
        ),
        (
            "INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT (a) DO UPDATE SET b = (t.b + excluded.b)",
            "INSERT INTO t (a, b) SELECT c1, c2 FROM S WHERE true ORDER BY rowid ON CONFLICT (a) DO UPDATE SET b = "
            "(t.b + excluded.b)",
        ),
        (
            "UPDATE t SET b=?, c=? WHERE t.a = ?",
            "UPDATE t SET b=__s.c1, c=__s.c2 FROM S AS __s WHERE t.a = __s.c3",
        ),
        (
            "DELETE FROM t WHERE t.a = ? AND t.b = ?",
            "DELETE FROM t WHERE (t.a, t.b) IN (SELECT c1, c2 FROM S)",
        ),
        ("INSERT INTO t (a, b) VALUES (?, ?) RETURNING t.id", None),
        ("UPDATE t SET b=? WHERE t.a > ?", None),
        ("DELETE FROM t WHERE t.a IN (?, ?)", None),
    ],
)
def test_forms(sql: str, expected: str | None) -> None:
    form = _stage.SqliteForm.of(sql, sql.count("?"))
    assert (form.statement("S") if form else None) == expected


def test_an_update_whose_rows_name_one_target_twice_stays_executemany() -> None:
    form = _stage.SqliteForm.of("UPDATE t SET b=? WHERE t.a = ?", 2)
    assert form is not None and form.fits([(1, "x"), (2, "y")]) and not form.fits([(1, "x"), (2, "x")])


def test_a_read_runs_only_the_buffered_writes_it_can_see(tmp_path: Path) -> None:
    """A read of no rows neither opens the batch's connection nor waits for the commit before; a read of other tables
    leaves a batch's buffered writes for its end (to be staged); a read of retained events runs the buffered events'
    insert only when one of its rows falls in the range read; a write whose table is not known runs before any
    read."""
    with profile_app(profile_settings(tmp_path, None, finance_pack=False)) as app:
        store = app.core.store
        conn = app.core.pipeline.begin()
        assert store.load_persons(conn, []) == {} and conn._conn is None  # no rows read: not opened, nothing awaited
        store.add_days(conn, {(f"p{i}", "login", 100): [1, 0] for i in range(20)})
        events = [(f"e{i}", "p1", 1_000 + i, "login", "", "", "{}", None, None, None, None) for i in range(20)]
        store.insert_events(conn, events)
        store.event_ids_of(conn, ["p1"])  # identities: neither write matters to it
        assert len(conn._buffer) == 2
        assert store.load_events(conn, ["p1"], ["login"], 5_000) == {}  # after every buffered event
        assert store.load_events(conn, ["p1"], ["quote_view"], 0) == {}  # another type
        assert len(conn._buffer) == 2
        assert len(store.load_events(conn, ["p1"], ["login"], 1_010, 1_012)["p1"]) == 2  # two of them: both ran
        assert conn._buffer == []
        store.add_days(conn, {("p1", "login", 101): [1, 0]})
        conn.defer(lambda c: None)  # a write of any table
        store.tag_rows(conn, ["p1"])
        assert conn._buffer == []
        conn.commit_later()
        app.core.pipeline.check()


def _through_stage(sql: str, rows: list[tuple[Any, ...]], before: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``sql`` run over ``rows`` through a ``Stage`` image and the staged statement, on a table holding ``before``;
    the table's rows afterwards, each value with its SQLite type."""
    import sqlalchemy as sa

    with sa.create_engine("sqlite://").begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (k INTEGER PRIMARY KEY, a, b, c, d, e)")
        if before:
            conn.exec_driver_sql("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", before)
        form = _stage.SqliteForm.of(sql, sql.count("?"))
        assert form is not None
        stage = _stage.Stage()
        table, constants, values = stage.add(rows, form.width)
        _stage.load(conn, stage.image())
        conn.exec_driver_sql(form.statement(table, constants), tuple(values))
        typed = ", ".join(f"{c}, typeof({c})" for c in "kabcde")
        return [tuple(r) for r in conn.exec_driver_sql(f"SELECT {typed} FROM t ORDER BY k")]


def _typed(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    kinds = {type(None): "null", int: "integer", bool: "integer", float: "real", str: "text"}
    return [tuple(x for v in row for x in (v, kinds[type(v)])) for row in rows]


@pytest.mark.parametrize("size", [1, 2, 63, 64, 65, 130, 1000])
def test_staged_rows_keep_every_value_and_its_type(size: int) -> None:
    """Staged rows go in multi-row statements (chunks and a rest) and leave out the columns of one value (bound once
    as a parameter): each row gets its own value and type, also where values compare equal but differ in type
    (1, 1.0, True), where only some rows hold None, and where every row holds None or one value."""
    rows = [
        (k, None, 1.0 if k == size // 2 else 1, True if k == size - 1 and size > 1 else 7, None if k % 3 else "x", "s")
        for k in range(size)
    ]
    insert = "INSERT INTO t (k, a, b, c, d, e) VALUES (?, ?, ?, ?, ?, ?)"
    assert _through_stage(insert, rows, []) == _typed(rows)
    update = "UPDATE t SET a=?, b=?, c=?, d=?, e=? WHERE t.k = ?"
    old = [(k, "old", "old", "old", "old", "old") for k in range(size + 2)]
    changed = [(a, b, c, d, e, k) for k, a, b, c, d, e in rows]
    assert _through_stage(update, changed, old) == _typed(rows + old[size:])


def test_a_table_of_constant_columns_only_keeps_its_first() -> None:
    rows = [("x", "y")] * 3
    _, constants, values = _stage.Stage().add(rows, 2)
    assert constants == [2] and values == ["y"]  # a table needs a column: the first one stays staged
    before = [(k, "x", "y" if k < 3 else "z", None, None, None) for k in range(4)]
    assert _through_stage("DELETE FROM t WHERE t.a = ? AND t.b = ?", rows, before) == _typed(before[3:])


def test_an_ordered_insert_sorts_in_its_statement_but_by_its_one_value_columns() -> None:
    form = _stage.SqliteForm.of("INSERT INTO t (a, b, c, n) VALUES (?, ?, ?, ?) ON CONFLICT (a, b, c) DO NOTHING", 4)
    assert form is not None
    assert form.statement("S", [3], [1, 2, 3]) == (
        "INSERT INTO t (a, b, c, n) SELECT c1, c2, ?1, c4 FROM S WHERE true ORDER BY c1, c2 ON CONFLICT (a, b, c) "
        "DO NOTHING"
    )
    assert form.statement("S", [1, 2, 3], [1, 2, 3]).endswith(
        "FROM S WHERE true ORDER BY rowid ON CONFLICT (a, b, c) DO NOTHING"
    )


def test_day_buckets_are_written_in_key_order_staged_or_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``add_days`` hands its rows over unsorted: the staged statement sorts them (``ORDER BY`` the key), and where
    they run as ``executemany`` (a read in mid-batch) they are sorted first, as before."""
    with profile_app(profile_settings(tmp_path, None, finance_pack=False)) as app:
        store, t = app.core.store, app.core.store.t
        dialect = app.core.database.engine.dialect
        seen: list[list[Any]] = []
        original = dialect.do_executemany

        def do_executemany(cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
            seen.append(list(parameters))
            original(cursor, statement, parameters, context)

        monkeypatch.setattr(dialect, "do_executemany", do_executemany)
        deltas = {(f"p{i % 7}", ("login", "quote_view")[i % 2], 100 - i % 5): [1, i] for i in range(60, 0, -1)}
        expected = sorted((*k, *v) for k, v in deltas.items())
        conn = app.core.pipeline.begin()
        store.add_days(conn, deltas)
        conn.execute(t["day"].select())  # a read: the buffered upsert runs now, as executemany
        assert [tuple(r) for r in seen[-1]] == expected
        staged = {(p, e, d + 50): v for (p, e, d), v in deltas.items()}
        store.add_days(conn, staged)
        staged_text: list[str] = []
        real_load = _stage.load
        monkeypatch.setattr(_stage, "load", lambda c, image: (staged_text.append("loaded"), real_load(c, image))[1])
        conn.commit_later()
        app.core.pipeline.check()
        assert staged_text == ["loaded"] and len(seen) == 1  # the second write was staged, not executemany
        with app.core.database.connection() as read:
            rows = sorted(tuple(r) for r in read.execute(t["day"].select()))
        assert rows == sorted([*expected, *((p, e, d + 50, n, a) for p, e, d, n, a in expected)])
