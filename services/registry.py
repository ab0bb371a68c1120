"""The services that own a database, and how to migrate each one."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from shared.config import Env
from shared.db import ensure_database
from shared.migrations import upgrade

# service name -> package; the name is also the suffix of the service's database.
DATABASE_SERVICES = {
    "auth": "services.auth_service",
    "tasks": "services.task_service",
    "logger": "services.logger_service",
    "webhooks": "services.webhooks_service",
}


def migrations_dir(service: str) -> Path:
    """Return the Alembic folder of a service."""
    package = import_module(DATABASE_SERVICES[service])
    return Path(str(package.__file__)).parent / "migrations"


def migrate_service(service: str, url: str) -> None:
    """Upgrade one service's database to the newest revision."""
    upgrade(migrations_dir(service), url)


def migrate_all(env: Env, services: tuple[str, ...] = tuple(DATABASE_SERVICES)) -> list[str]:
    """Create (if needed) and migrate every service's database; return what was done."""
    done = []
    for service in services:
        url = env.database_url(service)
        created = ensure_database(url)
        migrate_service(service, url)
        done.append(f"{service}: {'created and ' if created else ''}migrated")
    return done
