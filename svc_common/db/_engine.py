"""Engine from a URL: supported backends, pool settings, SQLite pragmas, retry on connect."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from svc_common.config import redact_url
from svc_common.db._sqlite_turn import WriterTurn
from svc_common.errors import DATABASE_BUSY, ConfigError, ResourceExhausted, StartupError, Unavailable

if TYPE_CHECKING:
    from svc_common.config import ServiceSettings

log = logging.getLogger(__name__)

# backend -> the one driver we support for it (a bare backend name means this driver).
SUPPORTED_DRIVERS = {
    "sqlite": "pysqlite",
    "postgresql": "psycopg",
    "opengauss": "psycopg",
    "dm": "dmPython",
}
_EXTRA_FOR_BACKEND = {"opengauss": "opengauss", "dm": "dm"}


def normalize_database_url(url: str) -> URL:
    """Parse ``url`` and pin the driver; raise :class:`ConfigError` for anything we do not support."""
    _, scheme_sep, rest = url.partition("://")
    if scheme_sep and re.split(r"[/?]", rest, maxsplit=1)[0].count("@") > 1:
        # SQLAlchemy would split the password at its first "@" and take the rest for the host.
        raise ConfigError(
            "database URL: the user or password contains '@'; write it URL-encoded as %40 "
            "(e.g. postgresql+psycopg://qiming:p%40ss@db1:5432/qiming)"
        )
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError(
            f"database URL {redact_url(repr(url))} is not a valid SQLAlchemy URL (expected e.g. sqlite:///qiming.db "
            "or postgresql+psycopg://user:password@host:5432/name)"
        ) from None
    if parsed.host and "@" in parsed.host:  # a "/" or "?" in the password hid its "@" from the check above
        raise ConfigError(
            "database URL: the user or password contains '@' (and '/' or '?'); write them URL-encoded (%40, %2F, %3F)"
        )
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise ConfigError(
            f"database URL {parsed.render_as_string(hide_password=True)!r}: port {parsed.port} is not a TCP port "
            "(1 to 65535)"
        )
    backend, _, driver = parsed.drivername.partition("+")
    if backend not in SUPPORTED_DRIVERS:
        raise ConfigError(
            f"database URL {parsed.render_as_string(hide_password=True)!r}: unsupported database {backend!r}; "
            f"use one of {', '.join(sorted(SUPPORTED_DRIVERS))}"
        )
    expected = SUPPORTED_DRIVERS[backend]
    if driver and driver != expected:
        raise ConfigError(
            f"database URL {parsed.render_as_string(hide_password=True)!r}: driver {driver!r} is not supported "
            f"for {backend}; use {backend}+{expected}://"
        )
    if backend == "sqlite" and (parsed.database in (None, "") or parsed.database == ":memory:"):
        raise ConfigError(
            "database URL: an in-memory SQLite database loses every event on restart; give a file path "
            "(sqlite:///path/to/file.db)"
        )
    return parsed.set(drivername=f"{backend}+{expected}")


def validate_database_url(url: str) -> None:
    normalize_database_url(url)


def dialect_name(url: str | URL) -> str:
    """``sqlite``, ``postgresql``, ``opengauss`` or ``dm``."""
    return (make_url(url) if isinstance(url, str) else url).get_backend_name()


def _sqlite_pragmas(synchronous: str, busy_timeout_millis: int, cache_mib: int = 64):
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (pysqlite's own BEGIN handling is wrong for SELECTs).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_millis)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # SQLite's default page cache is 2 MiB: once the unique index on random event ids outgrows it,
        # every insert reads pages from disk and ingest slows as the log grows.
        cursor.execute(f"PRAGMA cache_size=-{int(cache_mib) * 1024}")
        cursor.close()

    return on_connect


def _sqlite_begin(conn: Connection) -> None:
    # Writers take the lock up front so that two read-then-write transactions cannot deadlock
    # (SQLite would fail one at once instead of waiting busy_timeout).
    mode = "IMMEDIATE" if conn.get_execution_options().get("sqlite_write", False) else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


def create_engine_from_settings(settings: ServiceSettings) -> Engine:
    """Build the engine for one service; creates the SQLite file's directory when needed."""
    url = normalize_database_url(settings.resolved_database_url())
    backend = url.get_backend_name()
    kwargs: dict[str, Any] = {"future": True}
    if backend == "sqlite":
        directory = Path(url.database).expanduser().parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the directory {directory} of the SQLite database ({exc.strerror}); check data_dir "
                "or database_url and that the service user may write there"
            ) from None
        kwargs["connect_args"] = {"check_same_thread": False}
    else:
        kwargs.update(
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
            pool_timeout=settings.database_pool_timeout_seconds,
            pool_recycle=settings.database_pool_recycle_seconds,
            pool_pre_ping=True,
        )
        if backend in ("postgresql", "opengauss"):
            kwargs["connect_args"] = {"connect_timeout": settings.database_connect_timeout_seconds}
        elif backend == "dm":
            # DSQL_ATTR_LOGIN_TIMEOUT bounds connect + login; dmPython's connection_timeout would bound every
            # statement instead, so it is left alone.
            kwargs["connect_args"] = {"login_timeout": settings.database_connect_timeout_seconds}
    try:
        # Looked up on the module at call time so that OpenTelemetry's wrapper (DB spans) applies.
        engine = sqlalchemy.create_engine(url, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        extra = _EXTRA_FOR_BACKEND.get(backend)
        hint = f"; install it with: pip install 'qiming[{extra}]'" if extra else ""
        raise ConfigError(f"database driver for {backend} is not installed ({exc}){hint}") from None
    event.listen(engine, "after_cursor_execute", _forget_ended_span)
    if backend == "sqlite":
        event.listen(
            engine,
            "connect",
            _sqlite_pragmas(
                settings.sqlite_synchronous, settings.sqlite_busy_timeout_millis, settings.sqlite_cache_mib
            ),
        )
        event.listen(engine, "begin", _sqlite_begin)
    elif backend == "postgresql":
        event.listen(engine, "connect", _custom_plans)
    return engine


def _forget_ended_span(
    _conn: Connection, _cursor: Any, _statement: str, _params: Any, context: Any, _executemany: bool
) -> None:
    """OpenTelemetry's SQLAlchemy instrumentation ends a statement's span once the cursor has run, and again when
    the statement fails. SQLite reports a bad row (malformed JSON, say) only while the rows are read, after that first
    end, and every such error then logged "Calling end() on an ended span". Registered after the instrumentation's own
    listener (it registers when the engine is made), so the ended span is forgotten before an error can end it again."""
    if context is not None and getattr(context, "_otel_span", None) is not None:
        context._otel_span = None


def _custom_plans(dbapi_connection: Any, _record: Any) -> None:
    """PostgreSQL plans every execution for its own parameters. psycopg prepares a statement after five runs, and
    PostgreSQL may then switch to a generic plan made while a table was small: a sequential scan that stays as the
    table grows. svc_campaign's read of a batch's recent messages (``user_id IN (…200 ids…)``) turned a 100,000-timer
    drain quadratic that way (160 s; 40,000 timers 27.5 s, and 10.5 s with custom plans). Session-level, so the
    URL's own ``options`` stay as they are; openGauss keeps its defaults."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_custom_plan")
    dbapi_connection.commit()


def wait_for_database(engine: Engine, retries: int, first_interval_millis: int) -> None:
    """Connect with exponential backoff; raise :class:`StartupError` naming the database if it never answers."""
    where = engine.url.render_as_string(hide_password=True)
    delay = first_interval_millis / 1000
    for attempt in range(retries + 1):
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1") if engine.dialect.name != "dm" else text("SELECT 1 FROM DUAL"))
            return
        except DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            if attempt == retries:
                raise StartupError(
                    f"database {where} is unreachable after {retries + 1} attempt(s): {reason}"
                ) from None
            log.warning(
                "database not reachable, retrying",
                extra={"database": where, "attempt": attempt + 1, "retry_in_seconds": delay, "error": reason},
            )
            time.sleep(delay)
            delay = min(delay * 2, 30.0)


class Database:
    """An engine plus managed sessions. One per service process."""

    def __init__(self, engine: Engine, *, sqlite_busy_timeout_millis: int = 5000) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._turn = _writer_turn(engine, sqlite_busy_timeout_millis)
        """SQLite files only: the turn writers (``write=True``) take before BEGIN IMMEDIATE (``_sqlite_turn``)."""

    @classmethod
    def from_settings(cls, settings: ServiceSettings, *, wait: bool = True) -> Database:
        engine = create_engine_from_settings(settings)
        if wait:
            wait_for_database(
                engine, settings.database_connect_retries, settings.database_connect_retry_interval_millis
            )
        return cls(engine, sqlite_busy_timeout_millis=settings.sqlite_busy_timeout_millis)

    @contextmanager
    def _writing(self, write: bool) -> Iterator[None]:
        turn = self._turn if write else None
        if turn is None:
            yield
            return
        turn.acquire()
        try:
            yield
        finally:
            turn.release()

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error.

        ``write=True`` takes SQLite's write lock at BEGIN (other databases ignore it). A lost
        connection surfaces as :class:`Unavailable`, which callers see as gRPC UNAVAILABLE.
        """
        with self._writing(write):
            yield from self._session(write)

    def _session(self, write: bool) -> Iterator[Session]:
        session = self._sessions()
        try:
            if write:  # inside the try: a busy SQLite write lock at BEGIN is UNAVAILABLE too, and the session closed
                session.connection(execution_options={"sqlite_write": True})
            yield session
            session.commit()
        except DBAPIError as exc:
            session.rollback()
            if _transient(exc):
                raise _caller_error(exc) from exc
            raise
        except sqlalchemy.exc.TimeoutError as exc:
            session.rollback()
            raise Unavailable(f"no free database connection: {exc}".splitlines()[0]) from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def connection(self, *, write: bool = False) -> Iterator[Connection]:
        """A Core connection in one transaction (for bulk statements); errors as in :meth:`session`."""
        with self._writing(write):
            yield from self._connection(write)

    def _connection(self, write: bool, isolation_level: str | None = None) -> Iterator[Connection]:
        with _caller_errors(), self.engine.connect() as conn:
            if write:
                conn = conn.execution_options(sqlite_write=True)
            if isolation_level:
                conn = conn.execution_options(isolation_level=isolation_level)
            with conn.begin():
                yield conn

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for a read whose statements need no transaction around them (each sees what was committed
        when it runs, as in a READ COMMITTED transaction): on PostgreSQL in autocommit mode, which spares the
        ``BEGIN`` and ``COMMIT`` round trips (about a quarter of a profile lookup's time); elsewhere as
        :meth:`connection`. Never for a write, nor for reads that must see one snapshot together."""
        if self.engine.dialect.name != "postgresql":
            with self.connection() as conn:
                yield conn
            return
        with _caller_errors(), self.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read-only transaction whose statements all see the database as it was at its first read, whatever
        commits meanwhile: a read of many pages (a segment export) that must not mix states. REPEATABLE READ on
        PostgreSQL and openGauss, SERIALIZABLE on Dameng (its transaction-level read consistency), a deferred
        transaction on SQLite (in WAL mode a reader keeps its snapshot until it ends). Held open, it keeps a
        connection and holds back PostgreSQL's vacuum and SQLite's WAL checkpoint: keep it to one read."""
        yield from self._connection(False, _SNAPSHOT_LEVELS.get(self.engine.dialect.name))

    def dispose(self) -> None:
        self.engine.dispose()
        if self._turn is not None:
            self._turn.close()


_SNAPSHOT_LEVELS = {"postgresql": "REPEATABLE READ", "opengauss": "REPEATABLE READ", "dm": "SERIALIZABLE"}
"""The isolation level of :meth:`Database.snapshot` per dialect (SQLite's deferred transaction is one already)."""


def _writer_turn(engine: Engine, timeout_millis: int) -> WriterTurn | None:
    """The turn of a SQLite file's writers; None for other databases and in-memory SQLite (one connection)."""
    url = engine.url
    path = url.database or ""
    if engine.dialect.name != "sqlite" or path in ("", ":memory:") or path.startswith("file:"):
        return None
    return WriterTurn(str(Path(path).expanduser().resolve()), timeout_millis)


# SQLite reports a statement that can never succeed as OperationalError too; retrying those is futile, so they stay
# errors (INTERNAL, quoting the trace id) instead of UNAVAILABLE "retry with backoff".
_NOT_TRANSIENT = ("malformed json", "json cannot hold", "no such table", "no such column", "syntax error")


@contextmanager
def _caller_errors() -> Iterator[None]:
    """A connection's errors as callers of :meth:`Database.connection` and :meth:`Database.reading` see them: a
    transient one as UNAVAILABLE, no free connection in the pool as UNAVAILABLE too."""
    try:
        yield
    except DBAPIError as exc:
        if _transient(exc):
            raise _caller_error(exc) from exc
        raise
    except sqlalchemy.exc.TimeoutError as exc:
        raise Unavailable(f"no free database connection: {exc}".splitlines()[0]) from exc


def _transient(exc: DBAPIError) -> bool:
    """A lost connection, a busy lock, a database that does not answer: worth a retry by the caller."""
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, sqlalchemy.exc.OperationalError):
        return False
    text = str(exc.orig).lower()
    return not any(marker in text for marker in _NOT_TRANSIENT)


def _storage_full(exc: DBAPIError) -> bool:
    """SQLite's SQLITE_FULL, PostgreSQL's (and openGauss's) disk_full, SQLSTATE 53100."""
    if getattr(exc.orig, "sqlstate", None) == "53100":
        return True
    text = str(exc.orig).lower()
    return "database or disk is full" in text or "no space left on device" in text


def _caller_error(exc: DBAPIError) -> Unavailable | ResourceExhausted:
    """UNAVAILABLE with a fixed text: the driver's message names the database's host, port, user and name, which
    callers must not learn. It goes to the server's log instead (the trace id ties the two together). A full disk
    is RESOURCE_EXHAUSTED ``STORAGE_FULL`` and an ERROR: it needs an operator, not just a retry, and an alert on the
    reason must tell it from a database that restarts."""
    detail = redact_url(str(exc.orig).splitlines()[0] if str(exc.orig) else repr(exc))
    if _storage_full(exc):
        log.error("database storage full: %s", detail)
        return ResourceExhausted(
            "the service's database storage is full; the operators must free space (nothing was written), then retry",
            reason="STORAGE_FULL",
        )
    if _busy(exc):
        log.warning("database busy: %s", detail)
        return Unavailable(
            "the service's database was busy with another writer longer than its busy timeout; retry with backoff",
            reason=DATABASE_BUSY,
        )
    log.warning("database unavailable: %s", detail)
    return Unavailable("the service's database is unavailable; retry with backoff")


def _busy(exc: DBAPIError) -> bool:
    """SQLite's SQLITE_BUSY / SQLITE_LOCKED ("database is locked"): the file answers, but another writer held it past
    ``busy_timeout``."""
    return getattr(exc.orig, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))
