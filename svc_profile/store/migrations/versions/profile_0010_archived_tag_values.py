"""profile: the values of tags archived before 0.2.4 removed (profile_tag).

Since 0.2.4 ``ArchiveTagDefinition`` removes the tag's values from every profile in its transaction: nothing keeps
them current (there is no unarchive), and readers such as svc_campaign's journeys took them as current. A tag
archived by an earlier release still has its values on the profiles it was on; this removes them, once. Data only,
no schema change; the downgrade cannot bring them back and changes nothing.

Revision ID: profile_0010
Revises: profile_0009
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "profile_0010"
down_revision = "profile_0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    definition = sa.table("profile_tag_definition", sa.column("name", sa.String), sa.column("archived", sa.Boolean))
    tag = sa.table("profile_tag", sa.column("name", sa.String))
    archived = sa.select(definition.c.name).where(definition.c.archived.is_(True))
    op.execute(sa.delete(tag).where(tag.c.name.in_(archived)))


def downgrade() -> None:
    pass
