"""What the tests of a partitioned log share: four partitions, a history of events, the
relay in threads, and the projection built from the whole log for comparison."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from services.logger_service.config import Settings
from services.task_service.config import RelayConfig
from services.task_service.service_layer.partitioned_relay import PartitionedRelay
from shared.events import EventEnvelope, decode
from shared.settings import CommonSettings
from shared.stream.partitions import Partitioning
from shared.stream.redis_bus import RedisStreamBus
from tests.integration.logger_service.conftest import drain, sql_consumer, table
from tests.integration.relay_threads import relays_in_threads
from tests.unit.logger_service.factories import DAY, EventFactory

PARTITIONS = Partitioning(4)


def history(events: EventFactory, tasks: int = 40) -> list[EventEnvelope]:
    """Creations, changes, deletions and purges of `tasks` tasks, with two transfers."""
    made = [events.created(n) for n in range(1, tasks + 1)]
    made += [events.status(n, "active", "in_progress") for n in range(1, tasks + 1, 3)]
    made.append(events.transfer(DAY))
    made += [events.updated(n, title=f"renamed {n}") for n in range(2, tasks + 1, 5)]
    made += [events.status(n, "active", "completed") for n in range(5, tasks + 1, 7)]
    made += [events.soft_deleted(n) for n in range(3, tasks + 1, 11)]
    made.append(events.purged(tasks))
    made.append(events.transfer(DAY.replace(day=DAY.day + 1)))
    made += [events.status(n, "completed", "active") for n in range(5, tasks + 1, 7)]
    return made


def snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """Every projection table, ordered by natural keys (ids differ between appliers)."""
    return {
        "state": table(engine, "SELECT task_id, title, status, priority, deleted, version "
                               "FROM task_state ORDER BY task_id"),
        "logger": table(engine, "SELECT task_id, title, status, date, transferred_at "
                                "FROM task_logger ORDER BY task_id, date"),
        "audit": table(engine, "SELECT event_id, task_id, previous_status, new_status "
                               "FROM audit_log ORDER BY event_id"),
    }


def partition_events(client: redis.Redis, stream: str) -> list[tuple[int, EventEnvelope]]:
    """A partition's entries: (position from the entry id, the event inside)."""
    return [(int(entry_id.decode().split("-")[0]), decode(fields[b"event"]))
            for entry_id, fields in client.xrange(stream)]


def published(client: redis.Redis, stream: str) -> int:
    return int(client.xlen(stream)) if client.exists(stream) else 0


def expected_lengths(made: list[EventEnvelope], partitioning: Partitioning = PARTITIONS
                     ) -> list[int]:
    """How many events each partition gets."""
    return [sum(1 for e in made if partitioning.owns(p, e.task_id))
            for p in range(partitioning.count)]


def logger_settings(logger_url: str, redis_url: str, namespace: str,
                    partitioning: Partitioning = PARTITIONS) -> Settings:
    """The logger's settings on the test's database and namespace."""
    common = CommonSettings(environment="test", redis_url=redis_url, namespace=namespace,
                            stream_partitions=partitioning.count)
    return Settings(common=common, database_url=logger_url)


@pytest.fixture
def streams(namespace: str) -> list[str]:
    """The four partition streams of the test's namespace."""
    return PARTITIONS.streams(namespace, f"{namespace}:events")


@pytest.fixture
def run_relay(tasks_engine: Engine, redis_client: redis.Redis, namespace: str,
              streams: list[str]) -> Iterator[Callable[..., PartitionedRelay]]:
    """Start partitioned relays (4 partitions unless told) in threads; every one is stopped
    at the end."""
    with relays_in_threads() as run:
        def start(batch_size: int = 7, partitioning: Partitioning = PARTITIONS
                  ) -> PartitionedRelay:
            return run(PartitionedRelay(
                tasks_engine, RedisStreamBus(redis_client, f"{namespace}:events"),
                [RedisStreamBus(redis_client, stream)
                 for stream in partitioning.streams(namespace, f"{namespace}:events")],
                RelayConfig(batch_size=batch_size, poll_seconds=0.1, namespace=namespace)))

        yield start



@pytest.fixture
def reference(fresh_database: Callable[[str], str], redis_client: redis.Redis,
              namespace: str) -> Callable[[], dict[str, list[tuple]]]:
    """The projection built from the whole log's stream by one unpartitioned consumer."""
    url = fresh_database("logger")

    def build() -> dict[str, list[tuple]]:
        engine = create_engine(url)
        try:
            drain(sql_consumer(engine, RedisStreamBus(redis_client, f"{namespace}:events")),
                  500)
            return snapshot(engine)
        finally:
            engine.dispose()

    return build


