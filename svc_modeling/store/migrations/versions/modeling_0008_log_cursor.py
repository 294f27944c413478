"""modeling: the cursor of svc_modeling's follower of svc_collect's log, which reads svc_profile's erasures
(``$profile_erased``) and removes the erased customers' rows from stored datasets.

Revision ID: modeling_0008
Revises: modeling_0007
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from svc_common.db import UtcDateTime
from svc_common.db.rerunnable import has_table

revision = "modeling_0008"
down_revision = "modeling_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if not has_table("modeling_log_cursor"):  # re-runnable: Dameng commits each DDL statement
        op.create_table(
            "modeling_log_cursor",
            sa.Column("consumer_name", sa.String(64), primary_key=True),
            sa.Column("log_cursor", sa.Text, nullable=False),
            sa.Column("updated_at", UtcDateTime(), nullable=False),
        )


def downgrade() -> None:
    op.drop_table("modeling_log_cursor")
