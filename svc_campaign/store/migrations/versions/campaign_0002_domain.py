"""campaign: journeys and their versions, templates, consent, the contact policy, trigger state, timers,
journey participants and their visits, the message outbox, experiments and assignments, the log cursor, and events
waiting to be published to svc_collect.

Revision ID: campaign_0002
Revises: campaign_0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from svc_common.db import JsonText, UtcDateTime

revision = "campaign_0002"
down_revision = "campaign_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign_assignment",
        sa.Column("experiment_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("variant", sa.String(64), nullable=False),
        sa.Column("assigned_at", UtcDateTime(), nullable=False),
        sa.Column("exposed_at", UtcDateTime(), nullable=True),
        sa.Column("clicked_at", UtcDateTime(), nullable=True),
        sa.Column("converted_at", UtcDateTime(), nullable=True),
        sa.Column("value_fen", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_campaign_assignment_variant", "campaign_assignment", ["experiment_id", "variant"])
    op.create_table(
        "campaign_consent",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("channel", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("purpose", sa.String(64), primary_key=True),
        sa.Column("granted", sa.Boolean, nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "campaign_consumer",
        sa.Column("consumer_name", sa.String(64), primary_key=True),
        sa.Column("log_cursor", sa.Text, nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "campaign_experiment",
        sa.Column("experiment_id", sa.String(64), primary_key=True),
        sa.Column("document", JsonText(), nullable=False),
        sa.Column("experiment_state", sa.String(16), nullable=False),
        sa.Column("goal_event_type", sa.String(128), nullable=False),
        sa.Column("winner_variant", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("concluded_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_campaign_experiment_goal", "campaign_experiment", ["goal_event_type", "experiment_state"])
    op.create_table(
        "campaign_journey",
        sa.Column("journey_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("journey_state", sa.String(16), nullable=False),
        sa.Column("draft", JsonText(), nullable=False),
        sa.Column("draft_revision", sa.BigInteger, nullable=False),
        sa.Column("entry_rules", JsonText(), nullable=False),
        sa.Column("published_version", sa.BigInteger, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("start_at", UtcDateTime(), nullable=True),
        sa.Column("end_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_campaign_journey_state", "campaign_journey", ["journey_state"])
    op.create_table(
        "campaign_journey_version",
        sa.Column("journey_id", sa.String(64), primary_key=True),
        sa.Column("version_no", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("graph", JsonText(), nullable=False),
        sa.Column("entry_rules", JsonText(), nullable=False),
        sa.Column("published_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "campaign_message",
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.Integer, nullable=False),
        sa.Column("template_id", sa.String(64), nullable=False),
        sa.Column("template_version", sa.BigInteger, nullable=False),
        sa.Column("journey_id", sa.String(64), nullable=False),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("instance_id", sa.String(64), nullable=False),
        sa.Column("experiment_id", sa.String(64), nullable=False),
        sa.Column("variant", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("link", sa.Text, nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("is_marketing", sa.Boolean, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("idempotency_key", sa.String(160), unique=True, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=True),
        sa.Column("lease_until", UtcDateTime(), nullable=True),
        sa.Column("failure_reason", sa.Text, nullable=False),
        sa.Column("suppression_reason", sa.String(64), nullable=False),
        sa.Column("gateway_message_id", sa.String(128), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("scheduled_at", UtcDateTime(), nullable=True),
        sa.Column("sent_at", UtcDateTime(), nullable=True),
        sa.Column("delivered_at", UtcDateTime(), nullable=True),
        sa.Column("clicked_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_campaign_message_due", "campaign_message", ["status", "next_attempt_at"])
    op.create_index("ix_campaign_message_journey", "campaign_message", ["journey_id", "created_at"])
    op.create_index("ix_campaign_message_user", "campaign_message", ["user_id", "created_at"])
    op.create_table(
        "campaign_participant",
        sa.Column("instance_id", sa.String(64), primary_key=True),
        sa.Column("journey_id", sa.String(64), nullable=False),
        sa.Column("version_no", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("current_node", sa.String(64), nullable=False),
        sa.Column("entry_event", JsonText(), nullable=False),
        sa.Column("waiting_for", JsonText(), nullable=True),
        sa.Column("next_action_at", UtcDateTime(), nullable=True),
        sa.Column("entered_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("last_send_at", UtcDateTime(), nullable=True),
        sa.Column("converted_at", UtcDateTime(), nullable=True),
        sa.Column("exit_reason", sa.String(64), nullable=False),
    )
    op.create_index("ix_campaign_participant_node", "campaign_participant", ["journey_id", "current_node", "status"])
    op.create_index("ix_campaign_participant_user", "campaign_participant", ["user_id", "journey_id"])
    op.create_table(
        "campaign_pending_event",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_campaign_pending_event_created", "campaign_pending_event", ["created_at"])
    op.create_table(
        "campaign_policy",
        sa.Column("policy_id", sa.String(32), primary_key=True),
        sa.Column("document", JsonText(), nullable=False),
        sa.Column("version_no", sa.BigInteger, nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "campaign_template",
        sa.Column("template_id", sa.String(64), primary_key=True),
        sa.Column("document", JsonText(), nullable=False),
        sa.Column("channel", sa.Integer, nullable=False),
        sa.Column("version_no", sa.BigInteger, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "campaign_timer",
        sa.Column("timer_id", sa.String(128), primary_key=True),
        sa.Column("due_at", UtcDateTime(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("journey_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("instance_id", sa.String(64), nullable=False),
        sa.Column("payload", JsonText(), nullable=False),
    )
    op.create_index("ix_campaign_timer_due", "campaign_timer", ["due_at"])
    op.create_index("ix_campaign_timer_user", "campaign_timer", ["user_id", "journey_id"])
    op.create_table(
        "campaign_trigger_state",
        sa.Column("journey_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("state", JsonText(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "campaign_visit",
        sa.Column("visit_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("instance_id", sa.String(64), nullable=False),
        sa.Column("journey_id", sa.String(64), nullable=False),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(96), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_campaign_visit_instance", "campaign_visit", ["instance_id", "visit_id"])
    op.create_index("ix_campaign_visit_journey", "campaign_visit", ["journey_id", "at"])


def downgrade() -> None:
    op.drop_table("campaign_visit")
    op.drop_table("campaign_trigger_state")
    op.drop_table("campaign_timer")
    op.drop_table("campaign_template")
    op.drop_table("campaign_policy")
    op.drop_table("campaign_pending_event")
    op.drop_table("campaign_participant")
    op.drop_table("campaign_message")
    op.drop_table("campaign_journey_version")
    op.drop_table("campaign_journey")
    op.drop_table("campaign_experiment")
    op.drop_table("campaign_consumer")
    op.drop_table("campaign_consent")
    op.drop_table("campaign_assignment")
