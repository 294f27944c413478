"""campaign: the policy gate's lock buckets (campaign_gate_lock), one row per bucket 0 .. 65,535.

Where the gate cannot take a transaction advisory lock per customer (Dameng has none; openGauss: see
docs/campaign.md), it locks the rows of its customers' buckets instead (``SELECT ... FOR UPDATE``), so the rows must
all exist before the first send. They are written in two statements whatever the database: 256 rows, then the
other 65,280 as ``high * 256 + low`` from those 256 joined with themselves (an INSERT ... SELECT reads the table as
it was when the statement began, on every database). The downgrade drops the table.

Revision ID: campaign_0004
Revises: campaign_0003
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "campaign_0004"
down_revision = "campaign_0003"
branch_labels = None
depends_on = None

_SEED = 256
"""256 × 256 = 65,536 buckets (svc_campaign.policy.GATE_LOCK_BUCKETS)."""


def upgrade() -> None:
    table = op.create_table(
        "campaign_gate_lock",
        sa.Column("bucket", sa.Integer, primary_key=True, autoincrement=False),
    )
    op.bulk_insert(table, [{"bucket": bucket} for bucket in range(_SEED)])
    high, low = table.alias("high_part"), table.alias("low_part")
    seed, zero, one = (sa.literal_column(str(n), sa.Integer) for n in (_SEED, 0, 1))  # constants, not binds
    # A join on a condition that holds for every row (a plain cross join reads as a mistake to SQLAlchemy's linter).
    rest = sa.select(high.c.bucket * seed + low.c.bucket).select_from(high.join(low, low.c.bucket >= zero))
    rest = rest.where(high.c.bucket >= one)
    op.execute(sa.insert(table).from_select(["bucket"], rest))


def downgrade() -> None:
    op.drop_table("campaign_gate_lock")
