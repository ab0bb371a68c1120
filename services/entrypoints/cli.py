"""The `taskstream` command: operations on every service, and the development runner."""

from __future__ import annotations

import logging
import sys
from importlib import import_module
from typing import Any

import click
import redis

from services.registry import DATABASE_SERVICES, migrate_all
from shared.config import Env, exit_on_config_error
from shared.db import DatabaseUnavailable
from shared.logs import configure_logging, first_line
from shared.settings import CommonSettings, read_setting

# Each service contributes its own commands from `<package>.cli.COMMANDS`.
SERVICE_CLIS = (
    "services.api_gateway.entrypoints.cli",
    "services.auth_service.entrypoints.cli",
    "services.task_service.entrypoints.cli",
    "services.logger_service.entrypoints.cli",
    "services.webhooks_service.entrypoints.cli",
)


class TaskstreamGroup(click.Group):
    """A command group whose configuration and connection errors end in one line."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a ConfigError or an unreachable server is one line, not a trace."""
        with exit_on_config_error():
            try:
                return super().invoke(ctx)
            except (DatabaseUnavailable, redis.ConnectionError) as exc:
                raise click.ClickException(first_line(exc)) from None


@click.group(cls=TaskstreamGroup)
def main() -> None:
    """Operate Taskstream: migrations, admin, events, projections, transfer, run."""
    env = Env.load()
    # Logs go to stderr, so that what a command prints (`--json`, `events show`) stays clean.
    configure_logging("cli", level=read_setting(env, CommonSettings, "log_level"),
                      fmt=read_setting(env, CommonSettings, "log_format"), stream=sys.stderr)
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
    from services.entrypoints.runner import prepare

    click.echo(prepare(Env.load()))


@main.command("run")
@click.option("--procfile", default="Procfile", show_default=True)
def run(procfile: str) -> None:
    """Run the whole system (embedded PostgreSQL/Redis unless configured) under honcho."""
    from services.entrypoints.runner import run_system

    raise SystemExit(run_system(procfile))


def _add_service_commands() -> None:
    for module_name in SERVICE_CLIS:
        for command in import_module(module_name).COMMANDS:
            main.add_command(command)


_add_service_commands()
