"""The version of each TaskLogger date, which tags its cached pages.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create `date_version_seq` and `date_versions`."""
    op.execute(sa.schema.CreateSequence(sa.Sequence("date_version_seq")))
    op.create_table(
        "date_versions",
        sa.Column("date", sa.Date, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_date_versions_version", "date_versions", ["version"])


def downgrade() -> None:
    """Drop them."""
    op.drop_table("date_versions")
    op.execute(sa.schema.DropSequence(sa.Sequence("date_version_seq")))
