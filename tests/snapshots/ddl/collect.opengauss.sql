-- DDL of collect's tables on opengauss, compiled offline by tests/test_ddl_snapshots.py.
-- Do not edit: rerun the test with UPDATE_SNAPSHOTS=1 after an intended schema change.

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
