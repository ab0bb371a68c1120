"""`taskstream` commands of the task service: relay, transfer, tasks rebuild-state, events."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime

import click
from sqlalchemy.engine import Engine

from services.task_service.adapters.stored_events import StoredEvents
from services.task_service.config import Settings, load_settings
from services.task_service.domain.model import Context
from services.task_service.service_layer import event_log
from shared.db import engine_for
from shared.events import Actor, to_dict
from shared.lifecycle import stop_on_signals
from shared.redis_client import redis_client
from shared.stream.partitions import PartitionCountMismatch, claim_count

CLI_ACTOR = Actor(None, "cli", "system")


def _engine(settings: Settings) -> Engine:
    return engine_for(settings.database_url, settings.common)


@click.command("relay")
def relay() -> None:
    """Publish committed task events to the Redis stream (runs until stopped)."""
    from services.task_service.entrypoints.relay import run_relay

    run_relay()


@click.command("transfer")
@click.option("--date", "day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="YYYY-MM-DD; default: today in TRANSFER_TIMEZONE.")
def transfer(day: datetime | None) -> None:
    """Request the daily transfer for a date now (again: adds the tasks not yet logged)."""
    from services.task_service.service_layer.transfer import request_transfer, today_in
    from services.task_service.service_layer.unit_of_work import UnitOfWork

    settings = load_settings()
    when = day.date() if day else today_in(settings.transfer_timezone)
    requested = request_transfer(UnitOfWork(_engine(settings)), when, Context(CLI_ACTOR))
    click.echo(f"Transfer for {requested.date.isoformat()} requested: event {requested.event_id}")


@click.group("tasks")
def tasks() -> None:
    """Tasks: show one as it is or was, rebuild the state table."""


@tasks.command("rebuild-state")
def rebuild_state() -> None:
    """Rebuild the task_manager table from the event store alone."""
    from services.task_service.service_layer.state_rebuild import rebuild_state as rebuild
    from services.task_service.service_layer.unit_of_work import UnitOfWork

    count = rebuild(UnitOfWork(_engine(load_settings())))
    click.echo(f"Rebuilt task_manager from the event store: {count} tasks")


@tasks.command("show")
@click.argument("task_id", type=click.IntRange(min=1))
@click.option("--as-of", "as_of", default=None, metavar="T",
              help="The task as it was then: an ISO 8601 time (UTC without an offset) or a "
                   "position of the event log.")
def show_task(task_id: int, as_of: str | None) -> None:
    """Print a task as it is (or was, with --as-of), folded from its events, as JSON."""
    from services.task_service.adapters.task_history import TaskHistory
    from services.task_service.domain.model import TaskNotFound
    from services.task_service.service_layer.history import NotYetCreated, parse_point, task_at

    try:
        point = None if as_of is None else parse_point(as_of)
    except ValueError:
        raise click.BadParameter("expected an ISO 8601 time or an event position",
                                 param_hint="--as-of") from None
    try:
        task = task_at(TaskHistory(_engine(load_settings())), task_id, point)
    except TaskNotFound:
        raise click.ClickException(f"Task {task_id} not found") from None
    except NotYetCreated:
        raise click.ClickException(f"Task {task_id} did not exist yet at {as_of}") from None
    click.echo(json.dumps(task, indent=2, ensure_ascii=False))


@click.group("events")
def events() -> None:
    """The event log: republish to the stream, show one event, follow the stream."""
    # Logs go to stdout, where these commands print data (`events show 42 | jq`).
    logging.getLogger("taskstream.db").setLevel(logging.WARNING)


class _ProgressLine:
    """A progress line on stderr, redrawn at most twice a second."""

    def __init__(self) -> None:
        self.shown_at = 0.0
        self.text = ""

    def __call__(self, progress: object) -> None:
        now = time.monotonic()
        if now - self.shown_at >= 0.5:
            self.shown_at, self.text = now, progress.line()  # type: ignore[attr-defined]
            click.echo(f"\r{self.text}", err=True, nl=False)

    def close(self) -> None:
        if self.text:
            click.echo("", err=True)


@events.command("republish")
@click.option("--from-seq", type=click.IntRange(min=1), default=1, show_default=True,
              help="First seq to publish; events at or below the stream head are already "
                   "there (or can only come back with --rebuild-stream).")
@click.option("--rebuild-stream", is_flag=True,
              help="Delete the stream (and its consumer groups) and republish it whole.")
@click.option("--batch-size", type=click.IntRange(min=1), default=event_log.BATCH_SIZE,
              show_default=True)
@click.option("--partition", type=int, default=None,
              help="A partition of a partitioned log (STREAM_PARTITIONS > 1) instead of the "
                   "whole log's stream: publish what each partition lacks, this one whole "
                   "with --rebuild-stream (positions are derived: no --from-seq).")
def republish(from_seq: int, rebuild_stream: bool, batch_size: int, partition: int | None
              ) -> None:
    """Publish stored events to the stream again (idempotent: ids are `<seq>-0`)."""
    from services.task_service.service_layer.event_log import RepublishRefused
    from services.task_service.service_layer.event_log import republish as run
    from shared.stream.redis_bus import RedisStreamBus

    settings = load_settings()
    if partition is not None:
        if from_seq != 1:
            raise click.UsageError("--from-seq does not apply to a partition")
        _republish_partition(settings, partition, rebuild_stream, batch_size)
        return
    client = redis_client(settings.common.redis_url)
    stream, line = settings.common.stream_key(), _ProgressLine()
    try:
        done = run(StoredEvents(_engine(settings)), RedisStreamBus(client, stream), from_seq,
                   rebuild=rebuild_stream, batch_size=batch_size, progress=line)
    except RepublishRefused as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        line.close()
        client.close()
    if from_seq <= done.stream_head_before and not done.rebuilt:
        click.echo(f"Seqs {from_seq}..{done.stream_head_before} are at or below the stream "
                   "head: Redis keeps what is there and cannot take back what is missing "
                   "(ids never go backwards); --rebuild-stream republishes the stream whole.")
    if done.rebuilt:
        click.echo(f"Deleted {stream} and its consumer groups (consumers recreate them and "
                   "skip the events they already applied).")
    click.echo(f"Republished {done.added} events to {stream} (seq {done.first_seq}.."
               f"{max(done.first_seq - 1, done.last_seq)}); {done.skipped} were already there.")


def _republish_partition(settings: Settings, partition: int, rebuild: bool, batch_size: int
                         ) -> None:
    """One pass of the partitioned relay, after deleting the partition's stream if asked."""
    from dataclasses import replace

    from services.task_service.service_layer.partitioned_relay import PartitionedRelay
    from shared.stream.redis_bus import RedisStreamBus

    common = settings.common
    streams = _partition_streams(settings, partition)
    client, engine = redis_client(common.redis_url), _engine(settings)
    try:
        buses = [RedisStreamBus(client, stream) for stream in streams]
        claim_count(client, streams, len(streams))
        if rebuild:
            buses[partition].drop()
            click.echo(f"Deleted {streams[partition]} and its consumer groups (consumers "
                       "recreate them and skip the events they already applied).")
        relay = PartitionedRelay(engine, RedisStreamBus(client, common.stream_key()),
                                 buses, replace(settings.relay, batch_size=batch_size))
        try:
            added = relay.publish_pending()
        finally:
            relay.listener.close()
        held = buses[partition].head()
    except PartitionCountMismatch as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        client.close()
        engine.dispose()
    click.echo(f"Republished {added} entries to the log's streams; {streams[partition]} "
               f"holds {held} positions.")


def _partition_streams(settings: Settings, partition: int) -> list[str]:
    streams = settings.common.partition_streams()
    if not settings.common.partitioning.partitioned or not 0 <= partition < len(streams):
        raise click.BadParameter(f"the log has {len(streams)} partition(s) "
                                 "(STREAM_PARTITIONS); a partition is 0.."
                                 f"{len(streams) - 1} of a partitioned log",
                                 param_hint="--partition")
    return streams


@events.command("show")
@click.argument("key")
def show(key: str) -> None:
    """Print one stored event (by SEQ or EVENT_ID) as JSON."""
    from services.task_service.service_layer.event_log import find_event

    try:
        event = find_event(StoredEvents(_engine(load_settings())), key)
    except ValueError:
        raise click.BadParameter(f"{key!r} is neither a seq nor an event id",
                                 param_hint="SEQ|EVENT_ID") from None
    if event is None:
        raise click.ClickException(f"No event {key} in the event store")
    click.echo(json.dumps(to_dict(event), indent=2, ensure_ascii=False))


@events.command("tail")
@click.option("--type", "type_", help="Only events of this type.")
@click.option("--task", "task_id", type=int, help="Only events of this task.")
@click.option("--from-seq", type=click.IntRange(min=1), default=None,
              help="Start at this seq (default: only events published from now on).")
@click.option("--max-events", type=click.IntRange(min=1), default=None,
              help="Stop after printing this many events.")
@click.option("--partition", type=int, default=None,
              help="Follow this partition of a partitioned log (STREAM_PARTITIONS > 1); "
                   "--from-seq is then a position in it.")
def tail(type_: str | None, task_id: int | None, from_seq: int | None,
         max_events: int | None, partition: int | None) -> None:
    """Follow the event stream, one line per event, until Ctrl-C."""
    from services.task_service.service_layer.event_log import TailFilter, describe, follow
    from shared.stream.redis_bus import RedisStreamBus

    settings = load_settings()
    stream = settings.common.stream_key() if partition is None \
        else _partition_streams(settings, partition)[partition]
    client = redis_client(settings.common.redis_url)
    wanted, printed = TailFilter(type_, task_id), 0
    stop = stop_on_signals("events tail")
    try:
        for event in follow(RedisStreamBus(client, stream), from_seq):
            if event is not None and wanted.matches(event):
                click.echo(describe(event))
                printed += 1
            if stop.is_set() or (max_events is not None and printed >= max_events):
                break
    finally:
        client.close()


COMMANDS: list[click.Command] = [relay, transfer, tasks, events]
