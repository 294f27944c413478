-- DDL of collect's tables on dm, compiled offline by tests/test_ddl_snapshots.py.
-- Do not edit: rerun the test with UPDATE_SNAPSHOTS=1 after an intended schema change.

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
