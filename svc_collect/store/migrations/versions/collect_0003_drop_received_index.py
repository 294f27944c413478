"""collect: drop the index on collect_event.received_at_us.

Receive times rise with seq, so reads by time find their start by binary search over the primary key;
the index only cost every insert (one B-tree of five).

Revision ID: collect_0003
Revises: collect_0002
Create Date: 2026-11-23
"""

from alembic import op

revision = "collect_0003"
down_revision = "collect_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_collect_event_received", table_name="collect_event")


def downgrade() -> None:
    op.create_index("ix_collect_event_received", "collect_event", ["received_at_us"])
