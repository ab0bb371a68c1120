"""Count a daily transfer once in total over a partitioned log

With `STREAM_PARTITIONS` > 1 every partition receives the `DailyTransferRequested` event
and transfers its own tasks; each adds its count here in the transaction that applies it,
and the last one logs the day's total.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the table."""
    op.create_table(
        "transfer_runs",
        sa.Column("request_seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("partitions", sa.Integer(), nullable=False),
        sa.Column("transferred", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("request_seq"),
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_table("transfer_runs")
