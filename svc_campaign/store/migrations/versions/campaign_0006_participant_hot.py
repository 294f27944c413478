"""campaign: the participants' index by journey no longer holds the columns every step changes; PostgreSQL keeps room
on each page of campaign_participant for the new version of a row; the index by customer gains the entry time.

A participant row changes at every step of its customer (``status``, ``current_node``, ``next_action_at``, ...). The
index ``ix_campaign_participant_node`` on (journey_id, current_node, status) made each such UPDATE write a new
entry into every index of the table (PostgreSQL can only update a row "HOT", in place on its page with no index
entry written, when no indexed column changes and the page has room). It is replaced by
``ix_campaign_participant_journey`` on (journey_id, entered_at), columns that never change: the reads by journey
(the report's totals and waiting customers, the daily entry cap, a stop's exit of everyone in flight) still start
from an index, and the daily cap's count now reads its range of entry times from it. On PostgreSQL the table's
``fillfactor`` becomes 50 (``PARTICIPANT_FILLFACTOR``): new pages are filled to half, so the next version of every
row of a page fits on it. Customers who entered together share pages and wake together (a wave of timers updates
all the rows of a page in one transaction, before any old version can be pruned): at 70 only about 10 of a page's
~25 rows found room (44 % of 100,000 updates HOT), at 50 all of them. A fresh table takes twice the pages; after one
update of every row it is the size the default fillfactor reaches anyway (its non-HOT updates leave the old
versions behind: 5,883 pages against 5,683 for 100,000 participants). Rows already stored keep their pages (no
rewrite, no lock held for long): the room appears as pages are filled anew. The downgrade puts the old index and
the default fillfactor back.

Revision ID: campaign_0006
Revises: campaign_0005
Create Date: 2026-12-06
"""

from alembic import op

revision = "campaign_0006"
down_revision = "campaign_0005"
branch_labels = None
depends_on = None

PARTICIPANT_FILLFACTOR = 50
"""Percent of each page of campaign_participant that inserts fill on PostgreSQL (svc_campaign.store._tables)."""


def upgrade() -> None:
    op.drop_index("ix_campaign_participant_node", table_name="campaign_participant")
    op.create_index("ix_campaign_participant_journey", "campaign_participant", ["journey_id", "entered_at"])
    # The customer's index gains the entry time: "the latest participation of a customer in a journey" (ORDER BY
    # entered_at DESC LIMIT 1) is then one probe in order. Without it SQLite read that from the journey index above
    # (ordered by entry time, every participant of the journey), not from (user_id, journey_id) and a sort.
    op.drop_index("ix_campaign_participant_user", table_name="campaign_participant")
    op.create_index("ix_campaign_participant_user", "campaign_participant", ["user_id", "journey_id", "entered_at"])
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE campaign_participant SET (fillfactor = {PARTICIPANT_FILLFACTOR})")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE campaign_participant RESET (fillfactor)")
    op.drop_index("ix_campaign_participant_user", table_name="campaign_participant")
    op.create_index("ix_campaign_participant_user", "campaign_participant", ["user_id", "journey_id"])
    op.drop_index("ix_campaign_participant_journey", table_name="campaign_participant")
    op.create_index(
        "ix_campaign_participant_node", "campaign_participant", ["journey_id", "current_node", "status"]
    )
