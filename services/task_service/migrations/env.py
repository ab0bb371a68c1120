"""Alembic environment of the task service."""

from services.task_service.adapters.orm import Base
from shared.migrations import run_env

run_env(Base.metadata)
