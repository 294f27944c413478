"""campaign: scheduled segment runs (run id, state, progress cursors) and the members of each run being entered.

Revision ID: campaign_0003
Revises: campaign_0002
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from svc_common.db import UtcDateTime

revision = "campaign_0003"
down_revision = "campaign_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign_scheduled_run",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("journey_id", sa.String(64), nullable=False),
        sa.Column("segment_id", sa.String(128), nullable=False),
        sa.Column("scheduled_for", UtcDateTime(), nullable=False),
        sa.Column("run_state", sa.String(16), nullable=False),
        sa.Column("members", sa.BigInteger, nullable=False),
        sa.Column("processed", sa.BigInteger, nullable=False),
        sa.Column("entered", sa.BigInteger, nullable=False),
        sa.Column("without_customer_id", sa.BigInteger, nullable=False),
        sa.Column("export_after", sa.String(128), nullable=False),
        sa.Column("entry_after", sa.String(128), nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
    )
    op.create_index(
        "ix_campaign_scheduled_run_journey", "campaign_scheduled_run", ["journey_id", "scheduled_for"]
    )
    op.create_index("ix_campaign_scheduled_run_state", "campaign_scheduled_run", ["run_state"])
    op.create_table(
        "campaign_scheduled_member",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("profile_id", sa.String(128), primary_key=True),
        sa.Column("user_id", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("campaign_scheduled_member")
    op.drop_index("ix_campaign_scheduled_run_state", "campaign_scheduled_run")
    op.drop_index("ix_campaign_scheduled_run_journey", "campaign_scheduled_run")
    op.drop_table("campaign_scheduled_run")
