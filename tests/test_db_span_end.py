"""A statement that fails while its rows are read (SQLite finds a malformed JSON value only then) ends its span once:
OpenTelemetry's instrumentation ended it after the cursor ran and again in its error handler, which logged "Calling
end() on an ended span" for each such error."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from opentelemetry import trace
from sqlalchemy.exc import OperationalError

from svc_common.config import ServiceSettings
from svc_common.db import create_engine_from_settings


def test_a_statement_failing_while_its_rows_are_read_ends_its_span_once(
    tmp_path: Path, span_exporter, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_engine_from_settings(ServiceSettings(database_url=f"sqlite:///{tmp_path}/spans.db"))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE doc (body TEXT)")
            conn.exec_driver_sql("""INSERT INTO doc VALUES ('{"a": 1}'), ('{"a": 2}'), ('not json')""")
        span_exporter.clear()
        with (
            trace.get_tracer("tests").start_as_current_span("a call"),  # outside a trace statements are not traced
            caplog.at_level(logging.WARNING, logger="opentelemetry"),
            pytest.raises(OperationalError, match="malformed JSON"),
            engine.connect() as conn,
        ):
            conn.exec_driver_sql("SELECT json_extract(body, '$.a') FROM doc").fetchall()
    finally:
        engine.dispose()
    assert [r.getMessage() for r in caplog.records if "ended span" in r.getMessage()] == []
    (select,) = [s for s in span_exporter.get_finished_spans() if s.name.startswith("SELECT")]
    assert select.attributes["db.statement"].startswith("SELECT json_extract")
