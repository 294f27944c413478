"""Settings of svc_collect: environment ``QIMING_COLLECT_*`` or TOML table ``[collect]``."""

import importlib.util
from typing import ClassVar, Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from svc_collect._schema_rules import PROPERTY_NAME_RE
from svc_common.config import ServiceSettings, check_nats_servers
from svc_common.protection._levels import DEFAULT_SENSITIVE_PROPERTIES


class CollectSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QIMING_COLLECT_")
    section: ClassVar[str] = "collect"
    service_name: ClassVar[str] = "collect"
    default_grpc_port: ClassVar[int] = 50051

    workers: int = Field(default=1, ge=1, le=256)
    """Processes serving the collector's port (Linux ``SO_REUSEPORT``: the kernel spreads connections across them).
    One process uses about one core; see docs/collect.md for when more pay off (not on SQLite)."""
    max_batch_events: int = Field(default=10_000, ge=1, le=1_000_000)
    """Events in one Ingest request or stream message; a larger batch fails whole with RESOURCE_EXHAUSTED."""
    max_event_bytes: int = Field(default=65_536, ge=1024)
    """Serialized size of one event; a larger one is rejected (EVENT_TOO_LARGE) and quarantined."""
    max_string_chars: int = Field(default=8_192, ge=16)
    """Characters in one string property or context field; longer ones are rejected (STRING_TOO_LONG)."""
    max_properties_per_event: int = Field(default=256, ge=1)
    """Properties on one event; more are rejected."""
    unknown_event_type_policy: Literal["accept", "quarantine"] = "accept"
    """An event type with no registered schema: accept it (validated for form only) or quarantine it."""
    max_future_skew_seconds: int = Field(default=300, ge=0)
    """``occurred_at`` later than the server clock by more than this is out of range."""
    max_event_age_seconds: int = Field(default=30 * 86_400, ge=60)
    """``occurred_at`` older than this (e.g. events an app buffered offline for weeks) is out of range."""
    out_of_range_time_policy: Literal["flag", "quarantine"] = "flag"
    """An out-of-range ``occurred_at``: accept it with a flag on the event, or quarantine it."""
    native_checks: bool = True
    """Check events in C first where the install has the collector's C extension (the Python check takes every event
    the C one is not sure of, and words every rejection); false: every event in Python (the same answers, slower)."""
    sensitive_properties: tuple[str, ...] = DEFAULT_SENSITIVE_PROPERTIES
    """Property names treated as level 3 (encrypted at rest) when the event type's schema does not classify them."""
    unmask_roles: tuple[str, ...] = ("unmask", "admin")
    """Roles whose callers may read level 3+ values decrypted (ReadEvents ``unmask``)."""
    commit_max_events: int = Field(default=20_000, ge=1)
    """Group commit: concurrent batches are written in one transaction of at most this many events."""
    read_batch_events: int = Field(default=500, ge=1, le=10_000)
    """Events per ReadEvents response message when the request does not say."""
    follow_poll_interval_millis: int = Field(default=100, ge=5)
    """ReadEvents ``follow``: how often to look for events other collectors appended to a shared log (an append
    of this process wakes its followers at once)."""

    dependency_probe_interval_millis: int = Field(default=2_000, ge=0, le=600_000)
    """How often health asks the service database (and, on the JetStream backend, NATS) whether it answers; the
    gRPC health status is NOT_SERVING while one does not (an answer slower than the interval counts as none).
    0: health does not follow them."""

    log_backend: Literal["sql", "jetstream"] = "sql"
    """Where accepted events go: ``sql``, the embedded log in the service database (default), or
    ``jetstream``, a NATS JetStream stream (scale-out; schemas, quarantine and statistics stay in the
    service database). See docs/collect.md, "Backends of the log"."""
    nats_url: str = "nats://127.0.0.1:4222"
    """NATS server(s) of the JetStream log, comma-separated; ``nats://user:password@host:port`` for auth."""
    jetstream_stream: str = Field(default="QIMING_EVENTS", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """Name of the JetStream stream holding the log (created on first start if missing)."""
    jetstream_subject_prefix: str = Field(default="qiming.events", pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
    """Subjects are ``<prefix>.<shard>``; the shard is a stable hash of the user."""
    jetstream_shards: int = Field(default=1, ge=1, le=1024)
    """Number of shard subjects (CRC-32 of the user). Each group commit stores one message per shard it touches,
    and a server run with ``sync_interval: always`` fsyncs each message: on one server, 16 shards made an
    acknowledgement 6-10x slower than 1 (docs/collect.md). Raise it where messages are not fsynced one by one
    (R3 replicas) and consumers read shards in parallel. Recorded in the stream at creation and checked at start:
    it is fixed for the life of a stream."""
    jetstream_replicas: int = Field(default=1, ge=1, le=5)
    """Stream replicas when the stream is created (3 on a cluster: an ack then means a quorum has it)."""
    jetstream_max_age_days: int = Field(default=0, ge=0)
    """Retention of the stream when it is created; 0 keeps events until deleted by an operator."""
    jetstream_dedup_window_seconds: int = Field(default=3_600, ge=60)
    """Exactly-once by event_id holds for ids first seen within this window (an index in memory,
    about 160 bytes per event, per worker process: size it as events/s × window). Older ids re-sent are appended
    again."""
    jetstream_publish_timeout_millis: int = Field(default=10_000, ge=100)
    """How long to wait for JetStream's ack of one pack before retrying it (same message id)."""
    nats_ping_interval_seconds: float = Field(default=5.0, ge=0.5, le=600)
    """How often the collector pings NATS when the connection is quiet; two unanswered pings drop the connection. A
    server that hangs without closing the socket (stopped, a black-holed network) is then known down within about
    three intervals, and calls are answered UNAVAILABLE at once instead of after twice the publish timeout. nats-py's
    own default is 120 s (four minutes to notice)."""
    jetstream_pack_format: Literal["auto", "rows", "columns"] = "auto"
    """How packs are written: ``columns`` (this release; ~3 µs less CPU per event) or ``rows`` (all earlier releases
    can read). ``auto``: columns on a stream this release made or marked, rows on an earlier release's stream, so
    collectors of both releases can share it during a rolling upgrade. Set ``columns`` once every collector on the
    stream runs this release: the stream is marked, and earlier releases can no longer read what is written."""
    jetstream_max_pack_bytes: int = Field(default=900_000, ge=10_000)
    """Upper bound of one JetStream message (a pack of events); kept under the server's max_payload."""
    undeclared_pii: Literal["seal", "mask", "reject", "off"] = "seal"
    """Personal data found by content (a mobile, identity or bank card number, an e-mail address) in a string property
    or context field its schema does not declare at level 3+: ``seal`` it as a level-3 value (default: nothing is
    lost and nothing stays in clear), ``mask`` it in place (``****`` and the last 4 digits), ``reject`` the event to
    quarantine (UNDECLARED_PERSONAL_DATA), or ``off``. See docs/collect.md, "Personal data no schema declares"."""

    @field_validator("nats_url")
    @classmethod
    def _nats_servers(cls, value: str) -> str:
        return check_nats_servers(value)

    @field_validator("sensitive_properties", mode="after")
    @classmethod
    def _property_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Each is recorded (collect_sensitive_name, 128 characters) and matched against property names: one that no
        # property can have would protect nothing, silently.
        for name in value:
            if not PROPERTY_NAME_RE.fullmatch(name):
                raise ValueError(f"{name[:140]!r} is not a property name ({PROPERTY_NAME_RE.pattern})")
        return value

    @field_validator("log_backend", mode="after")
    @classmethod
    def _backend_installed(cls, value: str) -> str:
        # Checked with the settings (also by `qiming config`): a missing extra is a configuration problem (exit 2),
        # not a traceback that systemd restarts for ever.
        if value == "jetstream" and importlib.util.find_spec("nats") is None:
            raise ValueError("the jetstream log needs the nats extra, not installed here: pip install 'qiming[nats]'")
        return value
