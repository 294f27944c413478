"""svc_campaign's tables. Graphs, templates and policies are kept as JSON (protobuf's JSON mapping), so any
SQL client can read them; the run-time state (trigger state, timers, journey instances, the outbox) is in
narrow tables with the indexes the engine's hot paths use."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, LargeBinary, MetaData, String, Table, Text

from svc_common.db import JsonText, UtcDateTime


def define_tables(metadata: MetaData) -> dict[str, Table]:
    journey = Table(
        "campaign_journey",
        metadata,
        Column("journey_id", String(64), primary_key=True),
        Column("name", String(256), nullable=False),
        Column("description", Text, nullable=False),
        # DRAFT, PUBLISHED, RUNNING, PAUSED, STOPPED (JourneyState names without the prefix).
        Column("journey_state", String(16), nullable=False),
        Column("draft", JsonText, nullable=False),
        Column("draft_revision", BigInteger, nullable=False),
        Column("entry_rules", JsonText, nullable=False),
        Column("published_version", BigInteger, nullable=False),
        Column("priority", Integer, nullable=False),
        Column("purpose", String(64), nullable=False),
        Column("start_at", UtcDateTime(), nullable=True),
        Column("end_at", UtcDateTime(), nullable=True),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
        Index("ix_campaign_journey_state", "journey_state"),
    )
    journey_version = Table(
        "campaign_journey_version",
        metadata,
        Column("journey_id", String(64), primary_key=True),
        Column("version_no", BigInteger, primary_key=True, autoincrement=False),
        Column("graph", JsonText, nullable=False),
        Column("entry_rules", JsonText, nullable=False),
        Column("published_at", UtcDateTime(), nullable=False),
    )
    template = Table(
        "campaign_template",
        metadata,
        Column("template_id", String(64), primary_key=True),
        Column("document", JsonText, nullable=False),
        Column("channel", Integer, nullable=False),
        Column("version_no", BigInteger, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
    )
    consent = Table(
        "campaign_consent",
        metadata,
        Column("user_id", String(128), primary_key=True),
        # 0: every channel.
        Column("channel", Integer, primary_key=True, autoincrement=False),
        # "*": every marketing purpose.
        Column("purpose", String(64), primary_key=True),
        Column("granted", Boolean, nullable=False),
        Column("source", String(128), nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
    )
    # Every consent record ever set, oldest first (campaign_0007): campaign_consent holds the one in force, this the
    # proof of when a customer granted or withdrew what, and through which source (PIPL). Kept on erasure.
    consent_history = Table(
        "campaign_consent_history",
        metadata,
        Column("history_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("user_id", String(128), nullable=False),
        Column("channel", Integer, nullable=False),
        Column("purpose", String(64), nullable=False),
        Column("granted", Boolean, nullable=False),
        Column("source", String(128), nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
        Index("ix_campaign_consent_history_user", "user_id", "history_id"),
    )
    policy = Table(
        "campaign_policy",
        metadata,
        Column("policy_id", String(32), primary_key=True),
        Column("document", JsonText, nullable=False),
        Column("version_no", BigInteger, nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
    )
    trigger_state = Table(
        "campaign_trigger_state",
        metadata,
        Column("journey_id", String(64), primary_key=True),
        Column("user_id", String(128), primary_key=True),
        Column("state", JsonText, nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
    )
    timer = Table(
        "campaign_timer",
        metadata,
        # Deterministic: the same pending thing always has the same id (re-arming replaces it).
        Column("timer_id", String(128), primary_key=True),
        Column("due_at", UtcDateTime(), nullable=False),
        # "trigger" (absence/sequence/dwell), "wait", "goal".
        Column("kind", String(16), nullable=False),
        Column("journey_id", String(64), nullable=False),
        Column("user_id", String(128), nullable=False),
        Column("instance_id", String(64), nullable=False),
        Column("payload", JsonText, nullable=False),
        Index("ix_campaign_timer_due", "due_at"),
        Index("ix_campaign_timer_user", "user_id", "journey_id"),
    )
    instance = Table(
        "campaign_participant",
        metadata,
        Column("instance_id", String(64), primary_key=True),
        Column("journey_id", String(64), nullable=False),
        Column("version_no", BigInteger, nullable=False),
        Column("user_id", String(128), nullable=False),
        # active (walking), waiting (at a wait or goal node), done.
        Column("status", String(16), nullable=False),
        Column("current_node", String(64), nullable=False),
        Column("entry_event", JsonText, nullable=False),
        # For a wait-for-event node: the event it waits for.
        Column("waiting_for", JsonText, nullable=True),
        Column("next_action_at", UtcDateTime(), nullable=True),
        Column("entered_at", UtcDateTime(), nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
        Column("last_send_at", UtcDateTime(), nullable=True),
        Column("converted_at", UtcDateTime(), nullable=True),
        Column("exit_reason", String(64), nullable=False),
        # When the walk reached an exit node (the node is current_node): the visit "exited" of that node, kept here
        # rather than as a visit row (campaign_0008: fewer rows for every customer who finishes a journey; the
        # reports read it with the visits). Other exits (step limit, goal window, a stop, an erasure) stay visits.
        Column("exited_at", UtcDateTime(), nullable=True),
        # With exited_at: the visit of a send that came just before the exit in the same walk (a journey's usual end:
        # send, then exit), also kept here rather than as a visit row: its node and outcome (sent, deferred,
        # suppressed:<reason>), at exited_at. NULL: no such send, or its visit is a row.
        Column("final_send_node", String(64), nullable=True),
        Column("final_send_outcome", String(96), nullable=True),
        # With the entry time: a customer's latest participation in a journey is one probe in order (without it,
        # SQLite took the journey's index below, ordered by entry time, and read every participant of the journey).
        Index("ix_campaign_participant_user", "user_id", "journey_id", "entered_at"),
        # No column a step changes (status, current_node, times) is in an index: PostgreSQL then updates the row in
        # place on its page ("HOT", no index entry written), with the room the table's fillfactor keeps there
        # (campaign_0006: 50 on PostgreSQL). Reads by journey start from this index.
        Index("ix_campaign_participant_journey", "journey_id", "entered_at"),
    )
    visit = Table(
        "campaign_visit",
        metadata,
        Column("visit_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("instance_id", String(64), nullable=False),
        Column("journey_id", String(64), nullable=False),
        Column("node_id", String(64), nullable=False),
        # entered, sent, suppressed:<reason>, deferred, timeout, event, branch:<n>, split:<variant>, converted,
        # exited:<reason> (an exit node's plain "exited" is campaign_participant.exited_at).
        Column("outcome", String(96), nullable=False),
        Column("at", UtcDateTime(), nullable=False),
        Index("ix_campaign_visit_instance", "instance_id", "visit_id"),
        Index("ix_campaign_visit_journey", "journey_id", "at"),
    )
    message = Table(
        "campaign_message",
        metadata,
        Column("message_id", String(64), primary_key=True),
        Column("user_id", String(128), nullable=False),
        Column("channel", Integer, nullable=False),
        Column("template_id", String(64), nullable=False),
        Column("template_version", BigInteger, nullable=False),
        Column("journey_id", String(64), nullable=False),
        Column("node_id", String(64), nullable=False),
        Column("instance_id", String(64), nullable=False),
        Column("experiment_id", String(64), nullable=False),
        Column("variant", String(64), nullable=False),
        # QUEUED, DEFERRED, SENT, DELIVERED, FAILED, SUPPRESSED, CLICKED (MessageStatus names without prefix).
        Column("status", String(16), nullable=False),
        Column("title", Text, nullable=False),
        Column("body", Text, nullable=False),
        Column("link", Text, nullable=False),
        Column("purpose", String(64), nullable=False),
        Column("is_marketing", Boolean, nullable=False),
        Column("priority", Integer, nullable=False),
        Column("idempotency_key", String(160), nullable=False, unique=True),
        Column("attempts", Integer, nullable=False),
        Column("next_attempt_at", UtcDateTime(), nullable=True),
        Column("lease_until", UtcDateTime(), nullable=True),
        Column("failure_reason", Text, nullable=False),
        Column("suppression_reason", String(64), nullable=False),
        Column("gateway_message_id", String(128), nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("scheduled_at", UtcDateTime(), nullable=True),
        Column("sent_at", UtcDateTime(), nullable=True),
        Column("delivered_at", UtcDateTime(), nullable=True),
        Column("clicked_at", UtcDateTime(), nullable=True),
        Index("ix_campaign_message_user", "user_id", "created_at"),
        Index("ix_campaign_message_due", "status", "next_attempt_at"),
        Index("ix_campaign_message_journey", "journey_id", "created_at"),
    )
    experiment = Table(
        "campaign_experiment",
        metadata,
        Column("experiment_id", String(64), primary_key=True),
        Column("document", JsonText, nullable=False),
        Column("experiment_state", String(16), nullable=False),
        Column("goal_event_type", String(128), nullable=False),
        Column("winner_variant", String(64), nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("concluded_at", UtcDateTime(), nullable=True),
        Index("ix_campaign_experiment_goal", "goal_event_type", "experiment_state"),
    )
    assignment = Table(
        "campaign_assignment",
        metadata,
        Column("experiment_id", String(64), primary_key=True),
        Column("user_id", String(128), primary_key=True),
        Column("variant", String(64), nullable=False),
        Column("assigned_at", UtcDateTime(), nullable=False),
        Column("exposed_at", UtcDateTime(), nullable=True),
        Column("clicked_at", UtcDateTime(), nullable=True),
        Column("converted_at", UtcDateTime(), nullable=True),
        Column("value_fen", BigInteger, nullable=False),
        Index("ix_campaign_assignment_variant", "experiment_id", "variant"),
    )
    consumer = Table(
        "campaign_consumer",
        metadata,
        Column("consumer_name", String(64), primary_key=True),
        Column("log_cursor", Text, nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
    )
    pending_event = Table(
        "campaign_pending_event",
        metadata,
        # Events for svc_collect's log ($message_sent, $message_delivered, $message_clicked), written in the
        # transaction of their cause and published afterwards (a transactional outbox of events).
        Column("event_id", String(64), primary_key=True),
        Column("payload", LargeBinary, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        # svc_collect's last rejection of the event (it stays pending, retried from ``retry_at``): its reason,
        # message and quarantine id, when the episode began and how many rejections in a row.
        Column("rejected_reason", String(64), nullable=True),
        Column("rejected_message", String(500), nullable=True),
        Column("rejected_quarantine_id", String(36), nullable=True),
        Column("rejected_at", UtcDateTime(), nullable=True),
        Column("rejections", Integer, nullable=False, server_default="0"),
        Column("retry_at", UtcDateTime(), nullable=True),
        # Whose event it is (the customer number): a customer's events are sent in the order they were made, so one
        # held back after a rejection holds back that customer's later ones. NULL: events queued before.
        Column("person_key", String(160), nullable=True),
        Index("ix_campaign_pending_event_created", "created_at"),
        Index("ix_campaign_pending_event_person", "person_key", "created_at"),
    )
    scheduled_run = Table(
        "campaign_scheduled_run",
        metadata,
        # stable_id(journey, "once"|"cron", time): a run is created once however often the planner looks.
        Column("run_id", String(64), primary_key=True),
        Column("journey_id", String(64), nullable=False),
        Column("segment_id", String(128), nullable=False),
        Column("scheduled_for", UtcDateTime(), nullable=False),
        # exporting, entering, done, cancelled.
        Column("run_state", String(16), nullable=False),
        Column("members", BigInteger, nullable=False),
        Column("processed", BigInteger, nullable=False),
        Column("entered", BigInteger, nullable=False),
        Column("without_customer_id", BigInteger, nullable=False),
        # The export's and the entry's progress: the last profile id read / handled (members in profile id order).
        Column("export_after", String(128), nullable=False),
        Column("entry_after", String(128), nullable=False),
        Column("last_error", Text, nullable=False),
        Column("started_at", UtcDateTime(), nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
        Column("finished_at", UtcDateTime(), nullable=True),
        Index("ix_campaign_scheduled_run_journey", "journey_id", "scheduled_for"),
        Index("ix_campaign_scheduled_run_state", "run_state"),
    )
    scheduled_member = Table(
        "campaign_scheduled_member",
        metadata,
        # The segment's members at the run (a snapshot), entered in profile id order; deleted when the run is done.
        Column("run_id", String(64), primary_key=True),
        Column("profile_id", String(128), primary_key=True),
        Column("user_id", String(128), nullable=False),
    )
    gate_lock = Table(
        "campaign_gate_lock",
        metadata,
        # The policy gate's per-customer lock where it is a row lock (openGauss, Dameng; see PolicyGate.lock_customers):
        # one row per bucket 0 .. 65,535, all written by campaign_0004 and never changed; a customer's bucket is its
        # CRC-32 lock key mod 65,536, and the gate locks its customers' rows (SELECT ... FOR UPDATE) until it commits.
        Column("bucket", Integer, primary_key=True, autoincrement=False),
    )
    erased = Table(
        "campaign_erased",
        metadata,
        # Customers erased ($profile_erased), kept as a suppression list: an event of theirs from before the erasure
        # that arrives later does not enter them again (svc_campaign/erasure.py).
        Column("user_id", String(128), primary_key=True),
        Column("erased_at", UtcDateTime(), nullable=False),
    )
    return {
        "erased": erased,
        "gate_lock": gate_lock,
        "scheduled_run": scheduled_run,
        "scheduled_member": scheduled_member,
        "journey": journey,
        "journey_version": journey_version,
        "template": template,
        "consent": consent,
        "consent_history": consent_history,
        "policy": policy,
        "trigger_state": trigger_state,
        "timer": timer,
        "instance": instance,
        "visit": visit,
        "message": message,
        "experiment": experiment,
        "assignment": assignment,
        "consumer": consumer,
        "pending_event": pending_event,
    }
