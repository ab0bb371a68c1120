"""`taskstream` commands of the task service: relay, transfer, tasks rebuild-state."""

from __future__ import annotations

from datetime import datetime

import click
import redis
from sqlalchemy.engine import Engine

from services.task_service.config import Settings, load_settings
from services.task_service.domain.model import Context
from shared.events import Actor
from shared.logs import configure_logging

CLI_ACTOR = Actor(None, "cli", "system")


def _engine(settings: Settings) -> Engine:
    from services.task_service.app import build_engine

    return build_engine(settings)


@click.command("relay")
def relay() -> None:
    """Publish committed task events to the Redis stream (runs until stopped)."""
    from services.task_service.relay import Relay, RelayConfig, install_signal_handlers
    from shared.bus import RedisStreamBus

    settings = load_settings()
    configure_logging("relay", settings.common.log_level, settings.common.log_format)
    client = redis.Redis.from_url(settings.common.redis_url, socket_timeout=10,
                                  socket_connect_timeout=5)
    config = RelayConfig(settings.relay_batch_size, settings.relay_poll_seconds,
                         settings.relay_stream_maxlen, settings.common.namespace)
    worker = Relay(_engine(settings), RedisStreamBus(client, settings.common.stream_key()), config)
    install_signal_handlers(worker)
    worker.run()


@click.command("transfer")
@click.option("--date", "day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="YYYY-MM-DD; default: today in TRANSFER_TIMEZONE.")
def transfer(day: datetime | None) -> None:
    """Request the daily transfer for a date now (idempotent per date)."""
    from services.task_service.service_layer.transfer import request_transfer, today_in
    from services.task_service.service_layer.unit_of_work import UnitOfWork

    settings = load_settings()
    when = day.date() if day else today_in(settings.transfer_timezone)
    requested = request_transfer(UnitOfWork(_engine(settings)), when, Context(CLI_ACTOR))
    state = "requested" if requested.created else "already requested"
    click.echo(f"Transfer for {requested.date.isoformat()} {state}: event {requested.event_id}")


@click.group("tasks")
def tasks() -> None:
    """Task state commands."""


@tasks.command("rebuild-state")
def rebuild_state() -> None:
    """Rebuild the task_manager table from the event store alone."""
    from services.task_service.service_layer.rebuild import rebuild_state as rebuild

    count = rebuild(_engine(load_settings()))
    click.echo(f"Rebuilt task_manager from the event store: {count} tasks")


COMMANDS: list[click.Command] = [relay, transfer, tasks]
