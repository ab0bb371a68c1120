"""users.tokens_revoked_at: the record of each user's access-token revocation mark

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Redis only carries a copy of the marks (republished from this column), so losing Redis no
longer undoes a revocation. The index serves the republisher's "marks younger than a token
can live" query.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the column and its index."""
    op.add_column("users", sa.Column("tokens_revoked_at", sa.DateTime(timezone=True),
                                     nullable=True))
    op.create_index("ix_users_tokens_revoked_at", "users", ["tokens_revoked_at"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_users_tokens_revoked_at", table_name="users")
    op.drop_column("users", "tokens_revoked_at")
