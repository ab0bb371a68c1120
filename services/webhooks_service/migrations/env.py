"""Alembic environment of the webhooks database."""

from services.webhooks_service.adapters.orm import metadata
from shared.migrations import run_env

run_env(metadata)
