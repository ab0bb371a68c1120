"""Subscriptions, the outbox of deliveries, replays and the consumer's checkpoint.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, nullable: bool = True, now: bool = False) -> sa.Column:  # type: ignore[type-arg]
    default = sa.func.now() if now else None
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, server_default=default)


def upgrade() -> None:
    """Create the tables."""
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("event_types", postgresql.ARRAY(sa.String(64))),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("previous_secret", sa.Text),
        _at("previous_secret_expires_at"),
        sa.Column("paused", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("paused_reason", sa.Text),
        sa.Column("start_seq", sa.BigInteger, nullable=False),
        _at("created_at", False, True),
        _at("updated_at", False, True),
    )
    op.create_table(
        "webhook_events",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("task_id", sa.BigInteger),
        _at("occurred_at", False),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("subscription_id", sa.BigInteger,
                  sa.ForeignKey("subscriptions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seq", sa.BigInteger, sa.ForeignKey("webhook_events.seq"), nullable=False),
        sa.Column("task_key", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        _at("first_attempt_at"),
        _at("last_attempt_at"),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("last_error", sa.Text),
        _at("delivered_at"),
        _at("created_at", False, True),
    )
    op.create_index("ix_deliveries_queue", "deliveries", ["subscription_id", "task_key", "id"],
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_index("ix_deliveries_subscription", "deliveries", ["subscription_id", "id"])
    op.create_index("ix_deliveries_seq", "deliveries", ["seq"])
    op.create_table(
        "delivery_queues",
        sa.Column("subscription_id", sa.BigInteger,
                  sa.ForeignKey("subscriptions.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("task_key", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("pending", sa.Integer, nullable=False),
        _at("next_attempt_at", False),
        sa.Column("lease", sa.Uuid),
    )
    op.create_index("ix_delivery_queues_next_attempt_at", "delivery_queues",
                    ["next_attempt_at"])
    op.create_table(
        "replays",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("subscription_id", sa.BigInteger,
                  sa.ForeignKey("subscriptions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("from_seq", sa.BigInteger, nullable=False),
        sa.Column("through_seq", sa.BigInteger, nullable=False),
        sa.Column("next_seq", sa.BigInteger, nullable=False),
        _at("created_at", False, True),
        _at("finished_at"),
    )
    op.create_table(
        "consumer_checkpoints",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        _at("updated_at", False, True),
    )


def downgrade() -> None:
    """Drop the tables."""
    for table in ("consumer_checkpoints", "replays", "delivery_queues", "deliveries",
                  "webhook_events", "subscriptions"):
        op.drop_table(table)
