"""The policy gate is serialised per customer across transactions on every server database: a due timer and an
incoming event of one customer, handled at the same moment by the timer loop and the event follower (each in its own
transaction), cannot both pass a cap of one message a day on a channel.

PostgreSQL takes a transaction advisory lock per customer; openGauss and Dameng lock the customers' rows of
``campaign_gate_lock`` (65,536 buckets written by campaign_0004). No openGauss or Dameng server runs here: the row
lock's behaviour is checked on PostgreSQL with that path forced, and its statement and migration are compiled with
the openGauss and Dameng dialects."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from campaign_helpers import (
    add_template,
    campaign_service,
    campaign_settings,
    event,
    on_event,
    run_journey,
    simple_graph,
    statuses,
    wait_then_send,
)
from test_ddl_snapshots import make_dialect, offline_migration_sql

from svc_campaign import policy
from svc_campaign.policy import GATE_LOCK_BUCKETS, PolicyGate, _lock_key, gate_bucket
from svc_campaign.store import SCHEMA, tables
from svc_common.db import Database

MIGRATION = Path(policy.__file__).parent / "store" / "migrations" / "versions" / "campaign_0004_gate_lock.py"


@pytest.fixture(params=["advisory", "rows"])
def lock_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """PostgreSQL's own advisory lock, or the bucket rows that openGauss and Dameng use, forced on PostgreSQL."""
    if request.param == "rows":
        monkeypatch.setattr(policy, "ADVISORY_LOCK_DIALECTS", [])
        monkeypatch.setattr(policy, "ROW_LOCK_DIALECTS", ["postgresql"])
    return request.param


def _in_two_transactions_at_once(works: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []

    def run(work: Callable[[], None]) -> None:
        try:
            work()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(work,)) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def test_a_timer_and_an_event_of_one_customer_at_once_pass_a_cap_once(
    tmp_path, database_url_postgresql, lock_path
) -> None:
    with campaign_service(tmp_path, database_url_postgresql) as service:
        add_template(service, "t1")
        add_template(service, "t2")
        run_journey(service, wait_then_send(3600, "t1"), "j1")  # a push an hour after signing up
        run_journey(service, simple_graph(on_event("deposit"), "t2"), "j2")  # a push on a deposit
        service.engine.handle([event("signup", "c1")], "")
        service.clock.advance(hours=1)
        walker = service.engine.walker
        real_flush = walker.flush
        met = threading.Barrier(2)

        def flush_when_both_gated(conn) -> None:
            # Wait (a while) for the other transaction to have gated too. Without the lock both get here having read
            # no message of the other and both queue theirs; with it the second waits for the first's commit.
            with contextlib.suppress(threading.BrokenBarrierError):
                met.wait(timeout=2.0)
            real_flush(conn)

        walker.flush = flush_when_both_gated
        at = service.clock.now()
        errors = _in_two_transactions_at_once(
            [
                lambda: service.engine.fire_due_timers(None, (0, 1)),
                lambda: service.engine.handle([event("deposit", "c1", at=at)], ""),
            ]
        )
        assert not errors, errors
        assert sorted(statuses(service, "c1")) == [("QUEUED", ""), ("SUPPRESSED", "channel_cap")]


@contextlib.contextmanager
def _campaign_db(tmp_path: Path, url: str) -> Iterator[Database]:
    db = Database.from_settings(campaign_settings(tmp_path, url))
    try:
        SCHEMA.migrations.upgrade(db.engine)
        yield db
    finally:
        db.dispose()


def _gate() -> PolicyGate:
    return PolicyGate(tables, default_zone="Asia/Shanghai", requires_opt_in=False, sensitive=[])


def test_overlapping_customers_locked_in_other_orders_wait_instead_of_deadlocking(
    tmp_path, database_url_postgresql, lock_path, monkeypatch
) -> None:
    """One transaction gates customers c0..c99, the other c119..c0 (the given order reversed), the rows in chunks of
    50 here: locked in the order given, each would hold its first chunk and wait for the other's (PostgreSQL then
    aborts one: deadlock detected; checked); in ascending bucket order the second waits for the first's commit.
    The advisory path takes all its keys in one statement, ascending: the same test, though a race between two
    single statements would rarely show a wrong order."""
    monkeypatch.setattr(policy, "_ROW_LOCK_CHUNK", 50)
    first = [f"c{n}" for n in range(100)]
    second = [f"c{n}" for n in reversed(range(120))]
    assert len({gate_bucket(c) for c in second}) == 120  # no two share a bucket: the chunks split as described
    with _campaign_db(tmp_path, database_url_postgresql) as db:
        gate = _gate()
        met = threading.Barrier(2)
        local = threading.local()

        @sa.event.listens_for(db.engine, "after_cursor_execute")
        def after_the_first_lock(conn, cursor, statement, *args) -> None:
            # Each transaction waits (a while) for the other after its first lock statement: with the lock taken in
            # one order both then hold part of what the other needs.
            if ("campaign_gate_lock" in statement or "pg_advisory_xact_lock" in statement) and not getattr(
                local, "waited", False
            ):
                local.waited = True
                with contextlib.suppress(threading.BrokenBarrierError):
                    met.wait(timeout=1.5)

        def gate_customers(users: list[str]) -> Callable[[], None]:
            def work() -> None:
                with db.engine.begin() as conn:
                    gate.lock_customers(conn, users)

            return work

        errors = _in_two_transactions_at_once([gate_customers(first), gate_customers(second)])
        assert not errors, errors


def test_a_missing_bucket_row_is_an_error_not_a_silent_gap(tmp_path, database_url_postgresql, lock_path) -> None:
    with _campaign_db(tmp_path, database_url_postgresql) as db:
        with db.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM campaign_gate_lock WHERE bucket = :b"), {"b": gate_bucket("c7")})
        with db.engine.begin() as conn:
            if lock_path == "advisory":
                _gate().lock_customers(conn, ["c7", "c8"])  # no rows used
                return
            with pytest.raises(RuntimeError, match=rf"lacks the buckets \[{gate_bucket('c7')}\]"):
                _gate().lock_customers(conn, ["c7", "c8"])


# -- the statements and the migration on openGauss and Dameng (compiled: no server here) ---------------------------


@pytest.mark.parametrize("dialect_name", ["opengauss", "dm"])
def test_opengauss_and_dameng_lock_bucket_rows_in_ascending_order(dialect_name: str) -> None:
    assert dialect_name in policy.ROW_LOCK_DIALECTS and dialect_name not in policy.ADVISORY_LOCK_DIALECTS
    statement = _gate().store._lock_rows.params(b_buckets=[3, 17, 65_535])
    compiled = statement.compile(dialect=make_dialect(dialect_name), compile_kwargs={"render_postcompile": True})
    flat = " ".join(str(compiled).split())
    assert flat.startswith(
        "SELECT campaign_gate_lock.bucket FROM campaign_gate_lock WHERE campaign_gate_lock.bucket IN ("
    )
    assert flat.endswith("ORDER BY campaign_gate_lock.bucket FOR UPDATE")
    assert compiled.params == {"b_buckets_1": 3, "b_buckets_2": 17, "b_buckets_3": 65_535}  # one bind per bucket


def test_every_database_but_sqlite_serialises_the_gate() -> None:
    assert policy.ADVISORY_LOCK_DIALECTS == ["postgresql"]
    assert sorted(policy.ROW_LOCK_DIALECTS) == ["dm", "opengauss"]


def test_the_advisory_statement_also_compiles_for_opengauss() -> None:
    """openGauss has pg_advisory_xact_lock and json_array_elements_text (docs/campaign.md): moving it to the advisory
    lock after a check on a live server is one line (ADVISORY_LOCK_DIALECTS); the statement is ready."""
    flat = " ".join(str(_gate().store._lock.compile(dialect=make_dialect("opengauss"))).split())
    assert flat.startswith("SELECT count(pg_advisory_xact_lock(20807, ordered.key))")
    assert "FROM json_array_elements_text(CAST(%(b_keys)s::VARCHAR AS JSON)) AS k(value)" in flat
    assert flat.endswith("ORDER BY CAST(k.value AS INTEGER)) AS ordered")


def _offline_sql(dialect_name: str, step: str) -> str:
    """What campaign_0004's upgrade or downgrade sends to ``dialect_name``."""
    return offline_migration_sql(MIGRATION, dialect_name, step)


@pytest.mark.parametrize("dialect_name", ["opengauss", "dm", "postgresql", "sqlite"])
def test_the_migration_compiles_for_every_database(dialect_name: str) -> None:
    upgrade = (
        _offline_sql(dialect_name, "upgrade")
        .replace(" AS high_part", " high_part")
        .replace(" AS low_part", " low_part")
    )
    assert "CREATE TABLE campaign_gate_lock ( bucket INTEGER NOT NULL, PRIMARY KEY (bucket) )" in upgrade
    assert upgrade.count("INSERT INTO campaign_gate_lock (bucket) VALUES") == 256  # offline: one per seed row
    assert (
        "INSERT INTO campaign_gate_lock (bucket) SELECT high_part.bucket * 256 + low_part.bucket AS anon_1 "
        "FROM campaign_gate_lock high_part JOIN campaign_gate_lock low_part ON low_part.bucket >= 0 "
        "WHERE high_part.bucket >= 1"
    ) in upgrade
    assert _offline_sql(dialect_name, "downgrade") == "DROP TABLE campaign_gate_lock;"


def test_the_migration_writes_every_bucket_and_the_way_back_drops_them(tmp_path, database_url: str) -> None:
    db = Database.from_settings(campaign_settings(tmp_path, database_url))
    migrations = SCHEMA.migrations
    count = "SELECT COUNT(*), MIN(bucket), MAX(bucket), COUNT(DISTINCT bucket) FROM campaign_gate_lock"
    try:
        assert migrations.upgrade(db.engine, "campaign_0003") == "campaign_0003"
        assert "campaign_gate_lock" not in sa.inspect(db.engine).get_table_names()
        assert migrations.upgrade(db.engine, "campaign_0004") == "campaign_0004"
        with db.engine.connect() as conn:
            assert tuple(conn.execute(sa.text(count)).one()) == (GATE_LOCK_BUCKETS, 0, GATE_LOCK_BUCKETS - 1, 65_536)
            command.downgrade(migrations._config(conn), "campaign_0003")
            conn.commit()
        assert "campaign_gate_lock" not in sa.inspect(db.engine).get_table_names()
        assert migrations.upgrade(db.engine) == migrations.head()
        with db.engine.connect() as conn:
            assert conn.execute(sa.text(count)).one()[0] == GATE_LOCK_BUCKETS
    finally:
        db.dispose()


def test_lock_keys_are_stable_signed_32_bit_integers_and_buckets_their_remainders() -> None:
    keys = [_lock_key(f"C{i:08d}") for i in range(1000)]
    assert all(-(1 << 31) <= k < (1 << 31) for k in keys)
    assert _lock_key("C00000001") == _lock_key("C00000001") and len(set(keys)) > 990
    assert [gate_bucket(f"C{i:08d}") for i in range(1000)] == [k % GATE_LOCK_BUCKETS for k in keys]
    assert all(0 <= gate_bucket(f"C{i:08d}") < GATE_LOCK_BUCKETS for i in range(1000))
