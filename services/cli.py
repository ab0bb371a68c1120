"""The `taskstream` command: operations on every service, and the development runner."""

from __future__ import annotations

import logging
from importlib import import_module

import click

from services.registry import DATABASE_SERVICES, migrate_all
from shared.config import Env
from shared.logs import configure_logging

# Each service contributes its own commands from `<package>.cli.COMMANDS`.
SERVICE_CLIS = (
    "services.api_gateway.cli",
    "services.auth_service.cli",
    "services.task_service.cli",
    "services.logger_service.cli",
)


@click.group()
def main() -> None:
    """Operate Taskstream: migrations, admin, events, projections, transfer, run."""
    env = Env.load()
    configure_logging("cli", level=env.str("LOG_LEVEL", "INFO"), fmt="text")
    logging.getLogger("alembic").setLevel(logging.WARNING)


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.option("--service", "services", multiple=True, type=click.Choice(list(DATABASE_SERVICES)),
              help="Only this service (repeatable); default: all.")
def db_upgrade(services: tuple[str, ...]) -> None:
    """Create each service's database if needed and migrate it to the newest revision."""
    for line in migrate_all(Env.load(), services or tuple(DATABASE_SERVICES)):
        click.echo(line)


@main.command("setup")
def setup() -> None:
    """Migrate every database and create the first admin if there is none (idempotent)."""
    from services.runner import prepare

    click.echo(prepare(Env.load()))


@main.command("run")
@click.option("--procfile", default="Procfile", show_default=True)
def run(procfile: str) -> None:
    """Run the whole system (embedded PostgreSQL/Redis unless configured) under honcho."""
    from services.runner import run_system

    raise SystemExit(run_system(procfile))


def _add_service_commands() -> None:
    for module_name in SERVICE_CLIS:
        for command in import_module(module_name).COMMANDS:
            main.add_command(command)


_add_service_commands()
