"""The logger's `taskstream` commands: `projector`, `projections …` and `dead-letters …`."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial

import click
import redis
from sqlalchemy.engine import Engine

from services.logger_service.adapters.cache import (
    DatePageCache,
    VersionPublisher,
    publish_quietly,
)
from services.logger_service.adapters.dead_letters import DeadLetterStream
from services.logger_service.adapters.projection_store import (
    read_checkpoint,
    sql_transaction,
    versions_after,
)
from services.logger_service.config import Settings, load_settings
from services.logger_service.service_layer import dead_letters as letters
from services.logger_service.service_layer import projection_rebuild as rebuilds
from services.logger_service.service_layer.projection import PROJECTION_NAME
from services.logger_service.service_layer.status import ProjectionStatus, projection_status
from shared.config import Env
from shared.db import PostgresAdvisoryLock, create_db_engine
from shared.redis_client import redis_client
from shared.stream.applier_lock import ApplierLock
from shared.stream.redis_bus import RedisStreamBus


@click.command("projector")
def projector() -> None:
    """Run the projector: apply the event stream to the logger's projections."""
    from services.logger_service.entrypoints.projector import run_projector

    run_projector()


@dataclass
class Ops:
    """What the operator commands work on: the logger database and Redis."""

    settings: Settings
    engine: Engine
    client: redis.Redis

    @property
    def dead(self) -> DeadLetterStream:
        """The dead-letter stream."""
        return DeadLetterStream(self.client, self.settings.common.stream_key())

    @property
    def cache(self) -> DatePageCache:
        """The date-page cache."""
        return DatePageCache(self.client, self.settings.common.namespace,
                             self.settings.cache_ttl_seconds)

    @property
    def versions(self) -> VersionPublisher:
        """What withdraws and publishes the versions of the dates a command changes."""
        return VersionPublisher(self.cache, lambda after: versions_after(self.engine, after))


@contextmanager
def operations() -> Iterator[Ops]:
    """Open the logger database and Redis for one command."""
    settings = load_settings()
    engine = create_db_engine(settings.database_url, attempts=1)
    client = redis_client(settings.common.redis_url)
    try:
        yield Ops(settings, engine, client)
    finally:
        client.close()
        engine.dispose()


@contextmanager
def event_store() -> Iterator[rebuilds.EventSource]:
    """The task service's event store, read-only (operator commands only)."""
    from services.task_service.adapters.stored_events import StoredEvents

    engine = create_db_engine(Env.load().database_url("tasks"), attempts=1)
    try:
        yield StoredEvents(engine)
    finally:
        engine.dispose()


def _progress(progress: rebuilds.Progress) -> None:
    click.echo(progress.line(), err=True)


@click.group("projections")
def projections() -> None:
    """Inspect, rebuild and verify the logger's projections."""


@projections.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--partition", type=int, default=None,
              help="Only this partition of a partitioned log (STREAM_PARTITIONS > 1).")
def status(as_json: bool, partition: int | None) -> None:
    """Print checkpoint, stream head, lag, pending, consumers and dead letters (per partition
    and in total when the log is partitioned)."""
    with operations() as ops:
        found = [_partition_status(ops, p, stream)
                 for p, stream in _partitions(ops.settings, partition)]
    if not ops.settings.common.partitioning.partitioned:
        click.echo(json.dumps(asdict(found[0]), default=str) if as_json
                   else "\n".join(found[0].lines()))
        return
    total = {"lag_events": sum(f.lag_events for f in found),
             "pending": sum(f.pending for f in found),
             "dead_letters": sum(f.dead_letters for f in found)}
    if as_json:
        click.echo(json.dumps({"partitions": [asdict(f) for f in found], **total}, default=str))
        return
    for each in found:
        click.echo("\n".join(each.lines()) + "\n")
    click.echo(f"total:        lag {total['lag_events']} events, pending {total['pending']}, "
               f"dead letters {total['dead_letters']} ({len(found)} partitions shown)")


def _partitions(settings: Settings, only: int | None) -> list[tuple[int, str]]:
    """(partition, stream) of every partition of the log, or of the one asked for."""
    streams = list(enumerate(settings.common.partition_streams()))
    if only is None:
        return streams
    if not 0 <= only < len(streams):
        raise click.BadParameter(f"the log has partitions 0..{len(streams) - 1}",
                                 param_hint="--partition")
    return [streams[only]]


def _partition_status(ops: Ops, partition: int, stream: str) -> ProjectionStatus:
    name = ops.settings.common.partitioning.checkpoint_name(PROJECTION_NAME, partition)
    checkpoint, moved_at = read_checkpoint(ops.engine, name)
    return projection_status(name, ops.settings.projector.group,
                             RedisStreamBus(ops.client, stream), checkpoint, moved_at)


def _whole_log_only(ops: Ops, command: str) -> None:
    """Refuse a command that does not work on a partitioned log yet."""
    if ops.settings.common.partitioning.partitioned:
        raise click.ClickException(
            f"{command} works on a log of one partition only; this one has "
            f"{ops.settings.common.stream_partitions} (STREAM_PARTITIONS)")


PROJECTION_OPTION = click.option(
    "--projection", type=click.Choice(rebuilds.PROJECTIONS), default=None,
    help="Only this projection (default: all; the logger has one: task_state, "
         "task_logger, audit_log).")
BATCH_OPTION = click.option("--batch-size", default=rebuilds.BATCH_SIZE, show_default=True,
                            help="Events per transaction.")


def _names(projection: str | None) -> list[str]:
    """The projection asked for, else every one."""
    return [projection] if projection else list(rebuilds.PROJECTIONS)


@contextmanager
def _exclusive(name: str, what: str) -> Iterator[tuple[Ops, rebuilds.EventSource, ApplierLock]]:
    """What one rebuild or verify of a projection works on, and the lock that keeps a second
    one out (which is refused in one line)."""
    with operations() as ops, event_store() as source:
        try:
            yield ops, source, PostgresAdvisoryLock(ops.settings.database_url, f"{name}:{what}")
        except rebuilds.AlreadyRunning as exc:
            raise click.ClickException(str(exc)) from None


@projections.command("rebuild")
@PROJECTION_OPTION
@BATCH_OPTION
@click.option("--restart", is_flag=True,
              help="Discard an unfinished rebuild instead of resuming it.")
def rebuild(projection: str | None, batch_size: int, restart: bool) -> None:
    """Rebuild from the event store into shadow tables, catch up, then swap atomically."""
    for name in _names(projection):
        with _exclusive(name, "rebuild") as (ops, source, lock):
            _whole_log_only(ops, "projections rebuild")
            result = rebuilds.rebuild(ops.engine, source, lock,
                                      after_swap=partial(_after_swap, ops, source),
                                      restart=restart, batch_size=batch_size,
                                      progress=_progress, name=name,
                                      timezone=ops.settings.transfer_timezone)
        resumed = f", resumed from {result.resumed_from}" if result.resumed_from else ""
        click.echo(f"rebuilt {name}: {result.applied:,} events in {result.seconds:.1f} s "
                   f"({result.rate:,.0f} events/s){resumed}; swapped in at checkpoint "
                   f"{result.checkpoint} (live was at {result.live_checkpoint}); "
                   f"{len(result.skipped)} skipped")


def _after_swap(ops: Ops, source: rebuilds.EventSource, result: rebuilds.Rebuilt,
                versions: dict[dt.date, int]) -> None:
    """Publish the swapped dates' versions; list what the new tables skipped as dead."""
    publish_quietly(ops.cache, versions)
    _dead_letter_skips(ops, source, result.skipped)


def _dead_letter_skips(ops: Ops, source: rebuilds.EventSource, skipped: dict[int, str]) -> None:
    """Make sure every event the rebuilt tables skipped is listed as a dead letter."""
    listed = {letter.seq for letter in ops.dead.list()}
    for seq, error in skipped.items():
        if seq not in listed:
            events = source.read(seq - 1, 1)
            if events:
                ops.dead.add(seq, events[0][1], error, ops.settings.projector.group)


@projections.command("verify")
@PROJECTION_OPTION
@BATCH_OPTION
@click.option("--show", default=10, show_default=True, help="Differing rows listed per table.")
def verify(projection: str | None, batch_size: int, show: int) -> None:
    """Compare the live projection tables with a fresh rebuild; exit 1 when they differ."""
    differ = False
    for name in _names(projection):
        with _exclusive(name, "verify") as (ops, source, lock):
            _whole_log_only(ops, "projections verify")
            tables = rebuilds.verify(ops.engine, source, lock, batch_size=batch_size,
                                     progress=_progress, show=show, name=name,
                                     timezone=ops.settings.transfer_timezone)
        for table in tables:
            click.echo("\n".join(table.lines()))
        differ = differ or any(t.differing for t in tables)
    click.echo("projections differ from a rebuild" if differ else "projections equal a rebuild")
    sys.exit(1 if differ else 0)


@click.group("dead-letters")
def dead_letters() -> None:
    """List, retry or drop events the projector gave up on."""


@dead_letters.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def list_letters(as_json: bool) -> None:
    """Print each dead letter: entry, seq, type, deliveries, error."""
    with operations() as ops:
        _whole_log_only(ops, "dead-letters list")
        found = letters.list_dead_letters(ops.dead)
    for letter in found:
        if as_json:
            click.echo(json.dumps({
                "entry": letter.entry_id, "seq": letter.seq, "type": letter.type,
                "deliveries": letter.deliveries, "error": letter.error, "group": letter.group,
            }))
        else:
            click.echo(f"{letter.entry_id}  seq {letter.seq}  {letter.type}  "
                       f"deliveries {letter.deliveries}  {letter.error}")
    if not as_json:
        click.echo(f"{len(found)} dead letters")


@dead_letters.command("retry")
@click.argument("entry_id")
@click.option("--force", is_flag=True,
              help="Apply even when the task already has later changes.")
def retry(entry_id: str, force: bool) -> None:
    """Apply a dead-lettered event once (ENTRY_ID as listed), then remove it."""
    with operations() as ops:
        _whole_log_only(ops, "dead-letters retry")
        try:
            done = letters.retry(ops.dead, sql_transaction(ops.engine),
                                 ops.versions, entry_id, force=force,
                                 timezone=ops.settings.transfer_timezone)
        except letters.DeadLetterNotFound:
            raise click.ClickException(f"no dead letter {entry_id}") from None
        except letters.RetryRefused as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(done.message)


@dead_letters.command("drop")
@click.argument("entry_id")
def drop(entry_id: str) -> None:
    """Remove a dead letter without applying it."""
    with operations() as ops:
        _whole_log_only(ops, "dead-letters drop")
        try:
            letters.drop(ops.dead, entry_id)
        except letters.DeadLetterNotFound:
            raise click.ClickException(f"no dead letter {entry_id}") from None
    click.echo(f"dropped {entry_id}")


COMMANDS: list[click.Command] = [projector, projections, dead_letters]
