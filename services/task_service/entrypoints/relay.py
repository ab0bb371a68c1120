"""`taskstream relay`: the process that publishes committed events to the stream."""

from __future__ import annotations

import logging
import signal
from types import FrameType

import redis

from services.task_service.config import load_settings
from services.task_service.service_layer.relay import Relay
from shared.db import engine_for
from shared.metrics import serve_metrics
from shared.settings import process_settings
from shared.stream.redis_bus import RedisStreamBus

log = logging.getLogger("taskstream.relay")


def run_relay() -> None:
    """Publish until SIGTERM or SIGINT, finishing the batch in hand."""
    settings = process_settings(load_settings, "relay")
    common = settings.common
    serve_metrics(settings.relay_metrics_port, "Relay")
    client = redis.Redis.from_url(common.redis_url, socket_timeout=10, socket_connect_timeout=5)
    relay = Relay(engine_for(settings.database_url, common),
                  RedisStreamBus(client, common.stream_key()), settings.relay)
    stop_on_signals(relay)
    relay.run()


def stop_on_signals(relay: Relay) -> None:
    """Stop cleanly on SIGTERM and SIGINT."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("Relay received signal %d; stopping", signum)
        relay.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handle)
