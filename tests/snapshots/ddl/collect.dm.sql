-- DDL of collect's tables on dm, compiled offline by tests/test_ddl_snapshots.py.
-- Do not edit: rerun the test with UPDATE_SNAPSHOTS=1 after an intended schema change.

CREATE TABLE collect_event (
	seq BIGINT NOT NULL,
	event_id VARCHAR2(36 CHAR) NOT NULL,
	event_type VARCHAR2(128 CHAR) NOT NULL,
	user_id VARCHAR2(128 CHAR),
	anonymous_id VARCHAR2(128 CHAR),
	occurred_at_us BIGINT NOT NULL,
	received_at_us BIGINT NOT NULL,
	fingerprint VARCHAR2(32 CHAR) NOT NULL,
	flags INTEGER NOT NULL,
	payload BLOB NOT NULL,
	sealed_values BLOB,
	PRIMARY KEY (seq)
);

CREATE INDEX ix_collect_event_type_seq ON collect_event (event_type, seq);

CREATE UNIQUE INDEX ux_collect_event_event_id ON collect_event (event_id);

CREATE TABLE collect_event_schema (
	event_type VARCHAR2(128 CHAR) NOT NULL,
	version BIGINT NOT NULL,
	description TEXT NOT NULL,
	properties TEXT NOT NULL,
	reject_unknown SMALLINT NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	created_by VARCHAR2(128 CHAR) NOT NULL,
	PRIMARY KEY (event_type, version)
);

CREATE TABLE collect_ingest_stat (
	minute_us BIGINT NOT NULL,
	event_type VARCHAR2(128 CHAR) NOT NULL,
	accepted_count BIGINT NOT NULL,
	duplicate_count BIGINT NOT NULL,
	rejected_count BIGINT NOT NULL,
	PRIMARY KEY (minute_us, event_type)
);

CREATE TABLE collect_instance (
	instance_id VARCHAR2(36 CHAR) NOT NULL,
	service_name VARCHAR2(32 CHAR) NOT NULL,
	version VARCHAR2(32 CHAR) NOT NULL,
	host_name VARCHAR2(255 CHAR) NOT NULL,
	pid INTEGER NOT NULL,
	started_at TIMESTAMP WITH TIME ZONE NOT NULL,
	stopped_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (instance_id)
);

CREATE INDEX ix_collect_instance_started ON collect_instance (started_at);

CREATE TABLE collect_key_check (
	key_name VARCHAR2(128 CHAR) NOT NULL,
	check_value VARCHAR2(32 CHAR) NOT NULL,
	host_name VARCHAR2(255 CHAR) NOT NULL,
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (key_name)
);

CREATE TABLE collect_log_head (
	head_id INTEGER NOT NULL,
	log_id VARCHAR2(36 CHAR) NOT NULL,
	last_seq BIGINT NOT NULL,
	last_received_us BIGINT NOT NULL,
	PRIMARY KEY (head_id)
);

CREATE TABLE collect_quarantine (
	quarantine_id VARCHAR2(36 CHAR) NOT NULL,
	event_id VARCHAR2(64 CHAR) NOT NULL,
	event_type VARCHAR2(128 CHAR) NOT NULL,
	reason VARCHAR2(64 CHAR) NOT NULL,
	field_path VARCHAR2(256 CHAR) NOT NULL,
	message TEXT NOT NULL,
	quarantined_at_us BIGINT NOT NULL,
	replay_count INTEGER NOT NULL,
	released_seq BIGINT,
	released_at_us BIGINT,
	sealed_event BLOB NOT NULL,
	PRIMARY KEY (quarantine_id)
);

CREATE INDEX ix_collect_quarantine_time ON collect_quarantine (quarantined_at_us);

CREATE INDEX ix_collect_quarantine_type ON collect_quarantine (event_type, quarantined_at_us);

CREATE TABLE collect_sensitive_name (
	name VARCHAR2(128 CHAR) NOT NULL,
	since_us BIGINT NOT NULL,
	PRIMARY KEY (name)
);
