"""Alembic environment of the auth database."""

from services.auth_service.adapters.orm import metadata
from shared.migrations import run_env

run_env(metadata)
