"""The logger's `taskstream` commands: `projector` and `projections status`."""

from __future__ import annotations

import json
from dataclasses import asdict

import click
import redis

from services.logger_service.adapters.projection_store import read_checkpoint
from services.logger_service.config import Settings
from services.logger_service.service_layer.projection import PROJECTION_NAME
from services.logger_service.service_layer.status import projection_status
from shared.bus import RedisStreamBus
from shared.db import create_db_engine


@click.command("projector")
def projector() -> None:
    """Run the projector: apply the event stream to the logger's projections."""
    from services.logger_service.projector import run_projector

    run_projector()


@click.group("projections")
def projections() -> None:
    """Inspect the logger's projections."""


@projections.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def status(as_json: bool) -> None:
    """Print checkpoint, stream head, lag, pending, consumers and dead letters."""
    settings = Settings.from_env()
    engine = create_db_engine(settings.database_url, attempts=1)
    client = redis.Redis.from_url(settings.common.redis_url)
    try:
        checkpoint, moved_at = read_checkpoint(engine, PROJECTION_NAME)
        bus = RedisStreamBus(client, settings.common.stream_key())
        found = projection_status(
            PROJECTION_NAME, settings.projector.group, bus, checkpoint, moved_at
        )
    finally:
        client.close()
        engine.dispose()
    if as_json:
        click.echo(json.dumps(asdict(found), default=str))
    else:
        click.echo("\n".join(found.lines()))


COMMANDS: list[click.Command] = [projector, projections]
