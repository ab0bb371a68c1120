"""Events a projection skipped (dead-lettered), so a retry applies each at most once.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create `projection_skipped`."""
    op.create_table(
        "projection_skipped",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("skipped_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
    )


def downgrade() -> None:
    """Drop `projection_skipped`."""
    op.drop_table("projection_skipped")
