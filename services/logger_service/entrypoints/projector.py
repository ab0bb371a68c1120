"""The `projector` process: the shared stream consumer applying events to the projections."""

from __future__ import annotations

import logging

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
from shared.stream.consumer import StreamConsumer
from shared.stream.observer import Observers
from shared.stream.redis_bus import RedisStreamBus

log = logging.getLogger("taskstream.projector")


def build_consumer(settings: Settings, engine: Engine, client: redis.Redis) -> StreamConsumer:
    """Wire the projection, bus, cache and applier lock into a consumer."""
    cache = DatePageCache(client, settings.common.namespace, settings.cache_ttl_seconds)
    versions = VersionPublisher(cache, lambda after: versions_after(engine, after))
    projection = LoggerProjection(sql_transaction(engine), versions,
                                  timezone=settings.transfer_timezone)
    bus = RedisStreamBus(client, settings.common.stream_key())
    lock = PostgresAdvisoryLock(
        settings.database_url, f"{PROJECTION_NAME}:{settings.projector.group}"
    )
    metrics = ProjectorMetrics(bus, lambda: read_checkpoint(engine, PROJECTION_NAME)[0])
    return StreamConsumer(bus, projection, settings.projector.options.named(), lock,
                          observer=Observers(metrics, versions))


def run_projector() -> None:
    """Run until SIGTERM or SIGINT, finishing the batch in hand."""
    settings = process_settings(load_settings, "projector")
    common = settings.common
    serve_metrics(settings.projector.metrics_port, "Projector")
    engine = engine_for(settings.database_url, common)
    client = redis_client(common.redis_url)
    consumer = build_consumer(settings, engine, client)
    stop = stop_on_signals("Projector")
    log.info("projector %s started on %s (group %s)", consumer.options.consumer,
             settings.common.stream_key(), consumer.options.group)
    try:
        consumer.run(stop)
    finally:
        client.close()
        engine.dispose()
        log.info("projector %s stopped", consumer.options.consumer)
