"""`taskstream relay`: the process that publishes committed events to the stream."""

from __future__ import annotations

import logging

from services.task_service.config import load_settings
from services.task_service.service_layer.partitioned_relay import PartitionedRelay
from services.task_service.service_layer.relay import Relay
from shared.db import engine_for
from shared.lifecycle import stop_on_signals
from shared.metrics import serve_metrics
from shared.redis_client import redis_client
from shared.settings import process_settings
from shared.stream.partitions import PartitionCountMismatch
from shared.stream.redis_bus import RedisStreamBus

log = logging.getLogger("taskstream.relay")


def run_relay() -> None:
    """Publish until SIGTERM or SIGINT, finishing the batch in hand."""
    settings = process_settings(load_settings, "relay")
    common = settings.common
    serve_metrics(settings.relay_metrics_port, "Relay")
    client = redis_client(common.redis_url, socket_timeout=10, socket_connect_timeout=5)
    engine = engine_for(settings.database_url, common)
    bus = RedisStreamBus(client, common.stream_key())
    relay = Relay(engine, bus, settings.relay)
    if common.partitioning.partitioned:
        partitions = [RedisStreamBus(client, stream) for stream in common.partition_streams()]
        relay = PartitionedRelay(engine, bus, partitions, settings.relay)
    stop_on_signals("Relay", then=relay.stop)
    try:
        relay.run()
    except PartitionCountMismatch as exc:
        raise SystemExit(f"relay: {exc}") from None
