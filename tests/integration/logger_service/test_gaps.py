"""A tiny `RELAY_STREAM_MAXLEN`, a stopped projector, a lost group: the read side catches up."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from services.logger_service.adapters.projection_store import sql_transaction
from services.logger_service.service_layer.projection import LoggerBatch
from services.task_service.config import RelayConfig
from services.task_service.service_layer.relay import Relay
from shared.events import EventEnvelope
from shared.stream.entries import seq_of
from shared.stream.redis_bus import RedisStreamBus
from testbed.polling import wait_for
from tests.integration.logger_service.conftest import sql_consumer, store, table
from tests.integration.logger_service.test_projections import snapshot
from tests.unit.logger_service.factories import EventFactory


@contextmanager
def running_relay(tasks_engine: Engine, bus: RedisStreamBus, namespace: str, maxlen: int
                  ) -> Iterator[Relay]:
    """The relay in a thread, publishing in batches of 10 and trimming to `maxlen`."""
    relay = Relay(tasks_engine, bus, RelayConfig(batch_size=10, poll_seconds=0.05,
                                                 maxlen=maxlen, namespace=namespace))
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    try:
        yield relay
    finally:
        relay.stop()
        thread.join(10)
        assert not thread.is_alive(), "the relay did not stop"


def stream_ids(client: redis.Redis, bus: RedisStreamBus) -> list[int]:
    return [seq_of(entry_id) for entry_id, _ in client.xrange(bus.stream)]


def checkpoint(engine: Engine) -> int:
    rows = table(engine, "SELECT last_seq FROM projection_checkpoints WHERE name = 'logger'")
    return int(rows[0][0]) if rows else 0


def applied_cleanly(fresh_database: Callable[[str], str], events: list[EventEnvelope]
                    ) -> dict[str, list[tuple]]:
    """The projection tables after applying `events` once, in order, in a new database."""
    reference = create_engine(fresh_database("logger"))
    try:
        with sql_transaction(reference)() as projection:
            batch = LoggerBatch(projection)
            for event in events:
                batch.apply(event)
            batch.advance(events[-1].seq)
        return snapshot(reference)
    finally:
        reference.dispose()


def test_a_stopped_projector_keeps_its_entries_and_a_lost_group_is_filled_from_the_store(
        bus: RedisStreamBus, engine: Engine, tasks_engine: Engine, events: EventFactory,
        redis_client: redis.Redis, namespace: str, fresh_database) -> None:
    before = [events.created(n) for n in range(1, 11)]
    while_stopped = [events.transfer(), *[events.status(n, "active", "in_progress")
                                          for n in range(1, 11)],
                     *[events.created(n) for n in range(11, 30)]]
    store(tasks_engine, before)
    with running_relay(tasks_engine, bus, namespace, maxlen=3) as relay:
        projector = sql_consumer(engine, bus)
        wait_for(lambda: (projector.step(), checkpoint(engine))[1] == 10)
        store(tasks_engine, while_stopped)  # the projector is stopped from here on
        wait_for(lambda: stream_ids(redis_client, bus) == list(range(11, 41)),
                 what="the acknowledged entries trimmed and the rest kept")
        redis_client.xgroup_destroy(bus.stream, "logger")  # Redis lost the group
        wait_for(lambda: stream_ids(redis_client, bus) == [38, 39, 40])
        projector = sql_consumer(engine, bus)  # back, in a new group: 11..37 are gone
        wait_for(lambda: (projector.step(), checkpoint(engine))[1] == 40, timeout=30,
                 what="the gap filled from the event store")
        assert relay.failures == 0
    assert bus.dead_letter_count() == 0 and bus.group_info("logger").pending == 0
    assert snapshot(engine) == applied_cleanly(fresh_database, before + while_stopped)
