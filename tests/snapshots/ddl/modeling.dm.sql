-- DDL of modeling's tables on dm, compiled offline by tests/test_ddl_snapshots.py.
-- Do not edit: rerun the test with UPDATE_SNAPSHOTS=1 after an intended schema change.

CREATE TABLE modeling_analysis (
	analysis_id VARCHAR2(36 CHAR) NOT NULL,
	dataset_id VARCHAR2(36 CHAR) NOT NULL,
	body TEXT NOT NULL,
	artifact_blob_id VARCHAR2(36 CHAR) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (analysis_id)
);

CREATE INDEX ix_modeling_analysis_dataset ON modeling_analysis (dataset_id);

CREATE TABLE modeling_blob (
	blob_id VARCHAR2(36 CHAR) NOT NULL,
	part_no INTEGER NOT NULL,
	chunk BLOB NOT NULL,
	PRIMARY KEY (blob_id, part_no)
);

CREATE TABLE modeling_dataset (
	dataset_id VARCHAR2(36 CHAR) NOT NULL,
	name VARCHAR2(256 CHAR) NOT NULL,
	description TEXT NOT NULL,
	column_specs TEXT NOT NULL,
	row_count BIGINT NOT NULL,
	origin VARCHAR2(32 CHAR) NOT NULL,
	lineage TEXT NOT NULL,
	customer_id_column VARCHAR2(256 CHAR) NOT NULL,
	content_digest VARCHAR2(64 CHAR) NOT NULL,
	blob_id VARCHAR2(36 CHAR) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	created_by VARCHAR2(128 CHAR) NOT NULL,
	PRIMARY KEY (dataset_id)
);

CREATE INDEX ix_modeling_dataset_created ON modeling_dataset (created_at, dataset_id);

CREATE TABLE modeling_instance (
	instance_id VARCHAR2(36 CHAR) NOT NULL,
	service_name VARCHAR2(32 CHAR) NOT NULL,
	version VARCHAR2(32 CHAR) NOT NULL,
	host_name VARCHAR2(255 CHAR) NOT NULL,
	pid INTEGER NOT NULL,
	started_at TIMESTAMP WITH TIME ZONE NOT NULL,
	stopped_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (instance_id)
);

CREATE INDEX ix_modeling_instance_started ON modeling_instance (started_at);

CREATE TABLE modeling_job (
	job_id VARCHAR2(36 CHAR) NOT NULL,
	kind VARCHAR2(64 CHAR) NOT NULL,
	job_state VARCHAR2(16 CHAR) NOT NULL,
	progress_percent FLOAT NOT NULL,
	progress_message TEXT NOT NULL,
	cancel_requested SMALLINT NOT NULL,
	error_reason VARCHAR2(64 CHAR) NOT NULL,
	error_message TEXT NOT NULL,
	result_name VARCHAR2(256 CHAR) NOT NULL,
	created_by VARCHAR2(128 CHAR) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	started_at TIMESTAMP WITH TIME ZONE,
	finished_at TIMESTAMP WITH TIME ZONE,
	owner_id VARCHAR2(36 CHAR) NOT NULL,
	heartbeat_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (job_id)
);

CREATE INDEX ix_modeling_job_created ON modeling_job (created_at, job_id);

CREATE INDEX ix_modeling_job_state ON modeling_job (job_state, owner_id);

CREATE TABLE modeling_job_analysis (
	job_id VARCHAR2(36 CHAR) NOT NULL,
	analysis_id VARCHAR2(36 CHAR) NOT NULL,
	PRIMARY KEY (job_id, analysis_id)
);

CREATE INDEX ix_modeling_job_analysis_analysis ON modeling_job_analysis (analysis_id, job_id);

CREATE TABLE modeling_job_dataset (
	job_id VARCHAR2(36 CHAR) NOT NULL,
	dataset_id VARCHAR2(36 CHAR) NOT NULL,
	PRIMARY KEY (job_id, dataset_id)
);

CREATE INDEX ix_modeling_job_dataset_dataset ON modeling_job_dataset (dataset_id, job_id);

CREATE TABLE modeling_job_model (
	job_id VARCHAR2(36 CHAR) NOT NULL,
	model_name VARCHAR2(128 CHAR) NOT NULL,
	version BIGINT NOT NULL,
	PRIMARY KEY (job_id, model_name, version)
);

CREATE INDEX ix_modeling_job_model_model ON modeling_job_model (model_name, version, job_id);

CREATE TABLE modeling_key_check (
	key_name VARCHAR2(128 CHAR) NOT NULL,
	check_value VARCHAR2(32 CHAR) NOT NULL,
	host_name VARCHAR2(255 CHAR) NOT NULL,
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (key_name)
);

CREATE TABLE modeling_log_cursor (
	consumer_name VARCHAR2(64 CHAR) NOT NULL,
	log_cursor TEXT NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (consumer_name)
);

CREATE TABLE modeling_model (
	model_name VARCHAR2(128 CHAR) NOT NULL,
	version BIGINT NOT NULL,
	task VARCHAR2(32 CHAR) NOT NULL,
	stage VARCHAR2(16 CHAR) NOT NULL,
	body TEXT NOT NULL,
	artifact_blob_id VARCHAR2(36 CHAR) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	dataset_id VARCHAR2(36 CHAR) NOT NULL,
	PRIMARY KEY (model_name, version)
);

CREATE INDEX ix_modeling_model_dataset ON modeling_model (dataset_id);

CREATE TABLE modeling_model_name (
	model_name VARCHAR2(128 CHAR) NOT NULL,
	last_version BIGINT NOT NULL,
	PRIMARY KEY (model_name)
);

CREATE TABLE modeling_review_report (
	report_id VARCHAR2(36 CHAR) NOT NULL,
	schedule_id VARCHAR2(36 CHAR) NOT NULL,
	body TEXT NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (report_id)
);

CREATE INDEX ix_modeling_review_report_schedule ON modeling_review_report (schedule_id, created_at);

CREATE TABLE modeling_review_schedule (
	schedule_id VARCHAR2(36 CHAR) NOT NULL,
	body TEXT NOT NULL,
	next_run_at TIMESTAMP WITH TIME ZONE NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (schedule_id)
);

CREATE INDEX ix_modeling_review_schedule_next ON modeling_review_schedule (next_run_at);

CREATE TABLE modeling_schedule_analysis (
	schedule_id VARCHAR2(36 CHAR) NOT NULL,
	analysis_id VARCHAR2(36 CHAR) NOT NULL,
	PRIMARY KEY (schedule_id, analysis_id)
);

CREATE INDEX ix_modeling_schedule_analysis_analysis ON modeling_schedule_analysis (analysis_id, schedule_id);

CREATE TABLE modeling_schedule_dataset (
	schedule_id VARCHAR2(36 CHAR) NOT NULL,
	dataset_id VARCHAR2(36 CHAR) NOT NULL,
	PRIMARY KEY (schedule_id, dataset_id)
);

CREATE INDEX ix_modeling_schedule_dataset_dataset ON modeling_schedule_dataset (dataset_id, schedule_id);

CREATE TABLE modeling_schedule_model (
	schedule_id VARCHAR2(36 CHAR) NOT NULL,
	model_name VARCHAR2(128 CHAR) NOT NULL,
	PRIMARY KEY (schedule_id, model_name)
);

CREATE INDEX ix_modeling_schedule_model_model ON modeling_schedule_model (model_name, schedule_id);
