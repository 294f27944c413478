"""svc_profile's tables. Hot-path times are integer microseconds since the epoch (UTC): exact, portable and
free of per-row conversion; definitions keep their protobuf as bytes, the contract being the schema."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from svc_common.db import JsonText, UtcDateTime

SeqType = BigInteger().with_variant(Integer(), "sqlite")


def define_tables(metadata: MetaData) -> dict[str, Table]:
    person = Table(
        "profile_person",
        metadata,
        Column("profile_id", String(36), primary_key=True),
        Column("created_us", BigInteger, nullable=False),
        Column("updated_us", BigInteger, nullable=False),
        # Declared attributes at levels 1-2 as {name: [kind, value, source_system, updated_us]}.
        Column("attributes", JsonText, nullable=False),
        # Level 3+ attributes, the same JSON sealed with SM4-GCM bound to the profile id.
        Column("sealed_attributes", LargeBinary, nullable=True),
        # Behavioural features kept incrementally ({name: [kind, value]}); windowed counts live in profile_day.
        Column("features", JsonText, nullable=False),
        Column("lifecycle_stage", String(16), nullable=False),
        Column("lifecycle_since_us", BigInteger, nullable=False),
    )
    identity = Table(
        "profile_identity",
        metadata,
        # Value first: a lookup by value (any type) and the batch lookup ``id_value IN (...)`` use the key.
        Column("id_value", String(256), primary_key=True),
        Column("id_type", Integer, primary_key=True, autoincrement=False),
        Column("profile_id", String(36), nullable=False),
        Column("linked_by", String(32), nullable=False),
        Column("linked_us", BigInteger, nullable=False),
        Column("source_ref", String(128), nullable=False),
        Index("ix_profile_identity_profile", "profile_id"),
    )
    customer = Table(
        "profile_customer",
        metadata,
        # The customer number (ID_TYPE_CUSTOMER) of each profile holding one, written with its identity link in the
        # same transaction (profile_0007): the key makes a second customer number on one profile fail in the
        # database too, on every database (no partial index needed); customer_id is unique as in profile_identity.
        Column("profile_id", String(36), primary_key=True),
        Column("customer_id", String(256), nullable=False),
        UniqueConstraint("customer_id", name="uq_profile_customer_id"),
    )
    day = Table(
        "profile_day",
        metadata,
        # Events of one type by one person on one day (see ``day_offset_hours``): rolling windows sum these.
        Column("profile_id", String(36), primary_key=True),
        Column("event_type", String(128), primary_key=True),
        Column("day", Integer, primary_key=True, autoincrement=False),
        Column("n", BigInteger, nullable=False),
        Column("amount_fen", BigInteger, nullable=False),
        Index("ix_profile_day_type", "event_type", "day"),
    )
    event = Table(
        "profile_event",
        metadata,
        # The compact event history (retention: ``event_retention_days``) for funnels, paths, filters. Keyed by
        # person and time (what every read of one person uses), the event id last: it keeps a replayed event
        # out, without an index of its own in random order (profile_0003).
        Column("event_id", String(36), nullable=False),
        Column("profile_id", String(36), nullable=False),
        Column("occurred_us", BigInteger, nullable=False),
        Column("event_type", String(128), nullable=False),
        Column("session_id", String(128), nullable=False),
        Column("screen", String(256), nullable=False),
        # Level 1-2 scalar properties ({name: [kind, value]}).
        Column("properties", JsonText, nullable=False),
        # What event filters read besides (profile_0006), NULL when the event had none and in rows stored before:
        # the Channel number, the event's ids, its context fields but screen and ip ({name: text}).
        Column("channel", SmallInteger, nullable=True),
        Column("user_id", String(256), nullable=True),
        Column("anonymous_id", String(256), nullable=True),
        Column("context_fields", JsonText, nullable=True),
        PrimaryKeyConstraint("profile_id", "occurred_us", "event_id", name="pk_profile_event"),
        Index("ix_profile_event_type", "event_type", "occurred_us"),
        Index("ix_profile_event_time", "occurred_us"),
    )
    tag_definition = Table(
        "profile_tag_definition",
        metadata,
        Column("name", String(64), primary_key=True),
        Column("version", BigInteger, primary_key=True, autoincrement=False),
        # The TagDefinition as sent (protobuf bytes).
        Column("body", LargeBinary, nullable=False),
        Column("archived", Boolean, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
    )
    tag = Table(
        "profile_tag",
        metadata,
        Column("profile_id", String(36), primary_key=True),
        Column("name", String(64), primary_key=True),
        Column("tag_value", JsonText, nullable=False),
        # Tags of sensitivity level 3+: the value's JSON sealed with SM4-GCM bound to (profile, name); tag_value
        # then holds the marker ["sealed"] (profile_0005, store/_tagsql.py).
        Column("sealed_value", LargeBinary, nullable=True),
        # RULE, MODEL, IMPORT, MANUAL (Provenance.Source names).
        Column("source", String(16), nullable=False),
        Column("writer", String(128), nullable=False),
        Column("writer_version", String(64), nullable=False),
        Column("written_us", BigInteger, nullable=False),
        Column("expires_us", BigInteger, nullable=True),
        Column("trace_id", String(32), nullable=False),
        # By tag, then expiry: the time sweep's "values of these tags that expired since the last sweep" is a range
        # of this index (profile_0007); reads by tag alone use its prefix.
        Index("ix_profile_tag_name_expiry", "name", "expires_us"),
    )
    segment = Table(
        "profile_segment",
        metadata,
        Column("segment_id", String(64), primary_key=True),
        Column("version", BigInteger, nullable=False),
        # The Segment as defined (protobuf bytes, output-only fields cleared).
        Column("body", LargeBinary, nullable=False),
        Column("archived", Boolean, nullable=False),
        Column("member_count", BigInteger, nullable=False),
        Column("size_computed_us", BigInteger, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
    )
    member = Table(
        "profile_member",
        metadata,
        # Membership state of one person in one segment; ``seq`` counts its transitions (outbox event ids).
        Column("segment_id", String(64), primary_key=True),
        Column("profile_id", String(36), primary_key=True),
        Column("is_member", Boolean, nullable=False),
        Column("seq", BigInteger, nullable=False),
        Column("entered_us", BigInteger, nullable=False),
        Column("changed_us", BigInteger, nullable=False),
        Index("ix_profile_member_segment", "segment_id", "is_member", "profile_id"),
        Index("ix_profile_member_profile", "profile_id"),
    )
    outbox = Table(
        "profile_outbox",
        metadata,
        # Segment changes to publish, written in the transaction of the change; sent after commit.
        Column("outbox_id", SeqType, primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False),
        Column("body", LargeBinary, nullable=False),
        Column("created_us", BigInteger, nullable=False),
        Column("sent_us", BigInteger, nullable=True),
        # svc_collect's last rejection of the row (it stays unsent, retried from ``retry_us``): its reason, message
        # and quarantine id, when the episode began and how many rejections in a row.
        Column("rejected_reason", String(64), nullable=True),
        Column("rejected_message", String(500), nullable=True),
        Column("rejected_quarantine_id", String(36), nullable=True),
        Column("rejected_us", BigInteger, nullable=True),
        Column("rejections", Integer, nullable=False, server_default="0"),
        Column("retry_us", BigInteger, nullable=True),
        # Whose change it is (the customer number, else the profile id): a person's rows are sent in order, one at a
        # time, so a row held back after a rejection holds back that person's later rows. NULL: rows written before.
        Column("person_key", String(160), nullable=True),
        Index("ix_profile_outbox_unsent", "sent_us", "outbox_id"),
        Index("ix_profile_outbox_person", "person_key", "sent_us", "outbox_id"),
    )
    lifecycle = Table(
        "profile_lifecycle",
        metadata,
        Column("transition_id", SeqType, primary_key=True, autoincrement=True),
        Column("profile_id", String(36), nullable=False),
        Column("from_stage", String(16), nullable=False),
        Column("to_stage", String(16), nullable=False),
        Column("at_us", BigInteger, nullable=False),
        Column("rule", String(64), nullable=False),
        Index("ix_profile_lifecycle_profile", "profile_id", "at_us"),
        Index("ix_profile_lifecycle_time", "at_us"),
    )
    consumer = Table(
        "profile_consumer",
        metadata,
        # The log cursor, stored in the transaction of the batch it ends: exactly-once effects.
        Column("name", String(64), primary_key=True),
        Column("log_cursor", Text, nullable=False),
        Column("events", BigInteger, nullable=False),
        Column("updated_us", BigInteger, nullable=False),
    )
    job = Table(
        "profile_job",
        metadata,
        # Recompute jobs (svc_profile/jobs.py): what GetJob answers after a restart or from another process, and
        # what a process resumes when the one running a job is gone (its heartbeat stopped).
        Column("job_id", String(64), primary_key=True),
        # recompute_segment or recompute_tag: with result_name (the segment id or tag name) all a resume needs,
        # since a recompute evaluates the current definition.
        Column("kind", String(32), nullable=False),
        Column("result_name", String(64), nullable=False),
        # RUNNING, SUCCEEDED, FAILED, CANCELLED (JobState names without the prefix).
        Column("state", String(16), nullable=False),
        Column("progress_percent", Float, nullable=False),
        Column("progress_message", String(512), nullable=False),
        Column("error_reason", String(64), nullable=False),
        Column("error_message", Text, nullable=False),
        Column("created_by", String(128), nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("started_at", UtcDateTime(), nullable=False),
        Column("finished_at", UtcDateTime(), nullable=True),
        # The process (Jobs instance) running it and when it last said so; NULL heartbeat: released at stop.
        Column("owner_id", String(36), nullable=False),
        Column("heartbeat_at", UtcDateTime(), nullable=True),
        Index("ix_profile_job_state", "state", "heartbeat_at"),
        Index("ix_profile_job_finished", "finished_at"),
    )
    return {
        "job": job,
        "person": person,
        "identity": identity,
        "customer": customer,
        "day": day,
        "event": event,
        "tag_definition": tag_definition,
        "tag": tag,
        "segment": segment,
        "member": member,
        "outbox": outbox,
        "lifecycle": lifecycle,
        "consumer": consumer,
    }
