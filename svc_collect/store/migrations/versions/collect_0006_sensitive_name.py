"""collect: ``collect_sensitive_name``, each name of the ``sensitive_properties`` setting and since when every start
found it there, so that masked reads withhold the values stored in clear before it was added (read_masking.py).

Revision ID: collect_0006
Revises: collect_0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "collect_0006"
down_revision = "collect_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collect_sensitive_name",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("since_us", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("collect_sensitive_name")
