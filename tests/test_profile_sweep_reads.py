"""The reads that evaluation (the time sweep, the log consumer, a recompute) makes through its own paths return what
the generic statements return: person rows read straight from the SQLite driver with their JSON decoded, and the ids
a ``$segment_*`` event names, read by person in chunks however many persons change. On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from profile_helpers import ANONYMOUS, CUSTOMER, profile_app, profile_settings

COLUMNS = ["attributes", "sealed_attributes", "lifecycle_stage", "lifecycle_since_us", "created_us", "features"]


def test_person_rows_for_evaluation_equal_the_generic_read(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        store = app.core.store
        pids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(1, 1203)]
        rows = [
            {
                "profile_id": pid,
                "created_us": 1_000 + i,
                "updated_us": 2_000 + i,
                "attributes": {"risk_rating": ["s", f"C{i % 5}"], "name": ["s", '低风险 "q"'], "n": ["i", i]},
                "sealed_attributes": b"\x00sealed" if i % 7 == 0 else None,
                "features": {"events_total": ["i", i], "views.fund.bond": ["i", 2], "_last_session": f"s{i}"},
                "lifecycle_stage": ("ACTIVE", "NEW", "AT_RISK")[i % 3],
                "lifecycle_since_us": 3_000 + i,
            }
            for i, pid in enumerate(pids)
        ]
        with app.core.writing() as conn:
            store.insert_persons(conn, rows)
        with app.core.database.connection() as conn:
            chosen = store.load_persons(conn, [*pids[::-1], "missing"], COLUMNS)
            generic = store.load_persons(conn, [*pids[::-1], "missing"])
    assert sorted(chosen) == sorted(generic) and len(chosen) == len(pids)
    for pid, row in chosen.items():
        assert row.profile_id == pid
        assert tuple(getattr(row, c) for c in COLUMNS) == tuple(getattr(generic[pid], c) for c in COLUMNS)
    assert chosen[pids[7]].sealed_attributes == b"\x00sealed" and chosen[pids[7]].features["events_total"] == ["i", 7]


def test_segment_events_name_the_first_linked_ids_however_many_persons_change(
    tmp_path: Path, database_url: str
) -> None:
    """``event_ids_of`` for more persons than the size from which it scanned every identity, and for a few: each
    person's first linked customer id and first linked anonymous id ("" when none), persons without either left out."""
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        store = app.core.store
        pids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(1, 3003)]
        links, expected = [], {}
        for i, pid in enumerate(pids):
            if i % 5 == 4:
                continue  # no customer or anonymous id
            customer = f"C{i:05d}" if i % 2 else ""
            if customer:
                links.append((customer, CUSTOMER, pid, 500 + i))
            anonymous = ""
            for k in range(i % 4):  # linked later first: the earliest (k = 0) wins
                links.append((f"anon-{i}-{k}", ANONYMOUS, pid, 10_000 - k * 100))
                anonymous = f"anon-{i}-{k}"
            if customer or anonymous:
                expected[pid] = (customer, anonymous)
            links.append((f"dev-{i}", 7, pid, 1))  # another type: never named
        rows = [
            {"id_value": v, "id_type": t, "profile_id": p, "linked_by": "event", "linked_us": at, "source_ref": ""}
            for v, t, p, at in links
        ]
        with app.core.writing() as conn:
            store.insert_links(conn, rows)
        with app.core.database.connection() as conn:
            many = store.event_ids_of(conn, pids[::-1] + pids[:10])
            few = store.event_ids_of(conn, pids[:40])
    assert many == expected and len(many) > 1_500
    assert few == {p: v for p, v in expected.items() if p in pids[:40]}


def test_persons_whose_last_active_day_left_a_window(tmp_path: Path, database_url: str) -> None:
    """``_last_active_on_edge``: an active bucket with a count on an edge and no later active one with a count,
    whichever active type is later (the edge's own type is asked first on SQLite: the same persons)."""
    from svc_profile import timesweep

    with profile_app(profile_settings(tmp_path, database_url)) as app:
        first, last = 20_000, 20_001
        edge = last - int(app.core.engine.lifecycle_params["active_days"])
        days = {
            ("p1", "login", edge): [1, 0],  # nothing later: selected
            ("p2", "login", edge): [1, 0],
            ("p2", "login", edge + 3): [2, 0],  # a later bucket of its type
            ("p3", "login", edge): [1, 0],
            ("p3", "app_start", edge + 1): [1, 0],  # a later bucket of another active type
            ("p4", "login", edge): [1, 0],
            ("p4", "login", edge + 2): [0, 5],  # later, but no count: selected
            ("p5", "login", edge): [0, 0],  # no count on the edge
            ("p6", "page_view", edge): [1, 0],  # not an active type
            ("p7", "login", edge): [1, 0],
            ("p7", "page_view", edge + 1): [1, 0],  # later, not active: selected
            ("p8", "login", edge): [1, 0],
            ("p8", "app_start", edge): [2, 0],  # two types on the edge: selected once
            ("p9", "login", edge - 1): [1, 0],  # before the edge
        }
        with app.core.writing() as conn:
            app.core.store.add_days(conn, days)
        with app.core.database.connection() as conn:
            found = timesweep._last_active_on_edge(app.segments, conn, first, last)
    assert found == ["p1", "p4", "p7", "p8"]


def test_documents_are_decoded_as_json_loads_decodes_them() -> None:
    import json

    import pytest

    from svc_profile.store._raw import loads

    texts = [
        '{"a":["s","低风险 \\"q\\""],"b":["i",12345678901234567890],"c":["d",2.5e-3],"d":["b",true],"e":null}',
        '{"x":[]}',
        "[]",
        '"text"',
        "12",
        ' {"a": 1} ',
        '{"a":1} ',
        "NaN",
        '{"a":{"b":[1,2,{"c":"d"}]}}',
    ]
    for text in texts:
        assert repr(loads(text)) == repr(json.loads(text))  # NaN: not equal to itself
    for bad in ["", "{", '{"a":1}x', "[1,]", '{"a" 1}']:
        with pytest.raises(json.JSONDecodeError):
            loads(bad)
    assert loads(b'{"a":1}') == {"a": 1}


def test_the_driver_reads_fail_as_sqlalchemy_errors(tmp_path: Path) -> None:
    """A driver error of the raw reads (``database is locked``, a missing table) comes out as SQLAlchemy's, which the
    service maps to UNAVAILABLE like its other statements; a bare sqlite3 error would have been INTERNAL."""
    import pytest
    import sqlalchemy as sa

    from svc_profile.store import _raw

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'raw.db'}")
    try:
        with engine.connect() as conn:
            with pytest.raises(sa.exc.OperationalError, match="no such table"):
                _raw.days_sqlite(conn, "profile_nothing", ["p1"], ["login"], 0)
            with pytest.raises(sa.exc.OperationalError, match="no such table"):
                _raw.persons_sqlite(conn, "profile_nothing", ["p1"], ["profile_id"], frozenset())
            with pytest.raises(sa.exc.OperationalError, match="no such table"):
                list(_raw.rows_by_person(conn, "SELECT profile_id FROM profile_nothing WHERE", (), ["p1"]))
    finally:
        engine.dispose()
