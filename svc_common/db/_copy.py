"""A tracing span for ``COPY ... FROM STDIN`` run on the driver.

SQLAlchemy's OpenTelemetry instrumentation makes a client span for every statement SQLAlchemy executes; a COPY goes
to psycopg's cursor directly (the bulk paths of svc_collect and svc_campaign), so without this a trace shows the
batch's transaction with its biggest write missing. The span is named and described as the instrumentation names
its own (``"<first word> <database>"``, ``db.system``, ``db.name``, ``db.statement``), so both read alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from sqlalchemy.engine import Connection

_tracer = trace.get_tracer("qiming.db")


@contextmanager
def copy_span(conn: Connection, sql: str, rows: int) -> Iterator[None]:
    """A client span around a COPY of ``rows`` rows on ``conn``; an error raised inside marks it failed."""
    url = conn.engine.url
    attributes: dict[str, str | int] = {
        "db.system": "postgresql",
        "db.statement": sql,
        "db.operation": "COPY",
        "db.qiming.rows": rows,
    }
    if url.database:
        attributes["db.name"] = url.database
    if url.host:
        attributes["net.peer.name"] = url.host
    if url.port:
        attributes["net.peer.port"] = url.port
    name = f"COPY {url.database}" if url.database else "COPY"
    with _tracer.start_as_current_span(name, kind=trace.SpanKind.CLIENT, attributes=attributes):
        yield
