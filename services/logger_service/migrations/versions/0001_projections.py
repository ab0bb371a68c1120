"""Projections: task_state, task_logger, audit_log, projection_checkpoints.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the projection tables and their indexes."""
    op.create_table(
        "task_state",
        sa.Column("task_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("priority", sa.String(10), nullable=False),
        sa.Column("due_date", sa.Date),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index(
        "ix_task_state_transferable", "task_state", ["status"],
        postgresql_where=sa.text("NOT deleted"),
    )
    op.create_table(
        "task_logger",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("task_id", sa.BigInteger,
                  sa.ForeignKey("task_state.task_id", ondelete="CASCADE"), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("priority", sa.String(10), nullable=False),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("transferred_at", TZ, nullable=False),
        sa.UniqueConstraint("task_id", "date", name="uq_task_logger_task_date"),
    )
    op.create_index(
        "ix_task_logger_date", "task_logger", [sa.text("date DESC"), "id"]
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("task_id", sa.BigInteger,
                  sa.ForeignKey("task_state.task_id", ondelete="CASCADE"), nullable=False),
        sa.Column("previous_status", sa.String(20)),
        sa.Column("new_status", sa.String(20), nullable=False),
        sa.Column("modified_by", sa.String(150)),
        sa.Column("timestamp", TZ, nullable=False),
    )
    op.create_index("ix_audit_log_task_id", "audit_log", ["task_id", "id"])
    op.create_table(
        "projection_checkpoints",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    """Drop the projection tables."""
    for table in ("projection_checkpoints", "audit_log", "task_logger", "task_state"):
        op.drop_table(table)
