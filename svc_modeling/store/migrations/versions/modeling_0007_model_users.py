"""modeling: what uses a model version or a driver analysis (the jobs that score, plan or review with them) and what
each review schedule names (refresh datasets, models, analyses), so that none of them is deleted while in use.

Revision ID: modeling_0007
Revises: modeling_0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from svc_common.db import JsonText
from svc_common.db.rerunnable import has_index, has_table

revision = "modeling_0007"
down_revision = "modeling_0006"
branch_labels = None
depends_on = None

# table → (its columns, the index by what it names)
TABLES = {
    "modeling_job_model": (
        [("job_id", sa.String(36)), ("model_name", sa.String(128)), ("version", sa.BigInteger)],
        ("ix_modeling_job_model_model", ["model_name", "version", "job_id"]),
    ),
    "modeling_job_analysis": (
        [("job_id", sa.String(36)), ("analysis_id", sa.String(36))],
        ("ix_modeling_job_analysis_analysis", ["analysis_id", "job_id"]),
    ),
    "modeling_schedule_dataset": (
        [("schedule_id", sa.String(36)), ("dataset_id", sa.String(36))],
        ("ix_modeling_schedule_dataset_dataset", ["dataset_id", "schedule_id"]),
    ),
    "modeling_schedule_model": (
        [("schedule_id", sa.String(36)), ("model_name", sa.String(128))],
        ("ix_modeling_schedule_model_model", ["model_name", "schedule_id"]),
    ),
    "modeling_schedule_analysis": (
        [("schedule_id", sa.String(36)), ("analysis_id", sa.String(36))],
        ("ix_modeling_schedule_analysis_analysis", ["analysis_id", "schedule_id"]),
    ),
}
# what a schedule's body names → (its table, column; the table and column where the named rows are)
NAMED = {
    "refresh_dataset_ids": ("modeling_schedule_dataset", "dataset_id", "modeling_dataset", "dataset_id"),
    "model_names": ("modeling_schedule_model", "model_name", "modeling_model", "model_name"),
    "analysis_ids": ("modeling_schedule_analysis", "analysis_id", "modeling_analysis", "analysis_id"),
}


def upgrade() -> None:
    # Re-runnable: Dameng commits each DDL statement, so a run that failed part way (alembic_version still at 0006)
    # must be able to run again. Each step is skipped when an earlier run did it; the fill adds only missing rows.
    for table, (columns, (index, indexed)) in TABLES.items():
        if not has_table(table):
            op.create_table(
                table,
                *(sa.Column(name, kind, primary_key=True, autoincrement=False) for name, kind in columns),
            )
        if not has_index(table, index):
            op.create_index(index, table, indexed)
    _fill_schedules()


def _fill_schedules() -> None:
    """The schedules of before hold what their stored ReviewSchedule (JSON, read here on every database) names and
    still exists. Jobs of before name no models or analyses: those still pending or running when this runs are not
    protected."""
    if op.get_context().as_sql:
        return  # offline SQL (a review of the DDL): no rows to read
    bind = op.get_bind()
    schedule = sa.table("modeling_review_schedule", sa.column("schedule_id", sa.String), sa.column("body", JsonText))
    for row in bind.execute(sa.select(schedule.c.schedule_id, schedule.c.body)).all():
        body = row.body or {}
        for field, (link_name, column, named_name, named_column) in NAMED.items():
            link = sa.table(link_name, sa.column("schedule_id", sa.String), sa.column(column, sa.String))
            named = sa.table(named_name, sa.column(named_column, sa.String))
            for value in sorted({str(v) for v in body.get(field) or [] if v}):
                exists = sa.select(named.c[named_column]).where(named.c[named_column] == value).limit(1)
                held = sa.select(link.c.schedule_id).where(
                    link.c.schedule_id == row.schedule_id, link.c[column] == value
                )
                if bind.execute(exists).first() is not None and bind.execute(held).first() is None:
                    bind.execute(sa.insert(link).values(schedule_id=row.schedule_id, **{column: value}))


def downgrade() -> None:
    for table, (_columns, (index, _indexed)) in reversed(TABLES.items()):
        op.drop_index(index, table_name=table)
        op.drop_table(table)
