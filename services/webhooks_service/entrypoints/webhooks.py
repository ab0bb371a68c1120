"""The `webhooks` process: queues the event stream for the subscriptions (the shared stream
consumer), works on replays, sends the deliveries, keeps its gauges current and deletes
finished deliveries past their retention; a loop each, one per thread."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import redis
from sqlalchemy.engine import Engine

from services.webhooks_service.adapters.metrics import WebhookMetrics
from services.webhooks_service.adapters.outbox import (
    outbox_figures,
    outbox_transaction,
    read_checkpoint,
)
from services.webhooks_service.adapters.retention import prune_outbox
from services.webhooks_service.adapters.sender import CurlSender
from services.webhooks_service.config import Settings, load_settings
from services.webhooks_service.service_layer.delivery import Dispatcher
from services.webhooks_service.service_layer.fanout import CHECKPOINT_NAME, Fanout
from services.webhooks_service.service_layer.replay import Replayer
from services.webhooks_service.service_layer.retention import Retention
from shared.db import PostgresAdvisoryLock, engine_for
from shared.lifecycle import stop_on_signals
from shared.metrics import serve_metrics
from shared.redis_client import redis_client
from shared.settings import process_settings
from shared.stream.consumer import StreamConsumer
from shared.stream.redis_bus import RedisStreamBus

log = logging.getLogger("taskstream.webhooks")

Loop = Callable[[threading.Event], None]


@dataclass(frozen=True)
class WebhookProcess:
    """The process's loops."""

    consumer: StreamConsumer
    replayer: Replayer
    dispatcher: Dispatcher
    metrics: WebhookMetrics
    retention: Retention | None  # None: deliveries are kept for ever

    def loops(self) -> dict[str, Loop]:
        """Each loop by name."""
        found: dict[str, Loop] = {"queueing": self.consumer.run, "replays": self.replayer.run,
                                  "sending": self.dispatcher.run,
                                  "metrics": self.metrics.run}
        if self.retention is not None:
            found["retention"] = self.retention.run
        return found


def build_process(settings: Settings, engine: Engine, client: redis.Redis) -> WebhookProcess:
    """Wire the outbox, the stream, the sender and the metrics into the loops."""
    delivery = settings.delivery
    transaction = outbox_transaction(engine)
    bus = RedisStreamBus(client, settings.common.stream_key())
    metrics = WebhookMetrics(bus, lambda: read_checkpoint(engine, CHECKPOINT_NAME),
                             lambda: outbox_figures(engine))
    dispatcher = Dispatcher(outbox_transaction(engine, flushed=False),
                            CurlSender(delivery.sender), delivery, metrics)
    lock = PostgresAdvisoryLock(settings.database_url,
                                f"{CHECKPOINT_NAME}:{delivery.options.group}")
    consumer = StreamConsumer(bus, Fanout(transaction, dispatcher.wake),
                              delivery.options.named(), lock, observer=metrics)
    replayer = Replayer(transaction, bus, dispatcher.wake,
                        chunk=delivery.options.batch_size, poll_seconds=delivery.poll_seconds)
    keep = timedelta(days=delivery.retention_days)
    retention = Retention(lambda batch: prune_outbox(engine, keep, batch)) \
        if delivery.retention_days > 0 else None
    with transaction() as outbox:  # the first start begins at the end of the log
        outbox.start_at(CHECKPOINT_NAME, bus.head())
    return WebhookProcess(consumer, replayer, dispatcher, metrics, retention)


def run_loops(loops: dict[str, Loop], stop: threading.Event) -> bool:
    """Run each loop in a thread until `stop`; one that fails stops the others. True if
    every loop ended cleanly."""
    failed: list[str] = []

    def guarded(name: str, loop: Loop) -> None:
        try:
            loop(stop)
        except Exception:
            log.exception("the %s loop of the webhooks process failed; stopping", name)
            failed.append(name)
            stop.set()

    threads = [threading.Thread(target=guarded, args=item, name=item[0])
               for item in loops.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return not failed


def run_webhooks() -> None:
    """Run until SIGTERM or SIGINT, finishing the work in hand; exit 1 if a loop failed."""
    settings = process_settings(load_settings, "webhooks")
    serve_metrics(settings.delivery.metrics_port, "Webhooks")
    engine = engine_for(settings.database_url, settings.common)
    client = redis_client(settings.common.redis_url)
    process = build_process(settings, engine, client)
    stop = stop_on_signals("Webhooks", then=process.dispatcher.wake)
    log.info("webhooks %s started on %s (group %s)", process.consumer.options.consumer,
             settings.common.stream_key(), process.consumer.options.group)
    try:
        clean = run_loops(process.loops(), stop)
    finally:
        client.close()
        engine.dispose()
        log.info("webhooks %s stopped", process.consumer.options.consumer)
    if not clean:
        sys.exit(1)
