"""campaign: a participant's exit at an exit node is kept in its row (campaign_participant.exited_at), and so is the
visit of a send just before that exit in the same walk (final_send_node, final_send_outcome); neither is a visit
row any more.

A customer who finishes a journey (its usual end: a send, then an exit) wrote three history rows in the transaction
of their last step (the send's visit, the exit's visit, the message), besides the update of their participant row,
which already says where they left (``current_node``, ``status`` done, ``exit_reason``): two of the three rows a
customer of a wave of timers wrote, each with three index entries, were visits. Now that walk writes the message and
the participant's update only. The reports read the participant's columns with the visit rows
(svc_campaign.store._reports): the counts per node and outcome, and a customer's path, are the same. Other exits
(step limit, goal window ended, a stop, an erasure: ``exited:<reason>``) and other sends stay visit rows.

The upgrade adds the columns and moves each plain "exited" visit of a finished participant at the node where it
finished into ``exited_at`` (the visit row goes); a visit it cannot match so stays a row and is still counted as
before, and so do the send visits already stored (read as before). The downgrade writes the visits back (numbered
after the participant's other visits: a conversion recorded after the exit then precedes it in the path) and
drops the columns.

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
    op.add_column("campaign_participant", sa.Column("final_send_node", sa.String(64), nullable=True))
    op.add_column("campaign_participant", sa.Column("final_send_outcome", sa.String(96), nullable=True))
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
        " SELECT instance_id, journey_id, node_id, outcome, at FROM ("
        "SELECT instance_id, journey_id, final_send_node AS node_id, final_send_outcome AS outcome, exited_at AS at,"
        " 0 AS step FROM campaign_participant WHERE exited_at IS NOT NULL AND final_send_node IS NOT NULL"
        " UNION ALL SELECT instance_id, journey_id, current_node, 'exited', exited_at, 1 FROM campaign_participant"
        " WHERE exited_at IS NOT NULL) AS left_ ORDER BY at, instance_id, step"
    )
    with op.batch_alter_table("campaign_participant") as batch:
        batch.drop_column("final_send_outcome")
        batch.drop_column("final_send_node")
        batch.drop_column("exited_at")
