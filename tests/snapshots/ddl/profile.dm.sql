-- DDL of profile's tables on dm, compiled offline by tests/test_ddl_snapshots.py.
-- Do not edit: rerun the test with UPDATE_SNAPSHOTS=1 after an intended schema change.

CREATE TABLE profile_consumer (
	name VARCHAR2(64 CHAR) NOT NULL,
	log_cursor TEXT NOT NULL,
	events BIGINT NOT NULL,
	updated_us BIGINT NOT NULL,
	PRIMARY KEY (name)
);

CREATE TABLE profile_customer (
	profile_id VARCHAR2(36 CHAR) NOT NULL,
	customer_id VARCHAR2(256 CHAR) NOT NULL,
	PRIMARY KEY (profile_id),
	CONSTRAINT uq_profile_customer_id UNIQUE (customer_id)
);

CREATE TABLE profile_day (
	profile_id VARCHAR2(36 CHAR) NOT NULL,
	event_type VARCHAR2(128 CHAR) NOT NULL,
	day INTEGER NOT NULL,
	n BIGINT NOT NULL,
	amount_fen BIGINT NOT NULL,
	PRIMARY KEY (profile_id, event_type, day)
);

CREATE INDEX ix_profile_day_type ON profile_day (event_type, day);

CREATE TABLE profile_event (
	event_id VARCHAR2(36 CHAR) NOT NULL,
	profile_id VARCHAR2(36 CHAR) NOT NULL,
	occurred_us BIGINT NOT NULL,
	event_type VARCHAR2(128 CHAR) NOT NULL,
	session_id VARCHAR2(128 CHAR) NOT NULL,
	screen VARCHAR2(256 CHAR) NOT NULL,
	properties TEXT NOT NULL,
	channel SMALLINT,
	user_id VARCHAR2(256 CHAR),
	anonymous_id VARCHAR2(256 CHAR),
	context_fields TEXT,
	CONSTRAINT pk_profile_event PRIMARY KEY (profile_id, occurred_us, event_id)
);

CREATE INDEX ix_profile_event_time ON profile_event (occurred_us);

CREATE INDEX ix_profile_event_type ON profile_event (event_type, occurred_us);

CREATE TABLE profile_identity (
	id_value VARCHAR2(256 CHAR) NOT NULL,
	id_type INTEGER NOT NULL,
	profile_id VARCHAR2(36 CHAR) NOT NULL,
	linked_by VARCHAR2(32 CHAR) NOT NULL,
	linked_us BIGINT NOT NULL,
	source_ref VARCHAR2(128 CHAR) NOT NULL,
	PRIMARY KEY (id_value, id_type)
);

CREATE INDEX ix_profile_identity_profile ON profile_identity (profile_id);

CREATE TABLE profile_instance (
	instance_id VARCHAR2(36 CHAR) NOT NULL,
	service_name VARCHAR2(32 CHAR) NOT NULL,
	version VARCHAR2(32 CHAR) NOT NULL,
	host_name VARCHAR2(255 CHAR) NOT NULL,
	pid INTEGER NOT NULL,
	started_at TIMESTAMP WITH TIME ZONE NOT NULL,
	stopped_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (instance_id)
);

CREATE INDEX ix_profile_instance_started ON profile_instance (started_at);

CREATE TABLE profile_job (
	job_id VARCHAR2(64 CHAR) NOT NULL,
	kind VARCHAR2(32 CHAR) NOT NULL,
	result_name VARCHAR2(64 CHAR) NOT NULL,
	state VARCHAR2(16 CHAR) NOT NULL,
	progress_percent FLOAT NOT NULL,
	progress_message VARCHAR2(512 CHAR) NOT NULL,
	error_reason VARCHAR2(64 CHAR) NOT NULL,
	error_message TEXT NOT NULL,
	created_by VARCHAR2(128 CHAR) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	started_at TIMESTAMP WITH TIME ZONE NOT NULL,
	finished_at TIMESTAMP WITH TIME ZONE,
	owner_id VARCHAR2(36 CHAR) NOT NULL,
	heartbeat_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (job_id)
);

CREATE INDEX ix_profile_job_finished ON profile_job (finished_at);

CREATE INDEX ix_profile_job_state ON profile_job (state, heartbeat_at);

CREATE TABLE profile_key_check (
	key_name VARCHAR2(128 CHAR) NOT NULL,
	check_value VARCHAR2(32 CHAR) NOT NULL,
	host_name VARCHAR2(255 CHAR) NOT NULL,
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (key_name)
);

CREATE TABLE profile_lifecycle (
	transition_id BIGINT NOT NULL IDENTITY(1, 1),
	profile_id VARCHAR2(36 CHAR) NOT NULL,
	from_stage VARCHAR2(16 CHAR) NOT NULL,
	to_stage VARCHAR2(16 CHAR) NOT NULL,
	at_us BIGINT NOT NULL,
	rule VARCHAR2(64 CHAR) NOT NULL,
	PRIMARY KEY (transition_id)
);

CREATE INDEX ix_profile_lifecycle_profile ON profile_lifecycle (profile_id, at_us);

CREATE INDEX ix_profile_lifecycle_time ON profile_lifecycle (at_us);

CREATE TABLE profile_member (
	segment_id VARCHAR2(64 CHAR) NOT NULL,
	profile_id VARCHAR2(36 CHAR) NOT NULL,
	is_member SMALLINT NOT NULL,
	seq BIGINT NOT NULL,
	entered_us BIGINT NOT NULL,
	changed_us BIGINT NOT NULL,
	PRIMARY KEY (segment_id, profile_id)
);

CREATE INDEX ix_profile_member_profile ON profile_member (profile_id);

CREATE INDEX ix_profile_member_segment ON profile_member (segment_id, is_member, profile_id);

CREATE TABLE profile_outbox (
	outbox_id BIGINT NOT NULL IDENTITY(1, 1),
	event_id VARCHAR2(36 CHAR) NOT NULL,
	body BLOB NOT NULL,
	created_us BIGINT NOT NULL,
	sent_us BIGINT,
	rejected_reason VARCHAR2(64 CHAR),
	rejected_message VARCHAR2(500 CHAR),
	rejected_quarantine_id VARCHAR2(36 CHAR),
	rejected_us BIGINT,
	rejections INTEGER DEFAULT '0' NOT NULL,
	retry_us BIGINT,
	person_key VARCHAR2(160 CHAR),
	PRIMARY KEY (outbox_id)
);

CREATE INDEX ix_profile_outbox_person ON profile_outbox (person_key, sent_us, outbox_id);

CREATE INDEX ix_profile_outbox_unsent ON profile_outbox (sent_us, outbox_id);

CREATE TABLE profile_person (
	profile_id VARCHAR2(36 CHAR) NOT NULL,
	created_us BIGINT NOT NULL,
	updated_us BIGINT NOT NULL,
	attributes TEXT NOT NULL,
	sealed_attributes BLOB,
	features TEXT NOT NULL,
	lifecycle_stage VARCHAR2(16 CHAR) NOT NULL,
	lifecycle_since_us BIGINT NOT NULL,
	PRIMARY KEY (profile_id)
);

CREATE TABLE profile_segment (
	segment_id VARCHAR2(64 CHAR) NOT NULL,
	version BIGINT NOT NULL,
	body BLOB NOT NULL,
	archived SMALLINT NOT NULL,
	member_count BIGINT NOT NULL,
	size_computed_us BIGINT NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (segment_id)
);

CREATE TABLE profile_tag (
	profile_id VARCHAR2(36 CHAR) NOT NULL,
	name VARCHAR2(64 CHAR) NOT NULL,
	tag_value TEXT NOT NULL,
	sealed_value BLOB,
	source VARCHAR2(16 CHAR) NOT NULL,
	writer VARCHAR2(128 CHAR) NOT NULL,
	writer_version VARCHAR2(64 CHAR) NOT NULL,
	written_us BIGINT NOT NULL,
	expires_us BIGINT,
	trace_id VARCHAR2(32 CHAR) NOT NULL,
	PRIMARY KEY (profile_id, name)
);

CREATE INDEX ix_profile_tag_name_expiry ON profile_tag (name, expires_us);

CREATE TABLE profile_tag_definition (
	name VARCHAR2(64 CHAR) NOT NULL,
	version BIGINT NOT NULL,
	body BLOB NOT NULL,
	archived SMALLINT NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (name, version)
);
