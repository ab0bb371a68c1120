"""Alembic environment of the logger database."""

from services.logger_service.adapters.orm import metadata
from shared.migrations import run_env

run_env(metadata)
