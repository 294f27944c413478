"""profile: level-3 tag values sealed at rest (profile_tag.sealed_value).

A tag whose definition carries sensitivity level 3 or 4 (JR/T 0158) was hidden from callers without an unmask
role but stored in clear. Its value now goes SM4-GCM sealed into sealed_value, bound to the person and the tag
(tag_value holds the marker ["sealed"]). The migration only adds the column: it cannot seal, the keyring being
the service's. Rows stored in clear before it are read as they are and sealed by the service when it starts
(and when a definition is raised to level 3), in chunks (docs/profile.md, "Level 3 protection").

Revision ID: profile_0005
Revises: profile_0004
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "profile_0005"
down_revision = "profile_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("profile_tag", sa.Column("sealed_value", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    # Sealed values cannot be opened here (no keyring): their rows are dropped rather than left unreadable. Rule
    # tags are computed again by the next evaluation; written ones (model scores, imports) must be written again.
    op.execute("DELETE FROM profile_tag WHERE sealed_value IS NOT NULL")
    op.drop_column("profile_tag", "sealed_value")
