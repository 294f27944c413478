"""campaign: a pending ``$message_*`` event keeps svc_collect's rejection of it (campaign_pending_event).

The publisher deleted every pending event once svc_collect answered, a rejected (quarantined) one included, with
only a count at WARNING. A rejected event now stays pending with the rejection's reason, message and quarantine id,
when the episode began, how many rejections in a row, and when it is retried (docs/campaign.md, "Events to the
log"); ``person_key`` keeps each customer's events in order (one held back holds back the later ones). Nullable
columns and one with a default: adding them rewrites no row.

Revision ID: campaign_0010
Revises: campaign_0009
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from svc_common.db import UtcDateTime

revision = "campaign_0010"
down_revision = "campaign_0009"
branch_labels = None
depends_on = None


def _columns() -> list[sa.Column]:
    return [
        sa.Column("rejected_reason", sa.String(length=64), nullable=True),
        sa.Column("rejected_message", sa.String(length=500), nullable=True),
        sa.Column("rejected_quarantine_id", sa.String(length=36), nullable=True),
        sa.Column("rejected_at", UtcDateTime(), nullable=True),
        sa.Column("rejections", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("retry_at", UtcDateTime(), nullable=True),
        sa.Column("person_key", sa.String(length=160), nullable=True),
    ]


def upgrade() -> None:
    for column in _columns():
        op.add_column("campaign_pending_event", column)
    op.create_index("ix_campaign_pending_event_person", "campaign_pending_event", ["person_key", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_campaign_pending_event_person", table_name="campaign_pending_event")
    for column in reversed(_columns()):
        op.drop_column("campaign_pending_event", column.name)
