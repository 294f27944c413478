"""collect: the embedded event log, its head row, event schemas, quarantine and per-minute counts.

Revision ID: collect_0002
Revises: collect_0001
Create Date: 2026-11-23
"""

import uuid

import sqlalchemy as sa
from alembic import op

from svc_common.db import JsonText, UtcDateTime

revision = "collect_0002"
down_revision = "collect_0001"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "collect_event",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=True),
        sa.Column("anonymous_id", sa.String(128), nullable=True),
        sa.Column("occurred_at_us", sa.BigInteger, nullable=False),
        sa.Column("received_at_us", sa.BigInteger, nullable=False),
        sa.Column("fingerprint", sa.String(32), nullable=False),
        sa.Column("flags", sa.Integer, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("sealed_values", sa.LargeBinary, nullable=True),
    )
    op.create_index("ux_collect_event_event_id", "collect_event", ["event_id"], unique=True)
    op.create_index("ix_collect_event_type_seq", "collect_event", ["event_type", "seq"])
    op.create_index("ix_collect_event_user_seq", "collect_event", ["user_id", "seq"])
    op.create_index("ix_collect_event_anon_seq", "collect_event", ["anonymous_id", "seq"])
    op.create_index("ix_collect_event_received", "collect_event", ["received_at_us"])

    head = op.create_table(
        "collect_log_head",
        sa.Column("head_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("log_id", sa.String(36), nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("last_received_us", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(head, [{"head_id": 1, "log_id": str(uuid.uuid4()), "last_seq": 0, "last_received_us": 0}])

    op.create_table(
        "collect_event_schema",
        sa.Column("event_type", sa.String(128), primary_key=True),
        sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("properties", JsonText, nullable=False),
        sa.Column("reject_unknown", sa.Boolean, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
    )

    op.create_table(
        "collect_quarantine",
        sa.Column("quarantine_id", sa.String(36), primary_key=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("field_path", sa.String(256), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("quarantined_at_us", sa.BigInteger, nullable=False),
        sa.Column("replay_count", sa.Integer, nullable=False),
        sa.Column("released_seq", sa.BigInteger, nullable=True),
        sa.Column("released_at_us", sa.BigInteger, nullable=True),
        sa.Column("sealed_event", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_collect_quarantine_time", "collect_quarantine", ["quarantined_at_us"])
    op.create_index("ix_collect_quarantine_type", "collect_quarantine", ["event_type", "quarantined_at_us"])

    op.create_table(
        "collect_ingest_stat",
        sa.Column("minute_us", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("event_type", sa.String(128), primary_key=True),
        sa.Column("accepted_count", sa.BigInteger, nullable=False),
        sa.Column("duplicate_count", sa.BigInteger, nullable=False),
        sa.Column("rejected_count", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("collect_ingest_stat", "collect_quarantine", "collect_event_schema", "collect_log_head"):
        op.drop_table(table)
    op.drop_table("collect_event")
