"""A batch's rows on the driver (svc_campaign.store._bulk): the statements compile for every supported database,
values go in and come back as SQLAlchemy's own processing would have them (zones, JSON, booleans, NULLs), a naive
time is still refused, and the time-ordered ids keep their order and stay the same for the same parts."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

import pytest
import sqlalchemy as sa
from test_ddl_snapshots import make_dialect

from svc_campaign import policy
from svc_campaign.engine import PARTICIPANT_COLUMNS, TIMER_COLUMNS, due_timers
from svc_campaign.outbox import ordered_id, stable_id
from svc_campaign.store import SCHEMA, _bulk, tables
from svc_campaign.store._bulk import DriverRows, DriverUpdates, DriverWrite

T0 = dt.datetime(2026, 12, 4, 9, 30, tzinfo=dt.UTC)
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def _participant(instance_id: str, **changes: object) -> dict[str, object]:
    row = {
        "instance_id": instance_id,
        "journey_id": "j1",
        "version_no": 3,
        "user_id": "c1",
        "status": "waiting",
        "current_node": "wait",
        "entry_event": {"event": {"amount": 12.5, "名": "值"}, "event_id": "e1"},
        "waiting_for": None,
        "next_action_at": T0 + dt.timedelta(hours=1),
        "entered_at": T0.astimezone(SHANGHAI),  # another zone: stored and read back as the same instant in UTC
        "updated_at": T0,
        "last_send_at": None,
        "converted_at": None,
        "exit_reason": "",
        "exited_at": None,
        "final_send_node": None,
        "final_send_outcome": None,
    }
    return {**row, **changes}


@pytest.mark.parametrize("dialect_name", ["sqlite", "postgresql", "opengauss", "dm"])
def test_batch_statements_compile_per_dialect(dialect_name: str) -> None:
    dialect = make_dialect(dialect_name)
    visit = [c.key for c in tables["visit"].c if c.key != "visit_id"]
    insert = DriverWrite(tables["visit"], visit).compiled(dialect)
    assert "RETURNING" not in insert.sql.upper()  # the database numbers visits; nothing is read back
    assert [n.removeprefix("v_") for n in insert.names] == visit
    update = DriverWrite(tables["instance"], ["status", "updated_at"], key="instance_id").compiled(dialect)
    assert update.names == ["v_status", "v_updated_at", "k_key"]
    assert all(convert is not None for convert in update.converters[1:2])  # the time goes through UtcDateTime
    sql, binds, columns, positional = DriverRows(lambda d: due_timers(tables, d)).compiled(dialect)
    flat = " ".join(sql.split())
    assert [c[0] for c in columns] == [*TIMER_COLUMNS, *(f"p_{c}" for c in PARTICIPANT_COLUMNS)]
    assert {b[0] for b in binds} >= {"now", "limit"}
    assert "LEFT OUTER JOIN campaign_participant" in flat
    expected = {
        "sqlite": "LIMIT ? OFFSET ?",
        "postgresql": "FOR UPDATE OF campaign_timer SKIP LOCKED",
        "opengauss": "LIMIT %(limit)s",
        "dm": "FETCH FIRST :limit ROWS ONLY",
    }[dialect_name]
    assert expected in flat
    assert positional == (dialect_name == "sqlite")


def test_unknown_columns_are_refused() -> None:
    with pytest.raises(ValueError, match="no column 'nope'"):
        DriverWrite(tables["visit"], ["instance_id", "nope"])


@pytest.mark.parametrize("on_driver", [True, False], ids=["driver", "core"])
def test_rows_written_on_the_driver_read_back_as_written(tmp_path, database_url, on_driver, monkeypatch) -> None:
    if not on_driver:  # what openGauss and Dameng run: SQLAlchemy's executemany of the same statements
        monkeypatch.setattr(_bulk, "DRIVER_DIALECTS", ())
    engine = sa.create_engine(database_url)
    SCHEMA.metadata.create_all(engine)
    instance = tables["instance"]
    try:
        with engine.begin() as conn:
            DriverWrite(instance, [c.key for c in instance.c]).executemany(
                conn, [_participant("p1"), _participant("p2", user_id="c2", entered_at=T0 - dt.timedelta(days=1))]
            )
            updates = DriverUpdates(instance, "instance_id")
            columns = ("exit_reason", "status", "updated_at")
            rows = [
                {"instance_id": "p2", "status": "done", "exit_reason": "done", "updated_at": T0.astimezone(SHANGHAI)}
            ]
            updates.write(columns).executemany(conn, rows)
            assert updates.write(columns) is updates.write(columns)  # compiled once per set of columns
        with engine.connect() as conn:
            read = {r.instance_id: r._asdict() for r in conn.execute(sa.select(instance))}
        assert read["p1"] == {**_participant("p1"), "entered_at": T0}
        assert read["p2"] == {
            **_participant("p2", user_id="c2", entered_at=T0 - dt.timedelta(days=1)),
            "status": "done",
            "exit_reason": "done",
        }
        assert all(v.tzinfo == dt.UTC for r in read.values() for v in r.values() if isinstance(v, dt.datetime))
        # The message row's boolean, and the due-timer read with its participant's JSON and times.
        message = tables["message"]
        row = {c.key: None for c in message.c} | {
            "message_id": "m1",
            "user_id": "c1",
            "channel": 3,
            "template_id": "t1",
            "template_version": 1,
            "status": "QUEUED",
            "is_marketing": False,
            "priority": 0,
            "attempts": 0,
            "created_at": T0,
        }
        row |= {k: "" for k, v in row.items() if v is None and not message.c[k].nullable}
        timer = {
            "timer_id": "i:p1",
            "due_at": T0,
            "kind": "wait",
            "journey_id": "j1",
            "user_id": "c1",
            "instance_id": "p1",
            "payload": {"node": "wait"},
        }
        with engine.begin() as conn:
            DriverWrite(message, [c.key for c in message.c]).executemany(conn, [row])
            DriverWrite(tables["timer"], list(timer)).executemany(
                conn, [timer, {**timer, "timer_id": "t:x", "instance_id": ""}]
            )
            due = DriverRows(lambda d: due_timers(tables, d)).fetch(conn, now=T0, limit=10)
        with engine.connect() as conn:
            assert conn.execute(sa.select(message.c.is_marketing, message.c.created_at)).one() == (False, T0)
        assert sorted(r["timer_id"] for r in due) == ["i:p1", "t:x"]
        joined = next(r for r in due if r["timer_id"] == "i:p1")
        assert {c: joined[c] for c in TIMER_COLUMNS} == timer
        assert {c: joined[f"p_{c}"] for c in PARTICIPANT_COLUMNS} == {
            c: _participant("p1")[c] for c in PARTICIPANT_COLUMNS
        }
        alone = next(r for r in due if r["timer_id"] == "t:x")
        assert all(alone[f"p_{c}"] is None for c in PARTICIPANT_COLUMNS)  # a trigger timer has no participant
        with engine.connect() as conn:
            assert (
                DriverRows(lambda d: due_timers(tables, d)).fetch(conn, now=T0 - dt.timedelta(seconds=1), limit=10)
                == []
            )
    finally:
        engine.dispose()


def test_a_naive_time_is_still_refused(tmp_path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'naive.db'}")
    SCHEMA.metadata.create_all(engine)
    try:
        with pytest.raises(ValueError, match="naive datetime"), engine.begin() as conn:
            visit = {
                "instance_id": "p1",
                "journey_id": "j1",
                "node_id": "n",
                "outcome": "sent",
                "at": T0.replace(tzinfo=None),
            }
            DriverWrite(tables["visit"], list(visit)).executemany(conn, [visit])
    finally:
        engine.dispose()


def test_ordered_ids_follow_time_and_stay_the_same_for_the_same_parts() -> None:
    later = T0 + dt.timedelta(milliseconds=1)
    assert ordered_id(T0, "i1", "send") == ordered_id(T0.astimezone(SHANGHAI), "i1", "send")
    assert ordered_id(T0, "i1", "send") != ordered_id(T0, "i2", "send")
    assert ordered_id(T0, "i1", "send") != ordered_id(T0 + dt.timedelta(microseconds=1), "i1", "send")
    assert re.fullmatch(r"[0-9a-f]{32}", ordered_id(T0, "x")) and len(stable_id("x")) == 32
    ids = [ordered_id(T0 + dt.timedelta(milliseconds=n), f"i{9 - n}") for n in range(10)]
    assert ids == sorted(ids)  # by time first, whatever the hash
    assert ordered_id(later, "a") > ordered_id(T0, "z" * 40)


# -- PostgreSQL: a batch's INSERTs as one COPY, its UPDATEs as one statement over arrays, its reads by array ----


@pytest.mark.parametrize("dialect_name", ["sqlite", "postgresql", "opengauss", "dm"])
def test_array_statements_compile_for_postgresql_only_where_used(dialect_name: str) -> None:
    dialect = make_dialect(dialect_name)
    write = DriverWrite(tables["instance"], ["status", "updated_at", "entry_event"], key="instance_id")
    if dialect_name != "postgresql":
        # Only PostgreSQL takes these paths; every other database keeps the per-row statements compiled above.
        assert dialect_name not in _bulk.BULK_DIALECTS and dialect_name not in policy.ARRAY_DIALECTS
        return
    flat = " ".join(str(write.json_update(dialect).compile(dialect=dialect)).split())
    assert "FROM json_populate_recordset(NULL::campaign_participant, CAST(" in flat
    assert "WHERE campaign_participant.instance_id = v.instance_id" in flat
    visit = DriverWrite(tables["visit"], [c.key for c in tables["visit"].c if c.key != "visit_id"])
    assert visit.copy_sql(dialect) == "COPY campaign_visit (instance_id, journey_id, node_id, outcome, at) FROM STDIN"
    lateral = " ".join(str(policy.recent_lateral(tables["message"]).compile(dialect=dialect)).split())
    assert "JOIN LATERAL" in lateral and "OFFSET" in lateral  # kept a per-customer probe (see recent_lateral)


@pytest.mark.parametrize("path", ["bulk", "executemany"])
def test_batch_paths_write_and_read_the_same_rows(database_url, path, monkeypatch) -> None:
    """PostgreSQL's COPY / UPDATE from JSON rows / reads by JSON list against the per-row path (forced): same rows
    back."""
    if path == "executemany":
        monkeypatch.setattr(_bulk, "BULK_DIALECTS", ())
        monkeypatch.setattr(policy, "ARRAY_DIALECTS", [])
    engine = sa.create_engine(database_url)
    SCHEMA.metadata.create_all(engine)
    instance, message = tables["instance"], tables["message"]
    try:
        with engine.begin() as conn:
            DriverWrite(instance, [c.key for c in instance.c]).executemany(
                conn, [_participant(f"p{n}", user_id=f"c{n}", waiting_for={"event_type": "x"}) for n in range(5)]
            )
            updates = DriverUpdates(instance, "instance_id")
            rows = [
                {"instance_id": "p1", "status": "done", "next_action_at": None, "updated_at": T0.astimezone(SHANGHAI)},
                {"instance_id": "p3", "status": "active", "next_action_at": T0, "updated_at": T0},
            ]
            updates.write(("next_action_at", "status", "updated_at")).executemany(conn, rows)
            updates.write(("entry_event", "waiting_for")).executemany(
                conn, [{"instance_id": "p4", "entry_event": {"variant": "b"}, "waiting_for": None}]
            )
        with engine.connect() as conn:
            read = {r.instance_id: r._asdict() for r in conn.execute(sa.select(instance))}
        expected = {f"p{n}": _participant(f"p{n}", user_id=f"c{n}", waiting_for={"event_type": "x"}) for n in range(5)}
        expected["p0"]["entered_at"] = expected["p2"]["entered_at"] = T0
        for n in (1, 3, 4):
            expected[f"p{n}"]["entered_at"] = T0
        expected["p1"] |= {"status": "done", "next_action_at": None}
        expected["p3"] |= {"status": "active", "next_action_at": T0}
        expected["p4"] |= {"entry_event": {"variant": "b"}, "waiting_for": None}
        assert read == expected
        # Messages (a boolean, NULL times, text with tabs and newlines: COPY's text format escapes them) and the gate's
        # reads of a batch's customers.
        gate = policy.PolicyGate(tables, default_zone="Asia/Shanghai", requires_opt_in=False, sensitive=[])
        base = {c.key: "" for c in message.c if not message.c[c.key].nullable} | {
            c.key: None for c in message.c if message.c[c.key].nullable
        }
        sent = [
            base
            | {
                "message_id": f"m{n}",
                "user_id": f"c{n % 2}",
                "channel": 3,
                "template_id": "t1",
                "template_version": 1,
                "status": status,
                "is_marketing": n % 2 == 0,
                "priority": n,
                "attempts": 0,
                "idempotency_key": f"k{n}",
                "body": "一\t二\n三\\四",
                "created_at": T0 - dt.timedelta(days=n),
            }
            for n, status in enumerate(["QUEUED", "SENT", "SUPPRESSED", "FAILED", "DEFERRED", "SENT"])
        ]
        write = DriverWrite(message, [c.key for c in message.c])
        consent = tables["consent"]
        with engine.begin() as conn:
            write.executemany(conn, sent)
            conn.execute(
                sa.insert(consent),
                [{"user_id": "c1", "channel": 3, "purpose": "*", "granted": False, "source": "s", "updated_at": T0}],
            )
        with engine.connect() as conn:
            body = conn.execute(sa.select(message.c.body).where(message.c.message_id == "m0")).scalar()
            assert body == "一\t二\n三\\四"
            recent = gate.recent_for(conn, ["c0", "c1", "nobody"], T0 - dt.timedelta(days=4, hours=1))
            consents = sorted(tuple(r) for r in gate.consents_for(conn, ["c0", "c1", "nobody"]))
        # Read one day further back than asked (m5, five days old): a message held for quiet hours into the window
        # counts in it; the gate filters by when each goes out.
        assert {u: sorted(s.message_id for s in found) for u, found in recent.items()} == {
            "c0": ["m0", "m4"],
            "c1": ["m1", "m5"],
        }
        assert all(s.created_at.tzinfo == dt.UTC for found in recent.values() for s in found)
        assert next(s for s in recent["c0"] if s.message_id == "m0").is_marketing is True
        assert consents == [("c1", 3, "*", False)]
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            write.executemany(conn, [sent[0]])  # the same message again: the database's error, as SQLAlchemy's
    finally:
        engine.dispose()


def test_postgresql_json_update_keeps_the_column_length(database_url_postgresql) -> None:
    """The rows are read with the table's own types: a value too long for its column is refused, not cut."""
    engine = sa.create_engine(database_url_postgresql)
    SCHEMA.metadata.create_all(engine)
    instance = tables["instance"]
    try:
        with engine.begin() as conn:
            DriverWrite(instance, [c.key for c in instance.c]).executemany(conn, [_participant("p1")])
        with pytest.raises(sa.exc.DBAPIError, match="too long"), engine.begin() as conn:
            DriverUpdates(instance, "instance_id").write(("status",)).executemany(
                conn, [{"instance_id": "p1", "status": "x" * 17}]
            )
    finally:
        engine.dispose()
