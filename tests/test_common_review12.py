"""svc_common fixes from the integrator / auditor walk of 2026-12-06."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from svc_common.config import ServiceSettings
from svc_common.db import Database
from svc_common.errors import Unavailable
from svc_common.server import AuditRecord, LogAuditSink
from svc_common.server._hooks import AUDIT_CUSTOMERS_PER_LINE


# F2: SQLite reports "malformed JSON" (a stored NaN, say) as OperationalError; it was answered UNAVAILABLE "retry with
# backoff", and a caller that followed the advice retried for ever. A busy lock stays UNAVAILABLE.
def test_a_statement_that_can_never_succeed_is_not_unavailable(tmp_path: Path) -> None:
    database = Database.from_settings(ServiceSettings(data_dir=tmp_path, sqlite_busy_timeout_millis=50))
    try:
        for statement in ("SELECT json_extract('{\"a\": NaN}', '$.a')", "SELECT x FROM no_such_table"):
            with pytest.raises(sa.exc.OperationalError) as raised, database.session() as session:
                session.execute(sa.text(statement))
            assert not isinstance(raised.value, Unavailable)
        with database.engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x int)"))
        holder = database.engine.connect().execution_options(sqlite_write=True)
        holder.begin()
        try:
            with pytest.raises(Unavailable), database.connection(write=True) as conn:
                conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        finally:
            holder.rollback()
            holder.close()
    finally:
        database.dispose()


# A bulk call (WriteTagsStream of a million scores) now names every customer it touched: the audit line is split so
# that no line grows to megabytes, and every customer is still named once.
def test_an_audit_record_of_many_customers_is_written_in_parts(caplog: pytest.LogCaptureFixture) -> None:
    customers = tuple(f"c{i:05d}" for i in range(2 * AUDIT_CUSTOMERS_PER_LINE + 1))
    record = AuditRecord(
        at=datetime.now(UTC),
        principal="anonymous",
        roles=(),
        method="/m",
        peer="p",
        trace_id="t",
        status="OK",
        customers=customers,
    )
    caplog.set_level(logging.INFO, logger="qiming.audit")
    asyncio.run(LogAuditSink().record(record))
    lines = [r for r in caplog.records if r.name == "qiming.audit"]
    assert [(r.audit_part, r.audit_parts) for r in lines] == [(1, 3), (2, 3), (3, 3)]
    assert all(len(r.audit_customers) <= AUDIT_CUSTOMERS_PER_LINE for r in lines)
    assert [c for r in lines for c in r.audit_customers] == list(customers)
    assert {r.audit_trace_id for r in lines} == {"t"}
    caplog.clear()
    asyncio.run(LogAuditSink().record(record.__class__(**{**record.__dict__, "customers": customers[:3]})))
    (single,) = [r for r in caplog.records if r.name == "qiming.audit"]
    assert single.audit_customers == list(customers[:3]) and not hasattr(single, "audit_part")
