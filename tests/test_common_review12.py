"""svc_common fixes from the integrator / auditor walk of 2026-12-06."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from svc_common.config import ServiceSettings
from svc_common.db import Database
from svc_common.errors import Unavailable


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
