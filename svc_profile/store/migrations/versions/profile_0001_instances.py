"""profile: instance registry.

Revision ID: profile_0001
Revises:
Create Date: 2026-11-23
"""

from alembic import op

from svc_common.ops import create_instance_table_op

revision = "profile_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_instance_table_op(op, "profile")


def downgrade() -> None:
    op.drop_table("profile_instance")
