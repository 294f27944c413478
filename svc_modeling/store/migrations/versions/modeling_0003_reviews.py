"""modeling: review schedules and reports.

Revision ID: modeling_0003
Revises: modeling_0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from svc_common.db import JsonText, UtcDateTime

revision = "modeling_0003"
down_revision = "modeling_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "modeling_review_schedule",
        sa.Column("schedule_id", sa.String(36), primary_key=True),
        sa.Column("body", JsonText, nullable=False),
        sa.Column("next_run_at", UtcDateTime(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_modeling_review_schedule_next", "modeling_review_schedule", ["next_run_at"])
    op.create_table(
        "modeling_review_report",
        sa.Column("report_id", sa.String(36), primary_key=True),
        sa.Column("schedule_id", sa.String(36), nullable=False),
        sa.Column("body", JsonText, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index(
        "ix_modeling_review_report_schedule", "modeling_review_report", ["schedule_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_table("modeling_review_report")
    op.drop_table("modeling_review_schedule")
