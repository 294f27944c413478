"""collect: ``collect_key_check``, the check values of the keys this service's data is protected with, so that a second
host given another keyring for the same database refuses to start (svc_common/ops/_key_check.py).

Revision ID: collect_0005
Revises: collect_0004
Create Date: 2026-12-06
"""

from alembic import op

from svc_common.ops import create_key_check_table_op

revision = "collect_0005"
down_revision = "collect_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_key_check_table_op(op, "collect")


def downgrade() -> None:
    op.drop_table("collect_key_check")
