"""modeling: blobs, datasets, jobs, the model registry and driver analyses.

Revision ID: modeling_0002
Revises: modeling_0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from svc_common.db import JsonText, UtcDateTime

revision = "modeling_0002"
down_revision = "modeling_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "modeling_blob",
        sa.Column("blob_id", sa.String(36), primary_key=True),
        sa.Column("part_no", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("chunk", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "modeling_dataset",
        sa.Column("dataset_id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("column_specs", JsonText, nullable=False),
        sa.Column("row_count", sa.BigInteger, nullable=False),
        sa.Column("origin", sa.String(32), nullable=False),
        sa.Column("lineage", JsonText, nullable=False),
        sa.Column("customer_id_column", sa.String(256), nullable=False),
        sa.Column("content_digest", sa.String(64), nullable=False),
        sa.Column("blob_id", sa.String(36), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
    )
    op.create_index("ix_modeling_dataset_created", "modeling_dataset", ["created_at", "dataset_id"])
    op.create_table(
        "modeling_job",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("job_state", sa.String(16), nullable=False),
        sa.Column("progress_percent", sa.Float, nullable=False),
        sa.Column("progress_message", sa.Text, nullable=False),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("error_reason", sa.String(64), nullable=False),
        sa.Column("error_message", sa.Text, nullable=False),
        sa.Column("result_name", sa.String(256), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=True),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_modeling_job_created", "modeling_job", ["created_at", "job_id"])
    op.create_table(
        "modeling_model",
        sa.Column("model_name", sa.String(128), primary_key=True),
        sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("task", sa.String(32), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("body", JsonText, nullable=False),
        sa.Column("artifact_blob_id", sa.String(36), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "modeling_analysis",
        sa.Column("analysis_id", sa.String(36), primary_key=True),
        sa.Column("dataset_id", sa.String(36), nullable=False),
        sa.Column("body", JsonText, nullable=False),
        sa.Column("artifact_blob_id", sa.String(36), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("modeling_analysis", "modeling_model", "modeling_job", "modeling_dataset", "modeling_blob"):
        op.drop_table(table)
