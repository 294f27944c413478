"""profile: persons, identities, day buckets, retained events, tags, segments, memberships, outbox,
lifecycle history and the log cursor.

Revision ID: profile_0002
Revises: profile_0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from svc_common.db import JsonText, UtcDateTime

revision = "profile_0002"
down_revision = "profile_0001"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TABLES = (
    "profile_consumer", "profile_day", "profile_event", "profile_identity", "profile_lifecycle", "profile_member",
    "profile_outbox", "profile_person", "profile_segment", "profile_tag", "profile_tag_definition",
)


def upgrade() -> None:
    op.create_table('profile_consumer',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('log_cursor', sa.Text(), nullable=False),
    sa.Column('events', sa.BigInteger(), nullable=False),
    sa.Column('updated_us', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('profile_day',
    sa.Column('profile_id', sa.String(length=36), nullable=False),
    sa.Column('event_type', sa.String(length=128), nullable=False),
    sa.Column('day', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('profile_id', 'event_type', 'day')
    )
    op.create_index('ix_profile_day_type', 'profile_day', ['event_type', 'day'], unique=False)
    op.create_table('profile_event',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('profile_id', sa.String(length=36), nullable=False),
    sa.Column('occurred_us', sa.BigInteger(), nullable=False),
    sa.Column('event_type', sa.String(length=128), nullable=False),
    sa.Column('session_id', sa.String(length=128), nullable=False),
    sa.Column('screen', sa.String(length=256), nullable=False),
    sa.Column('properties', JsonText(), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    op.create_index('ix_profile_event_profile', 'profile_event', ['profile_id', 'occurred_us'], unique=False)
    op.create_index('ix_profile_event_time', 'profile_event', ['occurred_us'], unique=False)
    op.create_index('ix_profile_event_type', 'profile_event', ['event_type', 'occurred_us'], unique=False)
    op.create_table('profile_identity',
    sa.Column('id_value', sa.String(length=256), nullable=False),
    sa.Column('id_type', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('profile_id', sa.String(length=36), nullable=False),
    sa.Column('linked_by', sa.String(length=32), nullable=False),
    sa.Column('linked_us', sa.BigInteger(), nullable=False),
    sa.Column('source_ref', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('id_value', 'id_type')
    )
    op.create_index('ix_profile_identity_profile', 'profile_identity', ['profile_id'], unique=False)
    op.create_table('profile_lifecycle',
    sa.Column('transition_id', _SEQ, autoincrement=True, nullable=False),
    sa.Column('profile_id', sa.String(length=36), nullable=False),
    sa.Column('from_stage', sa.String(length=16), nullable=False),
    sa.Column('to_stage', sa.String(length=16), nullable=False),
    sa.Column('at_us', sa.BigInteger(), nullable=False),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('transition_id')
    )
    op.create_index('ix_profile_lifecycle_profile', 'profile_lifecycle', ['profile_id', 'at_us'], unique=False)
    op.create_index('ix_profile_lifecycle_time', 'profile_lifecycle', ['at_us'], unique=False)
    op.create_table('profile_member',
    sa.Column('segment_id', sa.String(length=64), nullable=False),
    sa.Column('profile_id', sa.String(length=36), nullable=False),
    sa.Column('is_member', sa.Boolean(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('entered_us', sa.BigInteger(), nullable=False),
    sa.Column('changed_us', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('segment_id', 'profile_id')
    )
    op.create_index('ix_profile_member_profile', 'profile_member', ['profile_id'], unique=False)
    op.create_index('ix_profile_member_segment', 'profile_member', ['segment_id', 'is_member', 'profile_id'], unique=False)
    op.create_table('profile_outbox',
    sa.Column('outbox_id', _SEQ, autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('created_us', sa.BigInteger(), nullable=False),
    sa.Column('sent_us', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('outbox_id')
    )
    op.create_index('ix_profile_outbox_unsent', 'profile_outbox', ['sent_us', 'outbox_id'], unique=False)
    op.create_table('profile_person',
    sa.Column('profile_id', sa.String(length=36), nullable=False),
    sa.Column('created_us', sa.BigInteger(), nullable=False),
    sa.Column('updated_us', sa.BigInteger(), nullable=False),
    sa.Column('attributes', JsonText(), nullable=False),
    sa.Column('sealed_attributes', sa.LargeBinary(), nullable=True),
    sa.Column('features', JsonText(), nullable=False),
    sa.Column('lifecycle_stage', sa.String(length=16), nullable=False),
    sa.Column('lifecycle_since_us', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('profile_id')
    )
    op.create_table('profile_segment',
    sa.Column('segment_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('archived', sa.Boolean(), nullable=False),
    sa.Column('member_count', sa.BigInteger(), nullable=False),
    sa.Column('size_computed_us', sa.BigInteger(), nullable=False),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.Column('updated_at', UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('segment_id')
    )
    op.create_table('profile_tag',
    sa.Column('profile_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('tag_value', JsonText(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('writer', sa.String(length=128), nullable=False),
    sa.Column('writer_version', sa.String(length=64), nullable=False),
    sa.Column('written_us', sa.BigInteger(), nullable=False),
    sa.Column('expires_us', sa.BigInteger(), nullable=True),
    sa.Column('trace_id', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('profile_id', 'name')
    )
    op.create_index('ix_profile_tag_name', 'profile_tag', ['name'], unique=False)
    op.create_table('profile_tag_definition',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('version', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('archived', sa.Boolean(), nullable=False),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.Column('updated_at', UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', 'version')
    )

def downgrade() -> None:
    for table in _TABLES:
        op.drop_table(table)
