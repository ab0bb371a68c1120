"""What the logger's operator commands work on: its database, Redis and the partitions of
the log (`STREAM_PARTITIONS`), each with its stream, checkpoint name and dead letters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

import click
import redis
from sqlalchemy.engine import Engine

from services.logger_service.adapters.cache import DatePageCache, VersionPublisher
from services.logger_service.adapters.dead_letters import DeadLetterStream
from services.logger_service.adapters.projection_store import (
    SqlProjectionStore,
    sql_transaction,
    versions_after,
)
from services.logger_service.config import Settings, load_settings
from services.logger_service.service_layer.projection import PROJECTION_NAME
from services.logger_service.service_layer.projection_rebuild import EventSource, Partitions
from shared.config import Env
from shared.db import create_db_engine
from shared.redis_client import redis_client
from shared.stream.partitions import Partitioning

PARTITION_OPTION = click.option(
    "--partition", type=int, default=None,
    help="Only this partition of a partitioned log (STREAM_PARTITIONS > 1).")


@dataclass
class Ops:
    """What the operator commands work on: the logger database and Redis."""

    settings: Settings
    engine: Engine
    client: redis.Redis

    @property
    def partitioning(self) -> Partitioning:
        """How the log is split."""
        return self.settings.common.partitioning

    @property
    def dead(self) -> DeadLetterStream:
        """The dead-letter stream of the whole log's stream."""
        return DeadLetterStream(self.client, self.settings.common.stream_key())

    def partitions(self, only: int | None = None) -> list[tuple[int, str]]:
        """(partition, stream) of every partition of the log, or of the one asked for."""
        streams = list(enumerate(self.settings.common.partition_streams()))
        if only is None:
            return streams
        if not 0 <= only < len(streams):
            raise click.BadParameter(f"the log has partitions 0..{len(streams) - 1}",
                                     param_hint="--partition")
        return [streams[only]]

    def one_partition(self, only: int | None) -> int:
        """The partition a command works on: the one asked for (needed when partitioned)."""
        if only is None and self.partitioning.partitioned:
            raise click.UsageError(f"the log has {self.partitioning.count} partitions: "
                                   "say which with --partition")
        return self.partitions(only)[0][0]

    def checkpoint_name(self, partition: int) -> str:
        """The projection's checkpoint name in a partition."""
        return self.partitioning.checkpoint_name(PROJECTION_NAME, partition)

    def dead_letters(self, partition: int) -> DeadLetterStream:
        """A partition's dead letters."""
        return DeadLetterStream(self.client, self.partitions(partition)[0][1])

    def transaction(self, partition: int
                    ) -> Callable[[], AbstractContextManager[SqlProjectionStore]]:
        """Transactions on the projection as a partition's applier sees it."""
        split = (partition, self.partitioning.count) if self.partitioning.partitioned else None
        return sql_transaction(self.engine, split)

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


@dataclass(frozen=True)
class TaskLog:
    """The task service's event store, read-only (operator commands only): by seq, and by
    partition when the log is partitioned."""

    engine: Engine
    source: EventSource
    partitions: Partitions | None


@contextmanager
def event_store(partitioning: Partitioning) -> Iterator[TaskLog]:
    """Open the task service's event store for one command."""
    from services.task_service.adapters.partition_reads import PartitionReads
    from services.task_service.adapters.stored_events import StoredEvents

    engine = create_db_engine(Env.load().database_url("tasks"), attempts=1)
    try:
        reads = PartitionReads(engine, partitioning)
        yield TaskLog(engine, StoredEvents(engine),
                      (partitioning, reads) if partitioning.partitioned else None)
    finally:
        engine.dispose()
