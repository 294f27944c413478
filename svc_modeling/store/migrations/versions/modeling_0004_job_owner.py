"""modeling: jobs owned by a process, with a heartbeat.

Revision ID: modeling_0004
Revises: modeling_0003
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from svc_common.db import UtcDateTime

revision = "modeling_0004"
down_revision = "modeling_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows of before: no owner, no heartbeat, so the next process to start treats them as orphans (as before).
    op.add_column("modeling_job", sa.Column("owner_id", sa.String(36), nullable=False, server_default=""))
    op.add_column("modeling_job", sa.Column("heartbeat_at", UtcDateTime(), nullable=True))
    op.create_index("ix_modeling_job_state", "modeling_job", ["job_state", "owner_id"])


def downgrade() -> None:
    op.drop_index("ix_modeling_job_state", table_name="modeling_job")
    op.drop_column("modeling_job", "heartbeat_at")
    op.drop_column("modeling_job", "owner_id")
