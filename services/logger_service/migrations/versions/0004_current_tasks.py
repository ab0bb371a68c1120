"""Current tasks: who created each task and when, and the indexes its lists are read by.

Tasks projected before this revision have no `created_by`/`created_at` (the events that
carry them are in the task service's store): `taskstream projections rebuild` fills them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("NOT deleted")
SORTED_BY = {
    "due_date": "due_date",
    "priority": "(CASE priority WHEN 'low' THEN 0 WHEN 'medium' THEN 1 WHEN 'high' THEN 2 END)",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "created_by": "created_by",
}
SEARCH = ("to_tsvector('english'::regconfig, "
          "coalesce(title, '') || ' ' || coalesce(description, ''))")


def upgrade() -> None:
    """Add `created_by`, `created_at` and the indexes of the current tasks' lists."""
    op.add_column("task_state", sa.Column("created_by", sa.BigInteger))
    op.add_column("task_state", sa.Column("created_at", sa.DateTime(timezone=True)))
    for name, key in SORTED_BY.items():
        op.create_index(f"ix_task_state_{name}", "task_state", [sa.text(key), "task_id"],
                        postgresql_where=LIVE)
    op.create_index("ix_task_state_search", "task_state", [sa.text(f"({SEARCH})")],
                    postgresql_using="gin", postgresql_where=LIVE)


def downgrade() -> None:
    """Drop them."""
    for name in (*SORTED_BY, "search"):
        op.drop_index(f"ix_task_state_{name}", "task_state")
    op.drop_column("task_state", "created_at")
    op.drop_column("task_state", "created_by")
