"""modeling: a model's version numbers are never given again (the highest number each model name was given).

Revision ID: modeling_0006
Revises: modeling_0005
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from svc_common.db.rerunnable import has_table

revision = "modeling_0006"
down_revision = "modeling_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Re-runnable: Dameng commits each DDL statement, so a run that failed after the table was created must be able
    # to run again; the fill adds only the names not there yet.
    if not has_table("modeling_model_name"):
        op.create_table(
            "modeling_model_name",
            sa.Column("model_name", sa.String(128), primary_key=True),
            sa.Column("last_version", sa.BigInteger, nullable=False),
        )
    # The numbers given so far: the highest version of each model still stored (a number deleted before this
    # migration, above every stored one, may still be given once more).
    model = sa.table("modeling_model", sa.column("model_name", sa.String), sa.column("version", sa.BigInteger))
    mark = sa.table("modeling_model_name", sa.column("model_name", sa.String), sa.column("last_version", sa.BigInteger))
    known = sa.select(mark.c.model_name).where(mark.c.model_name == model.c.model_name)
    highest = (
        sa.select(model.c.model_name, sa.func.max(model.c.version)).where(~known.exists()).group_by(model.c.model_name)
    )
    op.execute(sa.insert(mark).from_select(["model_name", "last_version"], highest))


def downgrade() -> None:
    op.drop_table("modeling_model_name")
