"""campaign: a participant's exit at an exit node is kept in its row (campaign_participant.exited_at), no longer as a
visit row "exited" of that node.

A customer who finishes a journey wrote three history rows in the transaction of their last step (the send's visit,
the exit's visit, the message) besides the update of their participant row, which already says where they left
(``current_node``, ``status`` done, ``exit_reason``); the exit's visit row, with its three index entries, was a third
of the rows written per customer of a wave of timers. The reports read ``exited_at`` with the visits
(svc_campaign.store._reports): the counts per node and outcome, and a customer's path, are the same. Other exits
(step limit, goal window ended, a stop, an erasure: ``exited:<reason>``) stay visit rows.

The upgrade adds the column and moves each plain "exited" visit of a finished participant at the node where it
finished into it (the visit row goes); a visit it cannot match so stays a row and is still counted as before. The
downgrade writes the visits back (numbered after the participant's other visits) and drops the column.

Revision ID: campaign_0008
Revises: campaign_0007
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from svc_common.db import UtcDateTime

revision = "campaign_0008"
down_revision = "campaign_0007"
branch_labels = None
depends_on = None

# The exit visit of a participant: its plain "exited" at the node where it finished.
_EXIT_VISIT = (
    "v.instance_id = campaign_participant.instance_id AND v.outcome = 'exited'"
    " AND v.node_id = campaign_participant.current_node"
)


def upgrade() -> None:
    op.add_column("campaign_participant", sa.Column("exited_at", UtcDateTime(), nullable=True))
    op.execute(
        f"UPDATE campaign_participant SET exited_at = (SELECT max(v.at) FROM campaign_visit v WHERE {_EXIT_VISIT})"
        f" WHERE status = 'done' AND EXISTS (SELECT 1 FROM campaign_visit v WHERE {_EXIT_VISIT})"
    )
    op.execute(
        "DELETE FROM campaign_visit WHERE outcome = 'exited' AND EXISTS (SELECT 1 FROM campaign_participant p"
        " WHERE p.instance_id = campaign_visit.instance_id AND p.exited_at IS NOT NULL"
        " AND p.current_node = campaign_visit.node_id)"
    )


def downgrade() -> None:
    op.execute(
        "INSERT INTO campaign_visit (instance_id, journey_id, node_id, outcome, at)"
        " SELECT instance_id, journey_id, current_node, 'exited', exited_at FROM campaign_participant"
        " WHERE exited_at IS NOT NULL ORDER BY exited_at, instance_id"
    )
    with op.batch_alter_table("campaign_participant") as batch:
        batch.drop_column("exited_at")
