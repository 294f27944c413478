"""profile: an outbox row keeps svc_collect's rejection of it (profile_outbox).

A row used to be marked sent whatever svc_collect answered, so a rejected (quarantined) ``$segment_*`` or
``$profile_erased`` event was lost. A rejected row now stays unsent with the rejection's reason, message and
quarantine id, when the episode began, how many rejections in a row, and when it is retried (docs/profile.md,
"Transactional outbox"); ``person_key`` keeps each person's rows in order (one sent at a time, a held-back row
holding back the later ones). Nullable columns and one with a default: adding them rewrites no row.

Revision ID: profile_0009
Revises: profile_0008
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "profile_0009"
down_revision = "profile_0008"
branch_labels = None
depends_on = None


def _columns() -> list[sa.Column]:
    return [
        sa.Column("rejected_reason", sa.String(length=64), nullable=True),
        sa.Column("rejected_message", sa.String(length=500), nullable=True),
        sa.Column("rejected_quarantine_id", sa.String(length=36), nullable=True),
        sa.Column("rejected_us", sa.BigInteger(), nullable=True),
        sa.Column("rejections", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("retry_us", sa.BigInteger(), nullable=True),
        sa.Column("person_key", sa.String(length=160), nullable=True),
    ]


def upgrade() -> None:
    for column in _columns():
        op.add_column("profile_outbox", column)
    op.create_index("ix_profile_outbox_person", "profile_outbox", ["person_key", "sent_us", "outbox_id"])


def downgrade() -> None:
    op.drop_index("ix_profile_outbox_person", table_name="profile_outbox")
    for column in reversed(_columns()):
        op.drop_column("profile_outbox", column.name)
