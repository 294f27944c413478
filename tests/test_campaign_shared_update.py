"""PostgreSQL: participant changes that share their new values (a batch of timers moves its customers alike) go in one
``UPDATE ... WHERE instance_id = ANY (...)`` per set of values (svc_campaign.store._bulk: ``DriverWrite._update``), the
others as JSON rows; every database reads back the same rows, and a value the column refuses is still refused."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from svc_campaign.store import SCHEMA, _bulk, tables
from svc_campaign.store._bulk import DriverUpdates, DriverWrite

T0 = dt.datetime(2026, 12, 6, 6, 0, tzinfo=dt.UTC)
COLUMNS = ("current_node", "exit_reason", "last_send_at", "status", "updated_at", "waiting_for")


def _participant(n: int) -> dict[str, Any]:
    return {
        "instance_id": f"p{n:03d}",
        "journey_id": "j1",
        "version_no": 1,
        "user_id": f"c{n}",
        "status": "waiting",
        "current_node": "wait",
        "entry_event": {"event_id": f"e{n}"},
        "waiting_for": None,
        "next_action_at": T0,
        "entered_at": T0 - dt.timedelta(hours=1),
        "updated_at": T0 - dt.timedelta(hours=1),
        "last_send_at": None,
        "converted_at": None,
        "exit_reason": "",
        "exited_at": None,
        "final_send_node": None,
        "final_send_outcome": None,
    }


def _changes(n: int) -> dict[str, Any]:
    """30 customers exit alike (one shared set), 10 more alike (another), 3 wait for their own event (JSON)."""
    if n < 30:
        return {"status": "done", "current_node": "end", "exit_reason": "done", "waiting_for": None}
    if n < 40:
        return {"status": "done", "current_node": "end", "exit_reason": "suppressed", "waiting_for": None}
    return {"status": "waiting", "current_node": "wait2", "exit_reason": "", "waiting_for": {"begun_by": f"e{n}"}}


@pytest.fixture
def statements(database_url: str) -> Iterator[tuple[sa.Engine, list[str]]]:
    engine = sa.create_engine(database_url)
    SCHEMA.metadata.create_all(engine)
    seen: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _record(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("UPDATE"):
            seen.append(" ".join(statement.split()))

    yield engine, seen
    engine.dispose()


def test_shared_changes_go_in_one_statement_each_and_read_back_as_written(statements) -> None:
    engine, seen = statements
    instance = tables["instance"]
    participants = [_participant(n) for n in range(43)]
    with engine.begin() as conn:
        DriverWrite(instance, [c.key for c in instance.c]).executemany(conn, participants)
    rows = [
        {"instance_id": p["instance_id"], **_changes(n), "last_send_at": T0, "updated_at": T0}
        for n, p in enumerate(participants)
    ]
    with engine.begin() as conn:
        DriverUpdates(instance, "instance_id").write(COLUMNS).executemany(conn, rows)
    with engine.connect() as conn:
        read = {r.instance_id: r._asdict() for r in conn.execute(sa.select(instance))}
    expected = {
        p["instance_id"]: {**p, **_changes(n), "last_send_at": T0, "updated_at": T0} for n, p in enumerate(participants)
    }
    assert read == expected
    if engine.dialect.name == "postgresql":
        shared = [s for s in seen if "= ANY" in s]
        assert len(shared) == 2  # the 30 and the 10 customers that share their values
        assert len([s for s in seen if "json_populate_recordset" in s]) == 1  # the 3 that do not
    else:
        assert not any("= ANY" in s for s in seen)


def test_the_number_of_shared_statements_is_bounded(database_url_postgresql, monkeypatch) -> None:
    """More sets of shared values than SHARED_UPDATES: the smaller sets go with the JSON rows."""
    monkeypatch.setattr(_bulk, "SHARED_UPDATES", 1)
    engine = sa.create_engine(database_url_postgresql)
    SCHEMA.metadata.create_all(engine)
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    instance = tables["instance"]
    participants = [_participant(n) for n in range(40)]
    try:
        with engine.begin() as conn:
            DriverWrite(instance, [c.key for c in instance.c]).executemany(conn, participants)
            seen.clear()
            rows = [{"instance_id": p["instance_id"], **_changes(n)} for n, p in enumerate(participants)]
            DriverUpdates(instance, "instance_id").write(tuple(sorted(_changes(0)))).executemany(conn, rows)
        assert len([s for s in seen if "= ANY" in s]) == 1 and len([s for s in seen if "json_populate" in s]) == 1
        with engine.connect() as conn:
            reasons = dict(conn.execute(sa.select(instance.c.instance_id, instance.c.exit_reason)).all())
        assert reasons == {p["instance_id"]: _changes(n)["exit_reason"] for n, p in enumerate(participants)}
    finally:
        engine.dispose()


def test_a_shared_value_too_long_for_its_column_is_refused(database_url_postgresql) -> None:
    engine = sa.create_engine(database_url_postgresql)
    SCHEMA.metadata.create_all(engine)
    instance = tables["instance"]
    try:
        with engine.begin() as conn:
            DriverWrite(instance, [c.key for c in instance.c]).executemany(conn, [_participant(n) for n in range(9)])
        with pytest.raises(sa.exc.DBAPIError, match="too long"), engine.begin() as conn:
            DriverUpdates(instance, "instance_id").write(("status",)).executemany(
                conn, [{"instance_id": f"p{n:03d}", "status": "x" * 17} for n in range(9)]
            )
        with engine.connect() as conn:
            assert set(conn.execute(sa.select(instance.c.status)).scalars()) == {"waiting"}
    finally:
        engine.dispose()
