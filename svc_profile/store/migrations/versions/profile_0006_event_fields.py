"""profile: the retained events keep their channel, ids and context (profile_event).

Event filters (filtered event_count / event_absence conditions, funnel step filters) are answered from the
retained events, which kept type, time, session, screen and properties only: a filter on the channel, user_id,
anonymous_id or a context field (app_version, os, device_model …) was refused at definition time. The rows now
keep them (nullable columns: adding them rewrites no row). Rows stored before have none of them (NULL): they read
as events without that field (docs/profile.md, "Event filters").

Revision ID: profile_0006
Revises: profile_0005
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from svc_common.db import JsonText

revision = "profile_0006"
down_revision = "profile_0005"
branch_labels = None
depends_on = None



def _columns() -> list[sa.Column]:
    return [
        sa.Column("channel", sa.SmallInteger(), nullable=True),
        sa.Column("user_id", sa.String(length=256), nullable=True),
        sa.Column("anonymous_id", sa.String(length=256), nullable=True),
        sa.Column("context_fields", JsonText(), nullable=True),
    ]


def upgrade() -> None:
    for column in _columns():
        op.add_column("profile_event", column)


def downgrade() -> None:
    for column in reversed(_columns()):
        op.drop_column("profile_event", column.name)
