"""campaign: every consent record ever set (campaign_consent_history), the proof of when a customer granted or
withdrew what, and through which source (PIPL); campaign_consent keeps only the one in force, which a withdrawal
overwrote. The upgrade copies each record in force as the first of its history (what came before it is not known).
The downgrade drops the table.

Revision ID: campaign_0007
Revises: campaign_0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from svc_common.db import UtcDateTime

revision = "campaign_0007"
down_revision = "campaign_0006"
branch_labels = None
depends_on = None

_COLUMNS = "user_id, channel, purpose, granted, source, updated_at"


def upgrade() -> None:
    op.create_table(
        "campaign_consent_history",
        sa.Column("history_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.Integer, nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("granted", sa.Boolean, nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_campaign_consent_history_user", "campaign_consent_history", ["user_id", "history_id"])
    op.execute(
        f"INSERT INTO campaign_consent_history ({_COLUMNS}) SELECT {_COLUMNS} FROM campaign_consent"
        " ORDER BY updated_at, user_id, channel, purpose"
    )


def downgrade() -> None:
    op.drop_index("ix_campaign_consent_history_user", table_name="campaign_consent_history")
    op.drop_table("campaign_consent_history")
