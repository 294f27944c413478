"""svc_collect's tables. Times in the hot tables are integer microseconds since the epoch (UTC): exact,
portable to every database, and free of per-row conversion on the ingest path."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, LargeBinary, MetaData, String, Table, Text

from svc_common.db import JsonText, UtcDateTime

# SQLite uses the rowid for an INTEGER PRIMARY KEY: the log's order key costs no extra index there.
SeqType = BigInteger().with_variant(Integer(), "sqlite")


def define_tables(metadata: MetaData) -> dict[str, Table]:
    event = Table(
        "collect_event",
        metadata,
        # Position in the log, assigned in commit order by the single writer of the moment (see _log.py).
        Column("seq", SeqType, primary_key=True, autoincrement=False),
        Column("event_id", String(36), nullable=False),
        Column("event_type", String(128), nullable=False),
        Column("user_id", String(128), nullable=True),
        Column("anonymous_id", String(128), nullable=True),
        Column("occurred_at_us", BigInteger, nullable=False),
        # Rises with seq (see _log.py): found by binary search over seq, so it needs no index of its own.
        Column("received_at_us", BigInteger, nullable=False),
        # Keyed HMAC-SM3 of the event as sent: a re-sent id with other content is told apart.
        Column("fingerprint", String(32), nullable=False),
        # Bit set of accepted-with-a-flag conditions (see svc_collect.validation.FLAG_*).
        Column("flags", Integer, nullable=False, default=0),
        # The event as stored (protobuf), level 3+ values removed ...
        Column("payload", LargeBinary, nullable=False),
        # ... and kept here, SM4-GCM sealed, bound to the event id.
        Column("sealed_values", LargeBinary, nullable=True),
        Index("ux_collect_event_event_id", "event_id", unique=True),
        Index("ix_collect_event_type_seq", "event_type", "seq"),
    )
    head = Table(
        "collect_log_head",
        metadata,
        # One row: the last position written. Writers lock it, so positions follow commit order.
        Column("head_id", Integer, primary_key=True, autoincrement=False),
        # Random id of this log: a cursor from another log (a restored or different database) is refused.
        Column("log_id", String(36), nullable=False),
        Column("last_seq", BigInteger, nullable=False),
        Column("last_received_us", BigInteger, nullable=False),
    )
    schema = Table(
        "collect_event_schema",
        metadata,
        Column("event_type", String(128), primary_key=True),
        Column("version", BigInteger, primary_key=True, autoincrement=False),
        Column("description", Text, nullable=False, default=""),
        # The PropertySpec list as JSON (name, type, required, allowed values, limits, sensitivity).
        Column("properties", JsonText, nullable=False),
        Column("reject_unknown", Boolean, nullable=False, default=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("created_by", String(128), nullable=False, default=""),
    )
    quarantine = Table(
        "collect_quarantine",
        metadata,
        Column("quarantine_id", String(36), primary_key=True),
        # As sent (it may be the very thing that is invalid), cut to fit.
        Column("event_id", String(64), nullable=False),
        Column("event_type", String(128), nullable=False),
        Column("reason", String(64), nullable=False),
        Column("field_path", String(256), nullable=False),
        Column("message", Text, nullable=False),
        Column("quarantined_at_us", BigInteger, nullable=False),
        Column("replay_count", Integer, nullable=False, default=0),
        # Set when a replay let it into the log.
        Column("released_seq", BigInteger, nullable=True),
        Column("released_at_us", BigInteger, nullable=True),
        # The whole event as sent, SM4-GCM sealed (its level 3+ values are unknown until it is valid).
        Column("sealed_event", LargeBinary, nullable=False),
        Index("ix_collect_quarantine_time", "quarantined_at_us"),
        Index("ix_collect_quarantine_type", "event_type", "quarantined_at_us"),
    )
    stat = Table(
        "collect_ingest_stat",
        metadata,
        Column("minute_us", BigInteger, primary_key=True, autoincrement=False),
        Column("event_type", String(128), primary_key=True),
        Column("accepted_count", BigInteger, nullable=False, default=0),
        Column("duplicate_count", BigInteger, nullable=False, default=0),
        Column("rejected_count", BigInteger, nullable=False, default=0),
    )
    sensitive_name = Table(
        "collect_sensitive_name",
        metadata,
        # A name of the sensitive_properties setting, and since when (µs) every start found it there: masked reads
        # withhold its values stored in clear by events received before (read_masking.py).
        Column("name", String(128), primary_key=True),
        Column("since_us", BigInteger, nullable=False),
    )
    return {
        "event": event,
        "head": head,
        "schema": schema,
        "quarantine": quarantine,
        "stat": stat,
        "sensitive_name": sensitive_name,
    }
