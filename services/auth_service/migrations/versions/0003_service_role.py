"""users.role may be `service`: internal consumers of the event feed

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

A `service` account holds only `events:read` (GET /events). The name goes through the
naming convention as in 0001 (the constraint is `ck_users_ck_users_role`).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WITH_SERVICE = "role IN ('admin', 'manager', 'member', 'service')"
WITHOUT_SERVICE = "role IN ('admin', 'manager', 'member')"


def upgrade() -> None:
    """Allow the new role."""
    op.drop_constraint("ck_users_role", "users", type_="check")
    op.create_check_constraint("ck_users_role", "users", WITH_SERVICE)


def downgrade() -> None:
    """Refuse it again (service accounts must be removed or changed first)."""
    op.drop_constraint("ck_users_role", "users", type_="check")
    op.create_check_constraint("ck_users_role", "users", WITHOUT_SERVICE)
