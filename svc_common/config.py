"""Typed settings from environment variables and an optional TOML file.

Precedence, highest first: explicit overrides (tests, CLI flags) > environment variables
(``QIMING_<SERVICE>_<FIELD>``) > the TOML file (table ``[<service>]`` over table ``[common]``) >
defaults. Every field carries a docstring (shown by ``qiming config``) and its unit in its name.
A bad value raises :class:`ConfigError` whose one-line message names the key where it came from.
"""

from __future__ import annotations

import contextvars
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from svc_common.errors import ConfigError

CONFIG_FILE_ENV = "QIMING_CONFIG_FILE"
"""Environment variable naming the TOML file, when ``--config`` is not given."""

_toml_values: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("qiming_toml", default=None)


DEFAULT_KEEPALIVE_TIME_SECONDS = 30.0
"""Default of ``grpc_keepalive_time_seconds`` (also the log client's default)."""
DEFAULT_KEEPALIVE_TIMEOUT_SECONDS = 10.0
"""Default of ``grpc_keepalive_timeout_seconds`` (also the log client's default)."""


# The password runs to the last "@" before the next URL (a scheme and "://"): a password with an unencoded "@" or
# "//" is masked whole, and each URL of a comma-separated list keeps its own host.
_URL_PASSWORD = re.compile(r"(//[^:/@\s]*:)(?:(?![A-Za-z][A-Za-z0-9+.-]*://)\S)*@")
# Any query parameter whose name holds one of these: libpq's sslpassword, access_token, client_secret, api_key, …
_QUERY_PASSWORD = re.compile(
    r"(?i)([?&;][\w.-]*?(?:pass|pwd|token|secret|api_?key|access_?key|credential)[\w.-]*=)[^&;\s]*"
)


def redact_url(text: str) -> str:
    """``text`` with the password of every URL in it (``scheme://user:password@host``, also a malformed or a
    comma-separated list of URLs, and query parameters named like a secret: ``password``, ``sslpassword``,
    ``token``, ``access_token``, ``client_secret``, ``api_key``…) replaced by ``***``: for errors and listings."""
    return _QUERY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))


_NATS_SCHEMES = ("nats", "tls", "ws", "wss")


def check_nats_servers(value: str) -> str:
    """``value`` if it is a comma-separated list of NATS server URLs the client can connect to (``nats://``,
    ``tls://``, ``ws://``, ``wss://`` or a bare ``host[:port]``, as nats-py reads them), else ``ValueError`` naming
    the bad entry: a malformed URL otherwise passes ``qiming config`` and fails only at start."""
    entries = [entry.strip() for entry in value.split(",")]
    schemes = set()
    for entry in entries:
        if not entry:
            raise ValueError("an empty server in the list (a stray comma?)")
        shown = redact_url(repr(entry))
        scheme, sep, _ = entry.partition("://")
        if sep and scheme.lower() not in _NATS_SCHEMES:
            raise ValueError(f"server {shown}: scheme {scheme!r} is not one of {', '.join(_NATS_SCHEMES)}")
        try:
            parsed = urlsplit(entry if sep else f"nats://{entry}")
            port = parsed.port
        except ValueError:
            raise ValueError(f"server {shown}: the port is not a TCP port (1 to 65535)") from None
        if not parsed.hostname:
            raise ValueError(f"server {shown} names no host (expected e.g. nats://nats1:4222,nats://nats2:4222)")
        if port == 0:
            raise ValueError(f"server {shown}: the port is not a TCP port (1 to 65535)")
        if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
            raise ValueError(f"server {shown}: a NATS server URL has no path or query")
        schemes.add(parsed.scheme.lower() in ("ws", "wss"))
    if len(schemes) > 1:
        raise ValueError("websocket (ws://, wss://) and other servers cannot be mixed in one list")
    return value


def is_secret_setting(cls: type[BaseSettings], field_name: str) -> bool:
    """A setting whose value is never shown: declared as ``SecretStr``."""
    field = cls.model_fields.get(field_name)
    return field is not None and "SecretStr" in str(field.annotation)


class _TomlTableSource(PydanticBaseSettingsSource):
    """Values read from the TOML file by :func:`load_settings` (already merged for this section)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return (_toml_values.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_toml_values.get() or {})


class _EnvSource(EnvSettingsSource):
    """Environment variables, with lists also written as ``a,b,c`` (JSON ``["a","b"]`` works too) and an empty
    value read as unset (the TOML file's value or the default applies); a value that cannot be read stops start-up
    naming the variable (pydantic-settings would raise a traceback naming neither)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        value, key, is_complex = super().get_field_value(field, field_name)
        if isinstance(value, str) and not value.strip():
            value = None  # an empty variable (a blank line of a .env file) is unset: the file's value applies
        return value, key, is_complex

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text == "":
                return None  # skipped: the TOML value or the default applies, as for other empty variables
            if not text.startswith(("[", "{")) and _is_list_of_scalars(field.annotation):
                items = [part.strip() for part in text.split(",") if part.strip()]
                # Names and roles never hold blanks or quotes: "a b" or '"a"' is a mistyped list, and taking it
                # as one name would silently drop, say, every default sensitive property.
                if any(any(c.isspace() or c in "\"'" for c in item) for item in items):
                    raise ConfigError(
                        f"{env_name(self.settings_cls, field_name)}: a list item holds a blank or a quote (got "
                        f'{redact_url(repr(value))}); write a list as a,b or as JSON ["a", "b"]'
                    )
                return items
        try:
            return json.loads(value)
        except ValueError:
            raise ConfigError(
                f"{env_name(self.settings_cls, field_name)}: not valid JSON (got {redact_url(repr(value))}); "
                'write a list as a,b or as JSON ["a", "b"]'
            ) from None


def _is_list_of_scalars(annotation: Any) -> bool:
    origin = getattr(annotation, "__origin__", None)
    if origin not in (list, tuple, set, frozenset):
        return False
    return all(arg in (str, int, float, Ellipsis) for arg in getattr(annotation, "__args__", ()))


class ServerSettings(BaseSettings):
    """How a gRPC server listens, logs and traces. Shared by every service and by the whole suite."""

    model_config = SettingsConfigDict(
        env_prefix="QIMING_SUITE_", extra="forbid", use_attribute_docstrings=True, validate_default=True
    )
    section: ClassVar[str] = "suite"
    default_grpc_port: ClassVar[int] = 50050

    grpc_host: str = "127.0.0.1"
    """Address the gRPC server binds to; ``0.0.0.0`` or ``[::]`` to listen on every interface."""
    grpc_port: int = Field(default=-1, ge=-1, le=65535)
    """TCP port of the gRPC server; 0 picks a free port (see ``grpc_port_file``); -1 means the service's default."""
    grpc_port_file: Path | None = None
    """If set, the bound port is written to this file once the server is serving (for supervisors and tests)."""
    grpc_max_message_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    """Largest request or response message accepted, in bytes; larger ones get RESOURCE_EXHAUSTED."""
    grpc_reuse_port: bool = False
    """Let other processes listen on the same port (Linux ``SO_REUSEPORT``). Set for its workers by a service's
    ``workers``; off, a second process on the port fails to start instead."""
    grpc_max_concurrent_rpcs: int = Field(default=1000, ge=1)
    """Calls served at once; further calls are refused with RESOURCE_EXHAUSTED instead of queuing without bound."""
    grpc_keepalive_time_seconds: float = Field(default=DEFAULT_KEEPALIVE_TIME_SECONDS, ge=0.1, le=86_400)
    """How often a connection that carries a call but no data is checked with an HTTP/2 ping: by the server (towards
    its callers) and by the log followers of svc_profile/svc_campaign (towards svc_collect, whose follow stream is
    silent while the log is idle). A peer lost without FIN/RST (power loss, a firewall dropping an idle session) is
    then noticed and the call fails (a follower reconnects) instead of waiting forever."""
    grpc_keepalive_timeout_seconds: float = Field(default=DEFAULT_KEEPALIVE_TIMEOUT_SECONDS, ge=0.1, le=3_600)
    """How long a keepalive ping may stay unanswered before the connection is closed as dead."""
    grpc_min_client_ping_interval_seconds: float = Field(default=10.0, ge=0.1, le=86_400)
    """Shortest interval between a caller's pings that the server accepts (also on connections without calls).
    Keep it at or below every caller's ``grpc_keepalive_time_seconds``: a caller pinging more often gets its
    connection closed (GOAWAY ``too_many_pings``)."""
    shutdown_drain_seconds: float = Field(default=0.0, ge=0, le=300)
    """On SIGTERM/SIGINT: how long the server keeps listening and answering, health already ``NOT_SERVING``, so
    that a load balancer probing health takes it out of rotation before the listener closes (set it above the
    probe interval). 0: the listener closes at once and probes see the connection refused."""
    shutdown_grace_seconds: float = Field(default=15.0, ge=0)
    """On SIGTERM/SIGINT, after the drain: how long in-flight calls may run before they are cancelled."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Lowest level written to the log."""
    log_format: Literal["json", "text"] = "json"
    """``json``: one JSON object per line (for log shippers); ``text``: for people at a terminal."""
    telemetry_exporter: Literal["none", "console", "file", "otlp"] = "none"
    """Where trace spans go: nowhere, stdout, ``telemetry_file_path`` (JSON lines) or an OTLP/gRPC collector."""
    telemetry_otlp_endpoint: str = "http://127.0.0.1:4317"
    """OTLP/gRPC collector endpoint, used when ``telemetry_exporter`` is ``otlp``."""
    telemetry_file_path: Path | None = None
    """File that spans are appended to as JSON lines, used when ``telemetry_exporter`` is ``file``."""
    telemetry_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    """Share of new traces that are recorded (parent-based: a sampled caller is always followed)."""
    gc_young_threshold: int = Field(default=10_000, ge=100)
    """Allocations between collections of Python's youngest garbage-collector generation (Python's own default is
    700). Served processes also freeze what exists at start-up out of every collection (see docs/operations.md)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _EnvSource(settings_cls), _TomlTableSource(settings_cls))

    @field_validator("grpc_port_file", "telemetry_file_path", mode="before")
    @classmethod
    def _empty_path_is_unset(cls, value: Any) -> Any:
        # An empty environment variable means "not set", not the current directory.
        return None if value == "" else value

    @field_validator("grpc_port_file", "telemetry_file_path", mode="after")
    @classmethod
    def _server_paths_expanded(cls, value: Path | None) -> Path | None:
        # "~/qiming" means the home directory, as in a shell; SQLite's URL would keep the "~" literally.
        return value.expanduser() if value is not None else None

    def resolved_port(self) -> int:
        return self.default_grpc_port if self.grpc_port == -1 else self.grpc_port


class ServiceSettings(ServerSettings):
    """One service: its server plus its own database."""

    section: ClassVar[str] = "service"
    service_name: ClassVar[str] = "service"

    data_dir: Path = Path("qiming-data")
    """Directory for embedded data (the SQLite file when ``database_url`` is not set)."""
    database_url: str | None = None
    """SQLAlchemy URL: ``sqlite:///path.db`` (default: ``<data_dir>/<service>.db``), ``postgresql+psycopg://…``,
    ``opengauss+psycopg://…`` or ``dm+dmPython://…``."""
    database_pool_size: int = Field(default=10, ge=1)
    """Connections kept open to a server database (ignored for SQLite)."""
    database_max_overflow: int = Field(default=10, ge=0)
    """Extra connections allowed above ``database_pool_size`` under load."""
    database_pool_timeout_seconds: float = Field(default=30.0, gt=0)
    """How long a call waits for a free pooled connection before failing with UNAVAILABLE."""
    database_pool_recycle_seconds: int = Field(default=1800, ge=-1)
    """Connections older than this are replaced (databases and firewalls drop idle ones); -1 never."""
    database_connect_retries: int = Field(default=5, ge=0)
    """Start-up: how many more times to try a database that does not answer."""
    database_connect_retry_interval_millis: int = Field(default=1000, ge=0)
    """Start-up: first wait between connection attempts; doubles each time, capped at 30 s."""
    database_connect_timeout_seconds: int = Field(default=10, ge=1)
    """Driver timeout for opening one connection to a server database."""
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    """SQLite ``PRAGMA synchronous`` under WAL: FULL survives power loss after commit, NORMAL only a crash."""
    sqlite_busy_timeout_millis: int = Field(default=5000, ge=0)
    """How long SQLite waits for another writer's lock before failing."""
    sqlite_cache_mib: int = Field(default=64, ge=2)
    """SQLite page cache per connection, MiB (the default 2 MiB makes large logs read index pages from disk)."""
    migrate_on_start: bool = True
    """Apply pending schema migrations when the service starts (``qiming migrate`` does it on demand)."""
    keyring_file: Path | None = None
    """JSON keyring with the SM4 encryption keys and the pseudonym key, mode 0600. Unset: ``<data_dir>/keyring.json``,
    created with random keys on first start. Every service must use the same keyring (pseudonyms must match)."""
    keyring_json: SecretStr | None = None
    """The keyring itself as JSON (e.g. injected by a secrets manager); takes precedence over ``keyring_file``."""
    audit_chain_dir: Path | Literal["off"] | None = None
    """Directory of the tamper-evident audit files (one HMAC-SM3 chained JSON line per audited call, next to the
    ``qiming.audit`` log line; check them with ``qiming audit verify``). Unset: ``<data_dir>/audit``; ``off`` writes
    none. Must be writable by the service user."""
    audit_chain_rotate_bytes: int = Field(default=256 * 1024 * 1024, ge=0)
    """An audit file is closed and the chain goes on in a new one before it would grow past this size, bytes (0: no
    size limit). Files are also rotated when the UTC date changes."""
    audit_chain_queue_lines: int = Field(default=20_000, ge=1)
    """Most audit lines waiting in memory for the disk, lines. A call that finds the queue full waits (see
    ``audit_chain_queue_wait_seconds``) before it runs, then fails with UNAVAILABLE, reason ``AUDIT_BACKLOG``."""
    audit_chain_queue_wait_seconds: float = Field(default=1.0, ge=0, le=60)
    """How long a call waits for room in a full audit queue before it fails with UNAVAILABLE, seconds."""

    @field_validator("keyring_file", "keyring_json", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("audit_chain_dir", mode="before")
    @classmethod
    def _audit_off(cls, value: Any) -> Any:
        # Only "off" turns it off: an empty value means the default, as for every path (an empty variable is unset),
        # so a blank line in a .env file never stops the audit trail.
        if isinstance(value, str) and value.strip().lower() in ("", "off"):
            return "off" if value.strip() else None
        return value

    @field_validator("data_dir", "keyring_file", "audit_chain_dir", mode="after")
    @classmethod
    def _service_paths_expanded(cls, value: Any) -> Any:
        return value.expanduser() if isinstance(value, Path) else value

    def resolved_audit_chain_dir(self) -> Path | None:
        if self.audit_chain_dir == "off":
            return None
        return self.audit_chain_dir if isinstance(self.audit_chain_dir, Path) else self.data_dir / "audit"

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        from svc_common.db import validate_database_url

        try:
            validate_database_url(value)
        except ConfigError as exc:  # pydantic reports ValueErrors with the field they belong to
            raise ValueError(str(exc)) from None
        return value

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / f'{self.service_name}.db').as_posix()}"


SettingsT = TypeVar("SettingsT", bound=ServerSettings)


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse the TOML file; a missing or malformed file is a :class:`ConfigError` naming it."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:  # a permission, or a directory where the file should be: no restart would help
        raise ConfigError(
            f"config file {path} cannot be read ({exc.strerror}); it must be readable by the service user"
        ) from None


def env_name(cls: type[ServerSettings], field_name: str) -> str:
    """The environment variable of a setting, e.g. ``QIMING_COLLECT_WORKERS``."""
    return f"{cls.model_config['env_prefix']}{field_name}".upper()


def _reject_unknown_tables_and_common_keys(document: dict[str, Any], path: Path | None) -> None:
    """A typo in a table name or in a [common] key must not pass silently (it would be ignored by every service)."""
    from svc_common.suite import SERVICE_NAMES, entries

    known_tables = {"common", "suite", *SERVICE_NAMES}
    for table in document:
        if table not in known_tables:
            raise ConfigError(f"config file {path}: unknown table [{table}]; expected one of {sorted(known_tables)}")
    common = document.get("common", {})
    if not isinstance(common, dict):
        raise ConfigError(f"config file {path}: [common] must be a table")
    known_keys = set(ServerSettings.model_fields).union(*(e.settings_class.model_fields for e in entries()))
    for key in common:
        if key not in known_keys:
            raise ConfigError(f"config file {path}: [common] {key}: unknown setting (no service has it)")


def load_settings(cls: type[SettingsT], config_file: Path | str | None = None, **overrides: Any) -> SettingsT:
    """Build ``cls`` from overrides, environment and TOML file; raise :class:`ConfigError` on any bad key."""
    path = (
        Path(config_file)
        if config_file
        else (Path(os.environ[CONFIG_FILE_ENV]) if os.environ.get(CONFIG_FILE_ENV) else None)
    )
    document = read_config_file(path) if path else {}
    _reject_unknown_tables_and_common_keys(document, path)
    merged: dict[str, Any] = {}
    for table in ("common", cls.section):
        values = document.get(table, {})
        if not isinstance(values, dict):
            raise ConfigError(f"config file {path}: [{table}] must be a table")
        for key, value in values.items():
            # [common] carries keys of every service; keep those this class knows.
            if table == "common" and key not in cls.model_fields:
                continue
            merged[key] = value
    _reject_unknown_env(cls)
    token = _toml_values.set(merged)
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(cls, exc, path, merged, overrides)) from None
    finally:
        _toml_values.reset(token)


def _reject_unknown_env(cls: type[ServerSettings]) -> None:
    # A typo in an env var would otherwise be ignored silently and the default used.
    prefix = cls.model_config["env_prefix"].upper()
    known = {env_name(cls, name) for name in cls.model_fields}
    for name in os.environ:
        if name.upper().startswith(prefix) and name.upper() not in known:
            raise ConfigError(f"{name}: unknown setting for {cls.section} (see `qiming config {cls.section}`)")


def _describe(
    cls: type[ServerSettings], exc: ValidationError, path: Path | None, toml: dict[str, Any], overrides: dict
) -> str:
    parts = []
    for error in exc.errors():
        if not error["loc"]:  # a rule across settings (a model validator): its message names them
            parts.append(f"[{cls.section}] settings: {error['msg'].removeprefix('Value error, ')}")
            continue
        field_name = str(error["loc"][0])
        env = env_name(cls, field_name)
        if field_name in overrides:
            where = f"{field_name} (argument)"
        elif (os.environ.get(env) or os.environ.get(env.lower()) or "").strip():  # an empty one is unset
            where = env
        elif field_name in toml:
            where = f"{path} [{cls.section}] {field_name}"
        else:
            where = f"{field_name} ({env})"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        elif error["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        elif "input" in error and error["type"] != "missing" and not is_secret_setting(cls, field_name):
            message = f"{message} (got {redact_url(repr(error['input']))})"  # a secret's input is never echoed
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def describe_fields(cls: type[ServerSettings]) -> list[tuple[str, str, Any, str]]:
    """(env var, TOML key, default, doc) for each field: for ``qiming config`` and the docs."""
    rows = []
    for name, info in cls.model_fields.items():
        default = info.get_default(call_default_factory=True)
        rows.append((env_name(cls, name), name, default, (info.description or "").replace("\n", " ")))
    return rows
