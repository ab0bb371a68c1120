"""The position of a command's last event, kept with its idempotent response.

A retry with the same `Idempotency-Key` answers the first response with the same
`X-Event-Seq`. Responses stored before this revision have none; their retries answer with
the event log's head at the time, which is past their events too.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add `idempotency_keys.event_position`."""
    op.add_column("idempotency_keys", sa.Column("event_position", sa.BigInteger))


def downgrade() -> None:
    """Drop it."""
    op.drop_column("idempotency_keys", "event_position")
