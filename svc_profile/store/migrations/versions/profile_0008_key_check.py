"""profile: ``profile_key_check``, the check values of the keys this service's data is protected with, so that a second
host given another keyring for the same database refuses to start (svc_common/ops/_key_check.py).

Revision ID: profile_0008
Revises: profile_0007
Create Date: 2026-12-06
"""

from alembic import op

from svc_common.ops import create_key_check_table_op

revision = "profile_0008"
down_revision = "profile_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_key_check_table_op(op, "profile")


def downgrade() -> None:
    op.drop_table("profile_key_check")
