"""The PostgreSQL writer keeps one connection and appends in three query cycles (lock, COPY, statistics + head +
COMMIT); a failed append leaves nothing behind and the next one goes on, also after the connection was lost."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from collect_helpers import collect_settings, make_event, running_service

from svc_collect.service import ACCEPTED, CollectService
from svc_collect.store import _pg_append
from svc_common.errors import Unavailable


def _seq(cursor: str) -> int:
    return int(cursor.rsplit(".", 1)[1], 16)


def _writer(service: CollectService) -> psycopg.Connection:
    return service._log._pg._held.driver_connection  # type: ignore[attr-defined]


def _terminate(database_url: str, pid: int) -> None:
    engine = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    engine.dispose()


def test_an_append_is_three_query_cycles_on_one_kept_connection(database_url_postgresql: str, tmp_path: Path) -> None:
    async def scenario() -> tuple[list[str], int]:
        async with running_service(collect_settings(tmp_path, database_url_postgresql)) as (service, _):
            await service.ingest([make_event()])  # the writer's connection is open from here on
            checkouts: list[object] = []
            engine = service._log._db.engine  # type: ignore[attr-defined]

            def count(*args: object) -> None:
                checkouts.append(args)

            sa.event.listen(engine, "checkout", count)
            conn = _writer(service)
            with tempfile.TemporaryFile() as trace:
                conn.pgconn.trace(trace.fileno())
                conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
                outcomes = await service.ingest([make_event("a"), make_event("b"), make_event("a")])
                conn.pgconn.untrace()
                trace.seek(0)
                lines = trace.read().decode().splitlines()
            assert [o.status for o in outcomes] == [ACCEPTED] * 3
            for _ in range(3):
                await service.ingest([make_event()])
            sa.event.remove(engine, "checkout", count)
            return lines, len(checkouts)

    lines, checkouts = asyncio.run(scenario())
    cycles = [line for line in lines if "\tReadyForQuery\t" in line]
    # BEGIN + the locked head; the COPY; statistics, head and COMMIT — and nothing else on the wire.
    assert len(cycles) == 3, "\n".join(lines)
    assert any('"COMMIT"' in line and "\tCommandComplete\t" in line for line in lines)
    assert checkouts == 0  # no pool checkout (and no pre-ping) per append


def test_a_failed_append_leaves_nothing_and_the_next_goes_on(database_url_postgresql: str, tmp_path: Path) -> None:
    engine = sa.create_engine(database_url_postgresql)
    with engine.begin() as conn:  # the statistics refuse one type: the append fails at its last statement
        conn.execute(
            sa.text(
                "CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                " IF NEW.event_type = 'boom' THEN RAISE EXCEPTION 'boom refused'; END IF; RETURN NEW; END $$"
            )
        )

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, database_url_postgresql)) as (service, _):
            with engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "CREATE TRIGGER refuse_boom BEFORE INSERT ON collect_ingest_stat"
                        " FOR EACH ROW EXECUTE FUNCTION refuse_boom()"
                    )
                )
            (first,) = await service.ingest([make_event("page_view")])
            with pytest.raises(psycopg.errors.RaiseException):
                await service.ingest([make_event("boom"), make_event("page_view")])
            (after,) = await service.ingest([make_event("page_view")])
            assert (_seq(first.cursor), _seq(after.cursor)) == (1, 2)  # no position taken by the failed append
            page = await asyncio.to_thread(service._log.read, 0, 10)
            assert [e.seq for e in page.events] == [1, 2]
            stats = await service.stats(None, None, [])
            assert stats.by_type == [("page_view", 2, 0, 0)]

    try:
        asyncio.run(scenario())
    finally:
        engine.dispose()


def test_a_connection_lost_while_idle_is_replaced_without_an_error(
    database_url_postgresql: str, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, database_url_postgresql)) as (service, _):
            await service.ingest([make_event()])
            pid = _writer(service).info.backend_pid
            await asyncio.to_thread(_terminate, database_url_postgresql, pid)
            (outcome,) = await service.ingest([make_event()])  # as the pool's pre-ping would: no UNAVAILABLE
            assert outcome.status == ACCEPTED and _seq(outcome.cursor) == 2
            assert _writer(service).info.backend_pid != pid

    asyncio.run(scenario())


def test_a_connection_lost_during_an_append_is_unavailable_then_replaced(
    database_url_postgresql: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = _pg_append.PgAppender._copy
    lost: list[int] = []

    def copy_after_losing_the_connection(self, conn, rows, *, refusable):  # type: ignore[no-untyped-def]
        if not lost:
            lost.append(conn.info.backend_pid)
            _terminate(database_url_postgresql, conn.info.backend_pid)
        return original(self, conn, rows, refusable=refusable)

    monkeypatch.setattr(_pg_append.PgAppender, "_copy", copy_after_losing_the_connection)

    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, database_url_postgresql)) as (service, _):
            with pytest.raises(Unavailable):
                await service.ingest([make_event(), make_event()])
            (outcome,) = await service.ingest([make_event()])
            assert outcome.status == ACCEPTED and _seq(outcome.cursor) == 1  # nothing of the lost append stayed
            assert _writer(service).info.backend_pid != lost[0]

    asyncio.run(scenario())


def test_a_database_that_refuses_connections_is_unavailable(
    database_url_postgresql: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        async with running_service(collect_settings(tmp_path, database_url_postgresql)) as (service, _):
            engine = service._log._db.engine  # type: ignore[attr-defined]
            refused = sa.exc.OperationalError("connect", {}, psycopg.OperationalError("connection refused"))

            def refuse() -> None:
                raise refused

            monkeypatch.setattr(engine, "raw_connection", refuse)
            with pytest.raises(Unavailable, match="unavailable; retry with backoff"):
                await service.ingest([make_event()])
            monkeypatch.undo()
            (outcome,) = await service.ingest([make_event()])
            assert outcome.status == ACCEPTED and _seq(outcome.cursor) == 1

    asyncio.run(scenario())
