"""The `projector` process: the shared stream consumer applying events to the projections."""

from __future__ import annotations

import logging
import threading
from functools import partial

import redis
from sqlalchemy.engine import Engine

from services.logger_service.adapters.cache import DatePageCache, VersionPublisher
from services.logger_service.adapters.metrics import ProjectorMetrics
from services.logger_service.adapters.projection_store import (
    read_checkpoint,
    sql_transaction,
    versions_after,
)
from services.logger_service.config import Settings, load_settings
from services.logger_service.service_layer.projection import PROJECTION_NAME, LoggerProjection
from shared.db import PostgresAdvisoryLock, engine_for
from shared.lifecycle import stop_on_signals
from shared.metrics import serve_metrics
from shared.redis_client import redis_client
from shared.settings import process_settings
from shared.stream.applier_lock import ApplierLock
from shared.stream.consumer import StreamConsumer
from shared.stream.members import Members, PartitionLease
from shared.stream.observer import Observers
from shared.stream.partitions import PartitionCountMismatch, Partitioning, claim_count
from shared.stream.redis_bus import RedisStreamBus

log = logging.getLogger("taskstream.projector")


def build_consumers(settings: Settings, engine: Engine, client: redis.Redis,
                    members: Members | None = None) -> list[StreamConsumer]:
    """Wire the projection, bus, cache and applier lock into a consumer per partition of the
    log (one by default); each partition has its own checkpoint and applier lock, tried only
    while `members` gives the partition to this process (when the log is partitioned)."""
    cache = DatePageCache(client, settings.common.namespace, settings.cache_ttl_seconds)
    versions = VersionPublisher(cache, lambda after: versions_after(engine, after))
    partitioning = settings.common.partitioning
    buses = [RedisStreamBus(client, stream) for stream in settings.common.partition_streams()]
    names = [partitioning.checkpoint_name(PROJECTION_NAME, p) for p in range(len(buses))]
    metrics = ProjectorMetrics([(bus, partial(checkpoint_of, engine, name))
                                for bus, name in zip(buses, names, strict=True)])
    consumers = []
    for partition, (bus, name) in enumerate(zip(buses, names, strict=True)):
        split = (partition, partitioning.count) if partitioning.partitioned else None
        projection = LoggerProjection(sql_transaction(engine, split), versions, name,
                                      timezone=settings.transfer_timezone)
        lock: ApplierLock = applier_lock(settings, partitioning, partition)
        if members is not None and partitioning.partitioned:
            lock = PartitionLease(lock, members, partition)
        consumers.append(StreamConsumer(bus, projection, settings.projector.options.named(),
                                        lock, observer=Observers(metrics, versions)))
    return consumers


def applier_lock(settings: Settings, partitioning: Partitioning, partition: int
                 ) -> PostgresAdvisoryLock:
    """The lock a partition's applier holds (the whole log's when it is not partitioned)."""
    name = partitioning.checkpoint_name(PROJECTION_NAME, partition)
    return PostgresAdvisoryLock(settings.database_url, f"{name}:{settings.projector.group}")


def checkpoint_of(engine: Engine, name: str) -> int:
    """A projection's checkpoint (for the lag gauges)."""
    return read_checkpoint(engine, name)[0]


def run_consumers(consumers: list[StreamConsumer], stop: threading.Event) -> None:
    """Run the consumers until `stop` is set: the only one on this thread, else one thread
    each; if one fails, the others are stopped and the failure is raised."""
    if len(consumers) == 1:
        consumers[0].run(stop)
        return
    failures: list[BaseException] = []

    def run(consumer: StreamConsumer) -> None:
        try:
            consumer.run(stop)
        except BaseException as exc:
            failures.append(exc)
            stop.set()
            raise

    threads = [threading.Thread(target=run, args=(consumer,), name=f"partition-{n}")
               for n, consumer in enumerate(consumers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def run_projector() -> None:
    """Run until SIGTERM or SIGINT, finishing the batch in hand."""
    settings = process_settings(load_settings, "projector")
    common = settings.common
    serve_metrics(settings.projector.metrics_port, "Projector")
    engine = engine_for(settings.database_url, common)
    client = redis_client(common.redis_url)
    options = settings.projector.options.named()
    if common.partitioning.partitioned:
        try:
            claim_count(client, common.partition_streams(), common.partitioning.count)
        except PartitionCountMismatch as exc:
            raise SystemExit(f"projector: {exc}") from None
    members = Members(client, f"{common.namespace}:projector:{options.group}:members",
                      options.consumer, longest_wait=options.longest_wait_seconds
                      ) if common.partitioning.partitioned else None
    consumers = build_consumers(settings, engine, client, members)
    stop = stop_on_signals("Projector")
    log.info("projector %s started on %s (group %s)", options.consumer,
             ", ".join(common.partition_streams()), options.group)
    if members is not None:
        members.start()
    try:
        run_consumers(consumers, stop)
    finally:
        if members is not None:
            members.stop()
        client.close()
        engine.dispose()
        log.info("projector %s stopped", options.consumer)
