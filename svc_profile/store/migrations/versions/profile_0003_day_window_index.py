"""profile: the day-bucket window index covers the columns a window total reads.

``SUM(n) … WHERE event_type = ? AND day >= ? GROUP BY profile_id`` (recompute, sweep) is answered from the
index alone, without a table lookup per bucket.

Revision ID: profile_0003
Revises: profile_0002
Create Date: 2026-11-23
"""

from alembic import op

revision = "profile_0003"
down_revision = "profile_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_profile_day_type", table_name="profile_day")
    op.create_index(
        "ix_profile_day_window", "profile_day", ["event_type", "day", "profile_id", "n", "amount_fen"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_profile_day_window", table_name="profile_day")
    op.create_index("ix_profile_day_type", "profile_day", ["event_type", "day"], unique=False)
