-- DDL of profile's tables on opengauss, compiled offline by tests/test_ddl_snapshots.py.
-- Do not edit: rerun the test with UPDATE_SNAPSHOTS=1 after an intended schema change.

CREATE TABLE profile_consumer (
	name VARCHAR(64) NOT NULL,
	log_cursor TEXT NOT NULL,
	events BIGINT NOT NULL,
	updated_us BIGINT NOT NULL,
	PRIMARY KEY (name)
);

CREATE TABLE profile_customer (
	profile_id VARCHAR(36) NOT NULL,
	customer_id VARCHAR(256) NOT NULL,
	PRIMARY KEY (profile_id),
	CONSTRAINT uq_profile_customer_id UNIQUE (customer_id)
);

CREATE TABLE profile_day (
	profile_id VARCHAR(36) NOT NULL,
	event_type VARCHAR(128) NOT NULL,
	day INTEGER NOT NULL,
	n BIGINT NOT NULL,
	amount_fen BIGINT NOT NULL,
	PRIMARY KEY (profile_id, event_type, day)
);

CREATE INDEX ix_profile_day_type ON profile_day (event_type, day);

CREATE TABLE profile_event (
	event_id VARCHAR(36) NOT NULL,
	profile_id VARCHAR(36) NOT NULL,
	occurred_us BIGINT NOT NULL,
	event_type VARCHAR(128) NOT NULL,
	session_id VARCHAR(128) NOT NULL,
	screen VARCHAR(256) NOT NULL,
	properties TEXT NOT NULL,
	channel SMALLINT,
	user_id VARCHAR(256),
	anonymous_id VARCHAR(256),
	context_fields TEXT,
	CONSTRAINT pk_profile_event PRIMARY KEY (profile_id, occurred_us, event_id)
);

CREATE INDEX ix_profile_event_time ON profile_event (occurred_us);

CREATE INDEX ix_profile_event_type ON profile_event (event_type, occurred_us);

CREATE TABLE profile_identity (
	id_value VARCHAR(256) NOT NULL,
	id_type INTEGER NOT NULL,
	profile_id VARCHAR(36) NOT NULL,
	linked_by VARCHAR(32) NOT NULL,
	linked_us BIGINT NOT NULL,
	source_ref VARCHAR(128) NOT NULL,
	PRIMARY KEY (id_value, id_type)
);

CREATE INDEX ix_profile_identity_profile ON profile_identity (profile_id);

CREATE TABLE profile_instance (
	instance_id VARCHAR(36) NOT NULL,
	service_name VARCHAR(32) NOT NULL,
	version VARCHAR(32) NOT NULL,
	host_name VARCHAR(255) NOT NULL,
	pid INTEGER NOT NULL,
	started_at TIMESTAMP WITH TIME ZONE NOT NULL,
	stopped_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (instance_id)
);

CREATE INDEX ix_profile_instance_started ON profile_instance (started_at);

CREATE TABLE profile_job (
	job_id VARCHAR(64) NOT NULL,
	kind VARCHAR(32) NOT NULL,
	result_name VARCHAR(64) NOT NULL,
	state VARCHAR(16) NOT NULL,
	progress_percent FLOAT NOT NULL,
	progress_message VARCHAR(512) NOT NULL,
	error_reason VARCHAR(64) NOT NULL,
	error_message TEXT NOT NULL,
	created_by VARCHAR(128) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	started_at TIMESTAMP WITH TIME ZONE NOT NULL,
	finished_at TIMESTAMP WITH TIME ZONE,
	owner_id VARCHAR(36) NOT NULL,
	heartbeat_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (job_id)
);

CREATE INDEX ix_profile_job_finished ON profile_job (finished_at);

CREATE INDEX ix_profile_job_state ON profile_job (state, heartbeat_at);

CREATE TABLE profile_key_check (
	key_name VARCHAR(128) NOT NULL,
	check_value VARCHAR(32) NOT NULL,
	host_name VARCHAR(255) NOT NULL,
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (key_name)
);

CREATE TABLE profile_lifecycle (
	transition_id BIGSERIAL NOT NULL,
	profile_id VARCHAR(36) NOT NULL,
	from_stage VARCHAR(16) NOT NULL,
	to_stage VARCHAR(16) NOT NULL,
	at_us BIGINT NOT NULL,
	rule VARCHAR(64) NOT NULL,
	PRIMARY KEY (transition_id)
);

CREATE INDEX ix_profile_lifecycle_profile ON profile_lifecycle (profile_id, at_us);

CREATE INDEX ix_profile_lifecycle_time ON profile_lifecycle (at_us);

CREATE TABLE profile_member (
	segment_id VARCHAR(64) NOT NULL,
	profile_id VARCHAR(36) NOT NULL,
	is_member BOOLEAN NOT NULL,
	seq BIGINT NOT NULL,
	entered_us BIGINT NOT NULL,
	changed_us BIGINT NOT NULL,
	PRIMARY KEY (segment_id, profile_id)
);

CREATE INDEX ix_profile_member_profile ON profile_member (profile_id);

CREATE INDEX ix_profile_member_segment ON profile_member (segment_id, is_member, profile_id);

CREATE TABLE profile_outbox (
	outbox_id BIGSERIAL NOT NULL,
	event_id VARCHAR(36) NOT NULL,
	body BYTEA NOT NULL,
	created_us BIGINT NOT NULL,
	sent_us BIGINT,
	rejected_reason VARCHAR(64),
	rejected_message VARCHAR(500),
	rejected_quarantine_id VARCHAR(36),
	rejected_us BIGINT,
	rejections INTEGER DEFAULT '0' NOT NULL,
	retry_us BIGINT,
	person_key VARCHAR(160),
	PRIMARY KEY (outbox_id)
);

CREATE INDEX ix_profile_outbox_person ON profile_outbox (person_key, sent_us, outbox_id);

CREATE INDEX ix_profile_outbox_unsent ON profile_outbox (sent_us, outbox_id);

CREATE TABLE profile_person (
	profile_id VARCHAR(36) NOT NULL,
	created_us BIGINT NOT NULL,
	updated_us BIGINT NOT NULL,
	attributes TEXT NOT NULL,
	sealed_attributes BYTEA,
	features TEXT NOT NULL,
	lifecycle_stage VARCHAR(16) NOT NULL,
	lifecycle_since_us BIGINT NOT NULL,
	PRIMARY KEY (profile_id)
);

CREATE TABLE profile_segment (
	segment_id VARCHAR(64) NOT NULL,
	version BIGINT NOT NULL,
	body BYTEA NOT NULL,
	archived BOOLEAN NOT NULL,
	member_count BIGINT NOT NULL,
	size_computed_us BIGINT NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (segment_id)
);

CREATE TABLE profile_tag (
	profile_id VARCHAR(36) NOT NULL,
	name VARCHAR(64) NOT NULL,
	tag_value TEXT NOT NULL,
	sealed_value BYTEA,
	source VARCHAR(16) NOT NULL,
	writer VARCHAR(128) NOT NULL,
	writer_version VARCHAR(64) NOT NULL,
	written_us BIGINT NOT NULL,
	expires_us BIGINT,
	trace_id VARCHAR(32) NOT NULL,
	PRIMARY KEY (profile_id, name)
);

CREATE INDEX ix_profile_tag_name_expiry ON profile_tag (name, expires_us);

CREATE TABLE profile_tag_definition (
	name VARCHAR(64) NOT NULL,
	version BIGINT NOT NULL,
	body BYTEA NOT NULL,
	archived BOOLEAN NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (name, version)
);
