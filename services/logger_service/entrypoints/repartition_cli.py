"""`taskstream projections repartition --partitions N`: change how many partitions the log
has on Redis (`STREAM_PARTITIONS`), from the event store.

With the relay and every projector stopped, it takes the applier lock of every current
partition (refusing while any projector holds one, while the relay reported within the last
30 s and did not stop cleanly, or while dead letters wait), then in one transaction brings
every current partition to the event store's head (as a rebuild's swap does) and sets the
checkpoint of each new partition to its position there. Before that transaction commits it
deletes the partition streams of the old and the new count with their marks and recorded
counts (the relay republishes the new ones from the store, and their positions are derived,
so the projector skips what the checkpoints cover), and the projector's group on the whole
log's stream when it leaves it. A crash before the commit leaves the old checkpoints over
streams the old count republishes, so running the command again is safe. Then start the
relay, projectors and logger API with `STREAM_PARTITIONS=N`.
"""

from __future__ import annotations

import contextlib

import click
import redis

from services.logger_service.entrypoints.operations import Ops, event_store, operations
from services.logger_service.entrypoints.projector import applier_lock
from services.logger_service.service_layer import partition_catch_up as catch_up
from shared.db import PostgresAdvisoryLock
from shared.stream.partitions import Partitioning, count_key, mark_key


@click.command("repartition")
@click.option("--partitions", "count", type=click.IntRange(1, 1024), required=True,
              help="The new number of partitions (STREAM_PARTITIONS after the command).")
def repartition(count: int) -> None:
    """Re-partition the log from the event store (relay and projectors stopped)."""
    from services.task_service.adapters.partition_reads import PartitionReads

    with operations() as ops, event_store(ops.partitioning) as log:
        old, new = ops.partitioning, Partitioning(count)
        _refuse_running_relay(ops)
        locks, dates = _take_applier_locks(ops, old), ops.versions
        try:
            _refuse_dead_letters(ops)
            with ops.engine.begin() as connection:
                head = log.source.head()
                applied, versions = catch_up.catch_up(
                    connection, old, PartitionReads(log.engine, old), head,
                    timezone=ops.settings.transfer_timezone, cache=dates)
                positions = catch_up.set_positions(connection, new,
                                                   PartitionReads(log.engine, new), head)
                _drop_streams(ops, old, new)  # before the commit: no new checkpoint over them
            dates.changed(versions)
        finally:
            for lock in locks:
                lock.release()
    click.echo(f"applied {applied} events to bring {old.count} partition(s) to seq {head}; "
               f"checkpoints of {count} partition(s) set at {positions}; now start the relay, "
               f"projectors and logger API with STREAM_PARTITIONS={count}")


def _refuse_running_relay(ops: Ops) -> None:
    from services.task_service.adapters import relay_status as relay

    if relay.may_be_running(relay.read_status(ops.client, ops.settings.common.namespace)):
        raise click.ClickException(
            f"the relay reported within the last {relay.RUNNING_WITHIN:.0f} s and did not "
            "stop cleanly: stop the relay and every projector first")


def _take_applier_locks(ops: Ops, old: Partitioning) -> list[PostgresAdvisoryLock]:
    locks = []
    for partition in range(old.count):
        lock = applier_lock(ops.settings, old, partition)
        locks.append(lock)
        if not lock.acquire():
            for taken in locks:
                taken.release()
            raise click.ClickException(
                f"a projector applies {old.label(partition)}: stop the relay and every "
                "projector first")
    return locks


def _refuse_dead_letters(ops: Ops) -> None:
    waiting = sum(ops.dead_letters(p).count() for p, _ in ops.partitions())
    if waiting:
        raise click.ClickException(
            f"{waiting} dead letters wait: retry or drop them first (`dead-letters list`)")


def _drop_streams(ops: Ops, old: Partitioning, new: Partitioning) -> None:
    """Delete the partition streams (and their keys) of both counts; leave the whole log's
    stream, without the projector's group when the log is now partitioned."""
    common = ops.settings.common
    whole = common.stream_key()
    keys = {key for partitioning in (old, new) if partitioning.partitioned
            for stream in partitioning.streams(common.namespace, whole)
            for key in (stream, f"{stream}:dead", f"{stream}:backfill",
                        f"{stream}:backfill:requests", mark_key(stream),
                        count_key(stream))}
    for key in sorted(keys):
        ops.client.delete(key)
    if new.partitioned and not old.partitioned:
        with contextlib.suppress(redis.ResponseError):  # no stream or no group
            ops.client.xgroup_destroy(whole, ops.settings.projector.group)

