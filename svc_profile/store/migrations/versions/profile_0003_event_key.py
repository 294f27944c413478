"""profile: retained events keyed by (profile_id, occurred_us, event_id), no key of their own by event id.

The log consumer inserts every event of a batch into profile_event. Its primary key on the (random) event id
and its index by person each put an insert on a page of its own; the table's reads go by person and time
(evaluation, erasure, merges), by type and time (the time sweep) and by time (retention, analytics), never by
event id. The key by person and time serves the reads by person (it replaces ix_profile_event_profile) and
still keeps a replayed event out (insert … on conflict do nothing), so an insert maintains three B-trees
instead of four, one of them in random order instead of two (docs/benchmarks.md, "Issue 5: the retained
events' key"). The table is rebuilt (a primary key cannot be changed in place on SQLite, and its constraint's
name on Dameng is generated): the rows are copied.

Revision ID: profile_0003
Revises: profile_0002
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from svc_common.db import JsonText

revision = "profile_0003"
down_revision = "profile_0002"
branch_labels = None
depends_on = None

_COLUMNS = ("event_id", "profile_id", "occurred_us", "event_type", "session_id", "screen", "properties")


def _rebuild(key: sa.PrimaryKeyConstraint, by_person: bool) -> None:
    for name in ("ix_profile_event_profile", "ix_profile_event_time", "ix_profile_event_type"):
        if name != "ix_profile_event_profile" or not by_person:
            op.drop_index(name, table_name="profile_event")
    op.rename_table("profile_event", "profile_event_old")
    op.create_table(
        "profile_event",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("profile_id", sa.String(length=36), nullable=False),
        sa.Column("occurred_us", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        sa.Column("session_id", sa.String(length=128), nullable=False),
        sa.Column("screen", sa.String(length=256), nullable=False),
        sa.Column("properties", JsonText(), nullable=False),
        key,
    )
    columns = ", ".join(_COLUMNS)
    if by_person:
        # Back to a key of the event id alone: the wider key may hold one event twice (under two persons, or at two
        # times); the copy keeps one row per event id.
        ranked = f"{columns}, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY profile_id, occurred_us) AS copy_rank"
        op.execute(
            f"INSERT INTO profile_event ({columns}) SELECT {columns} FROM "
            f"(SELECT {ranked} FROM profile_event_old) ranked WHERE copy_rank = 1"
        )
    else:
        op.execute(f"INSERT INTO profile_event ({columns}) SELECT {columns} FROM profile_event_old")
    op.drop_table("profile_event_old")
    if by_person:
        op.create_index("ix_profile_event_profile", "profile_event", ["profile_id", "occurred_us"], unique=False)
    op.create_index("ix_profile_event_time", "profile_event", ["occurred_us"], unique=False)
    op.create_index("ix_profile_event_type", "profile_event", ["event_type", "occurred_us"], unique=False)


def upgrade() -> None:
    _rebuild(sa.PrimaryKeyConstraint("profile_id", "occurred_us", "event_id", name="pk_profile_event"), False)


def downgrade() -> None:
    _rebuild(sa.PrimaryKeyConstraint("event_id"), True)
