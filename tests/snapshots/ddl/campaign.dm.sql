-- DDL of campaign's tables on dm, compiled offline by tests/test_ddl_snapshots.py.
-- Do not edit: rerun the test with UPDATE_SNAPSHOTS=1 after an intended schema change.

CREATE TABLE campaign_assignment (
	experiment_id VARCHAR2(64 CHAR) NOT NULL,
	user_id VARCHAR2(128 CHAR) NOT NULL,
	variant VARCHAR2(64 CHAR) NOT NULL,
	assigned_at TIMESTAMP WITH TIME ZONE NOT NULL,
	exposed_at TIMESTAMP WITH TIME ZONE,
	clicked_at TIMESTAMP WITH TIME ZONE,
	converted_at TIMESTAMP WITH TIME ZONE,
	value_fen BIGINT NOT NULL,
	PRIMARY KEY (experiment_id, user_id)
);

CREATE INDEX ix_campaign_assignment_variant ON campaign_assignment (experiment_id, variant);

CREATE TABLE campaign_consent (
	user_id VARCHAR2(128 CHAR) NOT NULL,
	channel INTEGER NOT NULL,
	purpose VARCHAR2(64 CHAR) NOT NULL,
	granted SMALLINT NOT NULL,
	source VARCHAR2(128 CHAR) NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (user_id, channel, purpose)
);

CREATE TABLE campaign_consent_history (
	history_id BIGINT NOT NULL IDENTITY(1, 1),
	user_id VARCHAR2(128 CHAR) NOT NULL,
	channel INTEGER NOT NULL,
	purpose VARCHAR2(64 CHAR) NOT NULL,
	granted SMALLINT NOT NULL,
	source VARCHAR2(128 CHAR) NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (history_id)
);

CREATE INDEX ix_campaign_consent_history_user ON campaign_consent_history (user_id, history_id);

CREATE TABLE campaign_consumer (
	consumer_name VARCHAR2(64 CHAR) NOT NULL,
	log_cursor TEXT NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (consumer_name)
);

CREATE TABLE campaign_erased (
	user_id VARCHAR2(128 CHAR) NOT NULL,
	erased_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (user_id)
);

CREATE TABLE campaign_experiment (
	experiment_id VARCHAR2(64 CHAR) NOT NULL,
	document TEXT NOT NULL,
	experiment_state VARCHAR2(16 CHAR) NOT NULL,
	goal_event_type VARCHAR2(128 CHAR) NOT NULL,
	winner_variant VARCHAR2(64 CHAR) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	concluded_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (experiment_id)
);

CREATE INDEX ix_campaign_experiment_goal ON campaign_experiment (goal_event_type, experiment_state);

CREATE TABLE campaign_gate_lock (
	bucket INTEGER NOT NULL,
	PRIMARY KEY (bucket)
);

CREATE TABLE campaign_instance (
	instance_id VARCHAR2(36 CHAR) NOT NULL,
	service_name VARCHAR2(32 CHAR) NOT NULL,
	version VARCHAR2(32 CHAR) NOT NULL,
	host_name VARCHAR2(255 CHAR) NOT NULL,
	pid INTEGER NOT NULL,
	started_at TIMESTAMP WITH TIME ZONE NOT NULL,
	stopped_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (instance_id)
);

CREATE INDEX ix_campaign_instance_started ON campaign_instance (started_at);

CREATE TABLE campaign_journey (
	journey_id VARCHAR2(64 CHAR) NOT NULL,
	name VARCHAR2(256 CHAR) NOT NULL,
	description TEXT NOT NULL,
	journey_state VARCHAR2(16 CHAR) NOT NULL,
	draft TEXT NOT NULL,
	draft_revision BIGINT NOT NULL,
	entry_rules TEXT NOT NULL,
	published_version BIGINT NOT NULL,
	priority INTEGER NOT NULL,
	purpose VARCHAR2(64 CHAR) NOT NULL,
	start_at TIMESTAMP WITH TIME ZONE,
	end_at TIMESTAMP WITH TIME ZONE,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (journey_id)
);

CREATE INDEX ix_campaign_journey_state ON campaign_journey (journey_state);

CREATE TABLE campaign_journey_version (
	journey_id VARCHAR2(64 CHAR) NOT NULL,
	version_no BIGINT NOT NULL,
	graph TEXT NOT NULL,
	entry_rules TEXT NOT NULL,
	published_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (journey_id, version_no)
);

CREATE TABLE campaign_key_check (
	key_name VARCHAR2(128 CHAR) NOT NULL,
	check_value VARCHAR2(32 CHAR) NOT NULL,
	host_name VARCHAR2(255 CHAR) NOT NULL,
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (key_name)
);

CREATE TABLE campaign_message (
	message_id VARCHAR2(64 CHAR) NOT NULL,
	user_id VARCHAR2(128 CHAR) NOT NULL,
	channel INTEGER NOT NULL,
	template_id VARCHAR2(64 CHAR) NOT NULL,
	template_version BIGINT NOT NULL,
	journey_id VARCHAR2(64 CHAR) NOT NULL,
	node_id VARCHAR2(64 CHAR) NOT NULL,
	instance_id VARCHAR2(64 CHAR) NOT NULL,
	experiment_id VARCHAR2(64 CHAR) NOT NULL,
	variant VARCHAR2(64 CHAR) NOT NULL,
	status VARCHAR2(16 CHAR) NOT NULL,
	title TEXT NOT NULL,
	body TEXT NOT NULL,
	link TEXT NOT NULL,
	purpose VARCHAR2(64 CHAR) NOT NULL,
	is_marketing SMALLINT NOT NULL,
	priority INTEGER NOT NULL,
	idempotency_key VARCHAR2(160 CHAR) NOT NULL,
	attempts INTEGER NOT NULL,
	next_attempt_at TIMESTAMP WITH TIME ZONE,
	lease_until TIMESTAMP WITH TIME ZONE,
	failure_reason TEXT NOT NULL,
	suppression_reason VARCHAR2(64 CHAR) NOT NULL,
	gateway_message_id VARCHAR2(128 CHAR) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	scheduled_at TIMESTAMP WITH TIME ZONE,
	sent_at TIMESTAMP WITH TIME ZONE,
	delivered_at TIMESTAMP WITH TIME ZONE,
	clicked_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (message_id),
	CONSTRAINT campaign_message_idempotency_key_key UNIQUE (idempotency_key)
);

CREATE INDEX ix_campaign_message_due ON campaign_message (status, next_attempt_at);

CREATE INDEX ix_campaign_message_journey ON campaign_message (journey_id, created_at);

CREATE INDEX ix_campaign_message_user ON campaign_message (user_id, created_at);

CREATE TABLE campaign_participant (
	instance_id VARCHAR2(64 CHAR) NOT NULL,
	journey_id VARCHAR2(64 CHAR) NOT NULL,
	version_no BIGINT NOT NULL,
	user_id VARCHAR2(128 CHAR) NOT NULL,
	status VARCHAR2(16 CHAR) NOT NULL,
	current_node VARCHAR2(64 CHAR) NOT NULL,
	entry_event TEXT NOT NULL,
	waiting_for TEXT,
	next_action_at TIMESTAMP WITH TIME ZONE,
	entered_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	last_send_at TIMESTAMP WITH TIME ZONE,
	converted_at TIMESTAMP WITH TIME ZONE,
	exit_reason VARCHAR2(64 CHAR) NOT NULL,
	exited_at TIMESTAMP WITH TIME ZONE,
	final_send_node VARCHAR2(64 CHAR),
	final_send_outcome VARCHAR2(96 CHAR),
	PRIMARY KEY (instance_id)
);

CREATE INDEX ix_campaign_participant_journey ON campaign_participant (journey_id, entered_at);

CREATE INDEX ix_campaign_participant_user ON campaign_participant (user_id, journey_id, entered_at);

CREATE TABLE campaign_pending_event (
	event_id VARCHAR2(64 CHAR) NOT NULL,
	payload BLOB NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	rejected_reason VARCHAR2(64 CHAR),
	rejected_message VARCHAR2(500 CHAR),
	rejected_quarantine_id VARCHAR2(36 CHAR),
	rejected_at TIMESTAMP WITH TIME ZONE,
	rejections INTEGER DEFAULT '0' NOT NULL,
	retry_at TIMESTAMP WITH TIME ZONE,
	person_key VARCHAR2(160 CHAR),
	PRIMARY KEY (event_id)
);

CREATE INDEX ix_campaign_pending_event_created ON campaign_pending_event (created_at);

CREATE INDEX ix_campaign_pending_event_person ON campaign_pending_event (person_key, created_at);

CREATE TABLE campaign_policy (
	policy_id VARCHAR2(32 CHAR) NOT NULL,
	document TEXT NOT NULL,
	version_no BIGINT NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (policy_id)
);

CREATE TABLE campaign_scheduled_member (
	run_id VARCHAR2(64 CHAR) NOT NULL,
	profile_id VARCHAR2(128 CHAR) NOT NULL,
	user_id VARCHAR2(128 CHAR) NOT NULL,
	PRIMARY KEY (run_id, profile_id)
);

CREATE TABLE campaign_scheduled_run (
	run_id VARCHAR2(64 CHAR) NOT NULL,
	journey_id VARCHAR2(64 CHAR) NOT NULL,
	segment_id VARCHAR2(128 CHAR) NOT NULL,
	scheduled_for TIMESTAMP WITH TIME ZONE NOT NULL,
	run_state VARCHAR2(16 CHAR) NOT NULL,
	members BIGINT NOT NULL,
	processed BIGINT NOT NULL,
	entered BIGINT NOT NULL,
	without_customer_id BIGINT NOT NULL,
	export_after VARCHAR2(128 CHAR) NOT NULL,
	entry_after VARCHAR2(128 CHAR) NOT NULL,
	last_error TEXT NOT NULL,
	started_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	finished_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (run_id)
);

CREATE INDEX ix_campaign_scheduled_run_journey ON campaign_scheduled_run (journey_id, scheduled_for);

CREATE INDEX ix_campaign_scheduled_run_state ON campaign_scheduled_run (run_state);

CREATE TABLE campaign_template (
	template_id VARCHAR2(64 CHAR) NOT NULL,
	document TEXT NOT NULL,
	channel INTEGER NOT NULL,
	version_no BIGINT NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (template_id)
);

CREATE TABLE campaign_timer (
	timer_id VARCHAR2(128 CHAR) NOT NULL,
	due_at TIMESTAMP WITH TIME ZONE NOT NULL,
	kind VARCHAR2(16 CHAR) NOT NULL,
	journey_id VARCHAR2(64 CHAR) NOT NULL,
	user_id VARCHAR2(128 CHAR) NOT NULL,
	instance_id VARCHAR2(64 CHAR) NOT NULL,
	payload TEXT NOT NULL,
	PRIMARY KEY (timer_id)
);

CREATE INDEX ix_campaign_timer_due ON campaign_timer (due_at);

CREATE INDEX ix_campaign_timer_user ON campaign_timer (user_id, journey_id);

CREATE TABLE campaign_trigger_state (
	journey_id VARCHAR2(64 CHAR) NOT NULL,
	user_id VARCHAR2(128 CHAR) NOT NULL,
	state TEXT NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (journey_id, user_id)
);

CREATE TABLE campaign_visit (
	visit_id BIGINT NOT NULL IDENTITY(1, 1),
	instance_id VARCHAR2(64 CHAR) NOT NULL,
	journey_id VARCHAR2(64 CHAR) NOT NULL,
	node_id VARCHAR2(64 CHAR) NOT NULL,
	outcome VARCHAR2(96 CHAR) NOT NULL,
	at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (visit_id)
);

CREATE INDEX ix_campaign_visit_instance ON campaign_visit (instance_id, visit_id);

CREATE INDEX ix_campaign_visit_journey ON campaign_visit (journey_id, at);
