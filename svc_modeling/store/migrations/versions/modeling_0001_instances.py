"""modeling: instance registry.

Revision ID: modeling_0001
Revises:
Create Date: 2026-11-23
"""

from alembic import op

from svc_common.ops import create_instance_table_op

revision = "modeling_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_instance_table_op(op, "modeling")


def downgrade() -> None:
    op.drop_table("modeling_instance")
