"""profile: recompute jobs kept in the database (profile_job).

Jobs lived in the memory of the process that ran them: a restart forgot them (GetJob NOT_FOUND) and a
recompute cut short by a crash stayed half done. The table keeps each job's state, progress and end, and the
owner process with its heartbeat, so that a job whose process is gone is resumed by the next one to look
(docs/profile.md, "Recompute jobs").

Revision ID: profile_0004
Revises: profile_0003
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from svc_common.db import UtcDateTime

revision = "profile_0004"
down_revision = "profile_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "profile_job",
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("result_name", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("progress_percent", sa.Float(), nullable=False),
        sa.Column("progress_message", sa.String(length=512), nullable=False),
        sa.Column("error_reason", sa.String(length=64), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("owner_id", sa.String(length=36), nullable=False),
        sa.Column("heartbeat_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("job_id"),
    )
    op.create_index("ix_profile_job_state", "profile_job", ["state", "heartbeat_at"], unique=False)
    op.create_index("ix_profile_job_finished", "profile_job", ["finished_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_profile_job_finished", table_name="profile_job")
    op.drop_index("ix_profile_job_state", table_name="profile_job")
    op.drop_table("profile_job")
