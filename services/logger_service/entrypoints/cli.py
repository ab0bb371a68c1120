"""The logger's `taskstream` commands: `projector`, `projections …` and `dead-letters …`."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from functools import partial

import click

from services.logger_service.adapters.cache import publish_quietly
from services.logger_service.adapters.projection_store import read_checkpoint
from services.logger_service.entrypoints.dead_letter_cli import dead_letters
from services.logger_service.entrypoints.operations import (
    PARTITION_OPTION,
    Ops,
    TaskLog,
    event_store,
    operations,
)
from services.logger_service.entrypoints.repartition_cli import repartition
from services.logger_service.service_layer import projection_rebuild as rebuilds
from services.logger_service.service_layer.status import ProjectionStatus, projection_status
from shared.db import PostgresAdvisoryLock
from shared.stream.applier_lock import ApplierLock
from shared.stream.redis_bus import RedisStreamBus


@click.command("projector")
def projector() -> None:
    """Run the projector: apply the event stream to the logger's projections."""
    from services.logger_service.entrypoints.projector import run_projector

    run_projector()


def _progress(progress: rebuilds.Progress) -> None:
    click.echo(progress.line(), err=True)


@click.group("projections")
def projections() -> None:
    """Inspect, rebuild and verify the logger's projections."""


@projections.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@PARTITION_OPTION
def status(as_json: bool, partition: int | None) -> None:
    """Print checkpoint, stream head, lag, pending, consumers and dead letters (per partition
    and in total when the log is partitioned)."""
    with operations() as ops:
        found = [_partition_status(ops, p, stream)
                 for p, stream in ops.partitions(partition)]
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


def _partition_status(ops: Ops, partition: int, stream: str) -> ProjectionStatus:
    name = ops.checkpoint_name(partition)
    checkpoint, moved_at = read_checkpoint(ops.engine, name)
    return projection_status(name, ops.settings.projector.group,
                             RedisStreamBus(ops.client, stream), checkpoint, moved_at)


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
def _exclusive(name: str, what: str) -> Iterator[tuple[Ops, TaskLog, ApplierLock]]:
    """What one rebuild or verify of a projection works on, and the lock that keeps a second
    one out (which is refused in one line)."""
    with operations() as ops, event_store(ops.partitioning) as log:
        try:
            yield ops, log, PostgresAdvisoryLock(ops.settings.database_url, f"{name}:{what}")
        except (rebuilds.AlreadyRunning, rebuilds.NotSwapped) as exc:
            raise click.ClickException(str(exc)) from None


projections.add_command(repartition)


@projections.command("rebuild")
@PROJECTION_OPTION
@BATCH_OPTION
@click.option("--restart", is_flag=True,
              help="Discard an unfinished rebuild instead of resuming it.")
def rebuild(projection: str | None, batch_size: int, restart: bool) -> None:
    """Rebuild from the event store into shadow tables, catch up, then swap atomically."""
    for name in _names(projection):
        with _exclusive(name, "rebuild") as (ops, log, lock):
            result = rebuilds.rebuild(ops.engine, log.source, lock,
                                      after_swap=partial(_after_swap, ops, log.source),
                                      restart=restart, batch_size=batch_size,
                                      progress=_progress, name=name,
                                      timezone=ops.settings.transfer_timezone,
                                      partitions=log.partitions)
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
    """Compare the live projection tables with a fresh rebuild; exit 1 when they differ.

    On a partitioned log the partitions are first brought to the event store's head: the
    live tables take the events the projectors have not applied yet."""
    differ = False
    for name in _names(projection):
        with _exclusive(name, "verify") as (ops, log, lock):
            tables = rebuilds.verify(ops.engine, log.source, lock, batch_size=batch_size,
                                     progress=_progress, show=show, name=name,
                                     timezone=ops.settings.transfer_timezone,
                                     partitions=log.partitions, cache=ops.versions)
        for table in tables:
            click.echo("\n".join(table.lines()))
        differ = differ or any(t.differing for t in tables)
    click.echo("projections differ from a rebuild" if differ else "projections equal a rebuild")
    sys.exit(1 if differ else 0)


COMMANDS: list[click.Command] = [projector, projections, dead_letters]

