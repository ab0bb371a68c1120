"""Only the scheduled transfer is once per date; every explicit request is its own event.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

The downgrade restores "one DailyTransferRequested per date" and fails while a date has
more than one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRANSFER_DATE: list[sa.ColumnElement[str]] = [sa.literal_column("(data->>'date')")]
SCHEDULED = sa.text("type = 'DailyTransferRequested' AND (data->>'scheduled') = 'true'")


def upgrade() -> None:
    """Replace the per-date unique index by one over scheduled transfers only."""
    op.drop_index("uq_events_transfer_date", table_name="events")
    op.create_index("uq_events_scheduled_transfer_date", "events", TRANSFER_DATE, unique=True,
                    postgresql_where=SCHEDULED)


def downgrade() -> None:
    """Put back one transfer event per date."""
    op.drop_index("uq_events_scheduled_transfer_date", table_name="events")
    op.create_index("uq_events_transfer_date", "events", TRANSFER_DATE, unique=True,
                    postgresql_where=sa.text("type = 'DailyTransferRequested'"))
