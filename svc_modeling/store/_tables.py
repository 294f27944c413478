"""svc_modeling's tables. Datasets, model artifacts and result tables are immutable blobs (split into
chunks in ``modeling_blob``); their metadata is in small tables that list and page quickly."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, Index, Integer, LargeBinary, MetaData, String, Table, Text

from svc_common.db import JsonText, UtcDateTime


def define_tables(metadata: MetaData) -> dict[str, Table]:
    blob = Table(
        "modeling_blob",
        metadata,
        Column("blob_id", String(36), primary_key=True),
        Column("part_no", Integer, primary_key=True, autoincrement=False),
        Column("chunk", LargeBinary, nullable=False),
    )
    dataset = Table(
        "modeling_dataset",
        metadata,
        Column("dataset_id", String(36), primary_key=True),
        Column("name", String(256), nullable=False),
        Column("description", Text, nullable=False, default=""),
        # The Column list as JSON (name, type, role, sensitivity, description).
        Column("column_specs", JsonText, nullable=False),
        Column("row_count", BigInteger, nullable=False),
        Column("origin", String(32), nullable=False),
        Column("lineage", JsonText, nullable=False),
        Column("customer_id_column", String(256), nullable=False, default=""),
        Column("content_digest", String(64), nullable=False),
        Column("blob_id", String(36), nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("created_by", String(128), nullable=False, default=""),
        Index("ix_modeling_dataset_created", "created_at", "dataset_id"),
    )
    job = Table(
        "modeling_job",
        metadata,
        Column("job_id", String(36), primary_key=True),
        Column("kind", String(64), nullable=False),
        # PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED (JobState names without the prefix).
        Column("job_state", String(16), nullable=False),
        Column("progress_percent", Float, nullable=False, default=0.0),
        Column("progress_message", Text, nullable=False, default=""),
        Column("cancel_requested", Boolean, nullable=False, default=False),
        Column("error_reason", String(64), nullable=False, default=""),
        Column("error_message", Text, nullable=False, default=""),
        Column("result_name", String(256), nullable=False, default=""),
        Column("created_by", String(128), nullable=False, default=""),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("started_at", UtcDateTime(), nullable=True),
        Column("finished_at", UtcDateTime(), nullable=True),
        # The JobRunner (one per process) running the job, and when it last said it still does: a job whose
        # heartbeat is stale belongs to a process that died, and only such a job is failed by another.
        Column("owner_id", String(36), nullable=False, default=""),
        Column("heartbeat_at", UtcDateTime(), nullable=True),
        Index("ix_modeling_job_created", "created_at", "job_id"),
        Index("ix_modeling_job_state", "job_state", "owner_id"),
    )
    model = Table(
        "modeling_model",
        metadata,
        Column("model_name", String(128), primary_key=True),
        Column("version", BigInteger, primary_key=True, autoincrement=False),
        Column("task", String(32), nullable=False),
        # CANDIDATE, PRODUCTION, ARCHIVED.
        Column("stage", String(16), nullable=False),
        # The whole ModelVersion (metrics, lineage, importance, intervention summaries) as JSON.
        Column("body", JsonText, nullable=False),
        Column("artifact_blob_id", String(36), nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        # The dataset it was trained on: a dataset a model uses is not deleted.
        Column("dataset_id", String(36), nullable=False, default=""),
        Index("ix_modeling_model_dataset", "dataset_id"),
    )
    # The highest version number each model name was ever given: numbers are never given again, even after
    # DeleteModel (a tag's writer_version and a score table's lineage name one model for good).
    model_name = Table(
        "modeling_model_name",
        metadata,
        Column("model_name", String(128), primary_key=True),
        Column("last_version", BigInteger, nullable=False),
    )
    analysis = Table(
        "modeling_analysis",
        metadata,
        Column("analysis_id", String(36), primary_key=True),
        Column("dataset_id", String(36), nullable=False),
        # The DriverAnalysis as JSON.
        Column("body", JsonText, nullable=False),
        # The outcome models used by what-if and response curves.
        Column("artifact_blob_id", String(36), nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Index("ix_modeling_analysis_dataset", "dataset_id"),
    )
    # The datasets each job reads, stored with the job: a dataset a pending or running job uses is not deleted.
    job_dataset = Table(
        "modeling_job_dataset",
        metadata,
        Column("job_id", String(36), primary_key=True),
        Column("dataset_id", String(36), primary_key=True),
        Index("ix_modeling_job_dataset_dataset", "dataset_id", "job_id"),
    )
    # The model versions each job uses (scoring, planning, a review's models), stored with the job: a version a
    # pending or running job uses is not deleted.
    job_model = Table(
        "modeling_job_model",
        metadata,
        Column("job_id", String(36), primary_key=True),
        Column("model_name", String(128), primary_key=True),
        Column("version", BigInteger, primary_key=True, autoincrement=False),
        Index("ix_modeling_job_model_model", "model_name", "version", "job_id"),
    )
    # The driver analyses each job uses (a review's): an analysis a pending or running job uses is not deleted.
    job_analysis = Table(
        "modeling_job_analysis",
        metadata,
        Column("job_id", String(36), primary_key=True),
        Column("analysis_id", String(36), primary_key=True),
        Index("ix_modeling_job_analysis_analysis", "analysis_id", "job_id"),
    )
    schedule = Table(
        "modeling_review_schedule",
        metadata,
        Column("schedule_id", String(36), primary_key=True),
        # The ReviewSchedule as JSON.
        Column("body", JsonText, nullable=False),
        Column("next_run_at", UtcDateTime(), nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Index("ix_modeling_review_schedule_next", "next_run_at"),
    )
    report = Table(
        "modeling_review_report",
        metadata,
        Column("report_id", String(36), primary_key=True),
        Column("schedule_id", String(36), nullable=False),
        # The ReviewReport as JSON.
        Column("body", JsonText, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Index("ix_modeling_review_report_schedule", "schedule_id", "created_at"),
    )
    # What each review schedule names, held between its runs (written with the schedule, deleted with it): its
    # refresh datasets, its models (by name: the version a review takes, production else latest, is not deleted)
    # and its driver analyses.
    schedule_dataset = Table(
        "modeling_schedule_dataset",
        metadata,
        Column("schedule_id", String(36), primary_key=True),
        Column("dataset_id", String(36), primary_key=True),
        Index("ix_modeling_schedule_dataset_dataset", "dataset_id", "schedule_id"),
    )
    schedule_model = Table(
        "modeling_schedule_model",
        metadata,
        Column("schedule_id", String(36), primary_key=True),
        Column("model_name", String(128), primary_key=True),
        Index("ix_modeling_schedule_model_model", "model_name", "schedule_id"),
    )
    schedule_analysis = Table(
        "modeling_schedule_analysis",
        metadata,
        Column("schedule_id", String(36), primary_key=True),
        Column("analysis_id", String(36), primary_key=True),
        Index("ix_modeling_schedule_analysis_analysis", "analysis_id", "schedule_id"),
    )
    # The log follower's position (svc_modeling.erasure): the last batch of svc_profile's erasures applied.
    log_cursor = Table(
        "modeling_log_cursor",
        metadata,
        Column("consumer_name", String(64), primary_key=True),
        Column("log_cursor", Text, nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
    )
    return {
        "blob": blob,
        "dataset": dataset,
        "job": job,
        "model": model,
        "model_name": model_name,
        "analysis": analysis,
        "schedule": schedule,
        "report": report,
        "job_dataset": job_dataset,
        "job_model": job_model,
        "job_analysis": job_analysis,
        "schedule_dataset": schedule_dataset,
        "schedule_model": schedule_model,
        "schedule_analysis": schedule_analysis,
        "log_cursor": log_cursor,
    }
