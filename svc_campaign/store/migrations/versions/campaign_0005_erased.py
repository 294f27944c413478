"""campaign: customers erased (campaign_erased), the suppression list that keeps an erasure from being undone.

An erasure (``$profile_erased``) takes a customer out of every journey; an event of theirs from before the erasure
that reaches the log later (an app uploading its backlog) must not enter them again. One row per erased customer id
with the time of the erasure: the id is kept, as the contact history keeps it, so that the broker can prove it
stopped contacting them. The downgrade drops the table.

Revision ID: campaign_0005
Revises: campaign_0004
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from svc_common.db import UtcDateTime

revision = "campaign_0005"
down_revision = "campaign_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign_erased",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("erased_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("campaign_erased")
