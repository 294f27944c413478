"""campaign: ``campaign_key_check``, the check values of the keys this service's data is protected with, so that a second
host given another keyring for the same database refuses to start (svc_common/ops/_key_check.py).

Revision ID: campaign_0009
Revises: campaign_0008
Create Date: 2026-12-06
"""

from alembic import op

from svc_common.ops import create_key_check_table_op

revision = "campaign_0009"
down_revision = "campaign_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_key_check_table_op(op, "campaign")


def downgrade() -> None:
    op.drop_table("campaign_key_check")
