-- DDL of collect's tables on opengauss, compiled offline by tests/test_ddl_snapshots.py.
-- Do not edit: rerun the test with UPDATE_SNAPSHOTS=1 after an intended schema change.

CREATE TABLE collect_event (
	seq BIGINT NOT NULL,
	event_id VARCHAR(36) NOT NULL,
	event_type VARCHAR(128) NOT NULL,
	user_id VARCHAR(128),
	anonymous_id VARCHAR(128),
	occurred_at_us BIGINT NOT NULL,
	received_at_us BIGINT NOT NULL,
	fingerprint VARCHAR(32) NOT NULL,
	flags INTEGER NOT NULL,
	payload BYTEA NOT NULL,
	sealed_values BYTEA,
	PRIMARY KEY (seq)
);

CREATE INDEX ix_collect_event_type_seq ON collect_event (event_type, seq);

CREATE UNIQUE INDEX ux_collect_event_event_id ON collect_event (event_id);

CREATE TABLE collect_event_schema (
	event_type VARCHAR(128) NOT NULL,
	version BIGINT NOT NULL,
	description TEXT NOT NULL,
	properties TEXT NOT NULL,
	reject_unknown BOOLEAN NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	created_by VARCHAR(128) NOT NULL,
	PRIMARY KEY (event_type, version)
);

CREATE TABLE collect_ingest_stat (
	minute_us BIGINT NOT NULL,
	event_type VARCHAR(128) NOT NULL,
	accepted_count BIGINT NOT NULL,
	duplicate_count BIGINT NOT NULL,
	rejected_count BIGINT NOT NULL,
	PRIMARY KEY (minute_us, event_type)
);

CREATE TABLE collect_instance (
	instance_id VARCHAR(36) NOT NULL,
	service_name VARCHAR(32) NOT NULL,
	version VARCHAR(32) NOT NULL,
	host_name VARCHAR(255) NOT NULL,
	pid INTEGER NOT NULL,
	started_at TIMESTAMP WITH TIME ZONE NOT NULL,
	stopped_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (instance_id)
);

CREATE INDEX ix_collect_instance_started ON collect_instance (started_at);

CREATE TABLE collect_key_check (
	key_name VARCHAR(128) NOT NULL,
	check_value VARCHAR(32) NOT NULL,
	host_name VARCHAR(255) NOT NULL,
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (key_name)
);

CREATE TABLE collect_log_head (
	head_id INTEGER NOT NULL,
	log_id VARCHAR(36) NOT NULL,
	last_seq BIGINT NOT NULL,
	last_received_us BIGINT NOT NULL,
	PRIMARY KEY (head_id)
);

CREATE TABLE collect_quarantine (
	quarantine_id VARCHAR(36) NOT NULL,
	event_id VARCHAR(64) NOT NULL,
	event_type VARCHAR(128) NOT NULL,
	reason VARCHAR(64) NOT NULL,
	field_path VARCHAR(256) NOT NULL,
	message TEXT NOT NULL,
	quarantined_at_us BIGINT NOT NULL,
	replay_count INTEGER NOT NULL,
	released_seq BIGINT,
	released_at_us BIGINT,
	sealed_event BYTEA NOT NULL,
	PRIMARY KEY (quarantine_id)
);

CREATE INDEX ix_collect_quarantine_time ON collect_quarantine (quarantined_at_us);

CREATE INDEX ix_collect_quarantine_type ON collect_quarantine (event_type, quarantined_at_us);

CREATE TABLE collect_sensitive_name (
	name VARCHAR(128) NOT NULL,
	since_us BIGINT NOT NULL,
	PRIMARY KEY (name)
);
