"""modeling: what uses a dataset (a model's training dataset, the datasets of each job), so that a dataset in use is
not deleted.

Revision ID: modeling_0005
Revises: modeling_0004
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from svc_common.db import JsonText
from svc_common.db.rerunnable import create_index_once, has_column, has_table

revision = "modeling_0005"
down_revision = "modeling_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Re-runnable: Dameng commits each DDL statement, so a run that failed part way (alembic_version still at 0004)
    # must be able to run again. Each step is skipped when an earlier run did it; the fill only sets empty values.
    if not has_column("modeling_model", "dataset_id"):
        op.add_column("modeling_model", sa.Column("dataset_id", sa.String(36), nullable=False, server_default=""))
    _fill_model_datasets()
    create_index_once("ix_modeling_model_dataset", "modeling_model", ["dataset_id"])
    create_index_once("ix_modeling_analysis_dataset", "modeling_analysis", ["dataset_id"])
    if not has_table("modeling_job_dataset"):
        op.create_table(
            "modeling_job_dataset",
            sa.Column("job_id", sa.String(36), primary_key=True),
            sa.Column("dataset_id", sa.String(36), primary_key=True),
        )
    create_index_once("ix_modeling_job_dataset_dataset", "modeling_job_dataset", ["dataset_id", "job_id"])


def _fill_model_datasets() -> None:
    if op.get_context().as_sql:
        return  # offline SQL (a review of the DDL): no rows to read
    # Models of before: their training dataset is in the stored ModelVersion (JSON, read here on every database).
    # Jobs of before name no datasets: those still pending or running when this runs are not protected.
    model = sa.table(
        "modeling_model",
        sa.column("model_name", sa.String),
        sa.column("version", sa.BigInteger),
        sa.column("body", JsonText),
        sa.column("dataset_id", sa.String),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(model.c.model_name, model.c.version, model.c.body).where(model.c.dataset_id == ""))
    for row in rows.all():
        dataset_id = str((row.body or {}).get("dataset_id") or "")[:36]
        if dataset_id:
            bind.execute(
                sa.update(model)
                .where(model.c.model_name == row.model_name, model.c.version == row.version)
                .values(dataset_id=dataset_id)
            )


def downgrade() -> None:
    op.drop_index("ix_modeling_job_dataset_dataset", table_name="modeling_job_dataset")
    op.drop_table("modeling_job_dataset")
    op.drop_index("ix_modeling_analysis_dataset", table_name="modeling_analysis")
    op.drop_index("ix_modeling_model_dataset", table_name="modeling_model")
    op.drop_column("modeling_model", "dataset_id")
