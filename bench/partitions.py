"""The partitioned log's benchmarks (part of `make bench BENCH=cluster`).

From one backlog of `BENCH_CLUSTER_EVENTS` stored `TaskCreated` events (default 1,000,000):

- the relay publishes it to one plain Redis with one partition, and to the local Redis
  Cluster with `STREAM_PARTITIONS` = 4 (in process, one `publish_pending` pass each);
- `taskstream projector` processes apply it: 1 process on the single Redis (1 partition),
  1 process and 2 member processes on the cluster (4 partitions), each into a fresh logger
  database; events/s from the first checkpoint that moves to the last event applied;
- a third run on the cluster with 2 members (the second joining the first) SIGKILLs the
  second a second after it took its partitions, and times how long until both of them are
  applied again by the other.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from bench.core import result
from bench.logger_service import logger_database
from bench.task_service import RELAY_BATCH, fill_backlog, tasks_database
from services.logger_service.service_layer.projection import PROJECTION_NAME
from services.task_service.adapters.partition_reads import PartitionReads
from services.task_service.config import RelayConfig
from services.task_service.service_layer.partitioned_relay import PartitionedRelay
from services.task_service.service_layer.relay import Relay
from shared.redis_client import hash_tagged, redis_client
from shared.stream.partitions import Partitioning
from shared.stream.redis_bus import RedisStreamBus
from testbed.polling import wait_for
from testbed.processes import ManagedProcess
from testbed.stack import TASKSTREAM

COMMAND = "make bench BENCH=cluster"
EVENTS = int(os.environ.get("BENCH_CLUSTER_EVENTS", "1000000"))
PARTITIONS = Partitioning(4)
SEEDED = 10.0  # the members are announced before they start, so they start balanced


@dataclass(frozen=True)
class Side:
    """One Redis with its log: where, in which namespace, in how many partitions."""

    url: str
    namespace: str
    partitioning: Partitioning

    @property
    def whole(self) -> str:
        key = f"{self.namespace}:events"
        return hash_tagged(key) if "+cluster" in self.url else key

    def streams(self) -> list[str]:
        return self.partitioning.streams(self.namespace, self.whole)


def relay_rate(engine: Engine, client: redis.Redis, side: Side) -> float:
    """Events/s of one relay pass publishing the whole backlog to `side`."""
    config = RelayConfig(batch_size=RELAY_BATCH, namespace=side.namespace)
    whole = RedisStreamBus(client, side.whole)
    relay = Relay(engine, whole, config) if not side.partitioning.partitioned else \
        PartitionedRelay(engine, whole, [RedisStreamBus(client, s) for s in side.streams()],
                         config)
    started = time.perf_counter()
    relay.publish_pending()
    seconds = time.perf_counter() - started
    if client.xlen(side.whole) != EVENTS:
        raise RuntimeError(f"the relay left {client.xlen(side.whole)} of {EVENTS} events")
    return EVENTS / seconds


def _checkpoints(engine: Engine, names: list[str]) -> list[int]:
    with engine.connect() as connection:
        found: dict[str, int] = dict(connection.execute(text(
            "SELECT name, last_seq FROM projection_checkpoints")).all())
    return [int(found.get(name, 0)) for name in names]


@contextmanager
def members(side: Side, database_url: str, count: int, workdir: Path, seeded: bool = True
            ) -> Iterator[list[ManagedProcess]]:
    """`count` projector processes on `side` in a group of their own (each run reads the
    streams from the start), announced as members first; killed after."""
    names, group = [f"m{n}" for n in range(count)], f"bench-{uuid.uuid4().hex[:8]}"
    client = redis_client(side.url)
    seconds, _ = client.time()
    if seeded:
        client.zadd(f"{side.namespace}:projector:{group}:members",
                    dict.fromkeys(names, seconds + SEEDED))
    client.close()
    env = {**os.environ, "TASKSTREAM_ENV": "test", "LOGGER_DATABASE_URL": database_url,
           "REDIS_URL": side.url, "REDIS_NAMESPACE": side.namespace, "LOG_FORMAT": "text",
           "STREAM_PARTITIONS": str(side.partitioning.count), "PROJECTOR_METRICS_PORT": "0",
           "PROJECTOR_LOCK_POLL_SECONDS": "0.5", "PROJECTOR_GROUP": group}
    processes = [ManagedProcess(name, [str(TASKSTREAM), "projector"],
                                {**env, "PROJECTOR_CONSUMER_NAME": name}, workdir)
                 for name in names]
    try:
        for process in processes:
            process.start()
        yield processes
    finally:
        for process in processes:
            process.kill()


def _names(side: Side) -> list[str]:
    return [side.partitioning.checkpoint_name(PROJECTION_NAME, p)
            for p in range(side.partitioning.count)]


def projector_rate(pg: str, side: Side, lengths: list[int], count: int) -> float:
    """Events/s of `count` projector processes applying the backlog from `side`."""
    with logger_database(pg) as engine, tempfile.TemporaryDirectory() as tmp:
        names = _names(side)
        url = engine.url.render_as_string(hide_password=False)
        with members(side, url, count, Path(tmp)):
            wait_for(lambda: sum(_checkpoints(engine, names)) > 0, timeout=120, interval=0.02)
            started = time.perf_counter()
            wait_for(lambda: _checkpoints(engine, names) == lengths, timeout=3600,
                     interval=0.05)
            return sum(lengths) / (time.perf_counter() - started)


def rebalance_seconds(pg: str, side: Side, lengths: list[int]) -> float:
    """Seconds from SIGKILLing one of two members until both its partitions move again."""
    with logger_database(pg) as engine, tempfile.TemporaryDirectory() as tmp:
        names = _names(side)
        url = engine.url.render_as_string(hide_password=False)
        with members(side, url, 2, Path(tmp), seeded=False) as (_first, second):
            # sorted by name, m1 owns partitions 1 and 3 once both members are in
            wait_for(lambda: _owns(second, (1, 3)), timeout=120, interval=0.05)
            time.sleep(1.0)  # applying
            second.kill()
            killed = time.perf_counter()
            time.sleep(0.3)  # a commit already sent may still land
            before = _checkpoints(engine, names)

            def moved() -> bool:
                now = _checkpoints(engine, names)
                return all(now[p] > before[p] or now[p] == lengths[p] for p in (1, 3))

            wait_for(moved, timeout=60, interval=0.02)
            return time.perf_counter() - killed


def _owns(process: ManagedProcess, partitions: tuple[int, ...]) -> bool:
    logs = process.logs()
    return all(f"now applies partition {p}" in logs for p in partitions)


def run(pg: str, single_url: str, cluster_url: str) -> list[dict[str, Any]]:
    """Every figure of the partitioned log."""
    tag = uuid.uuid4().hex[:8]
    single = Side(single_url, f"bench-{tag}-one", Partitioning(1))
    cluster = Side(cluster_url, f"bench-{tag}-parts", PARTITIONS)
    clients = {side: redis_client(side.url) for side in (single, cluster)}
    try:
        with tasks_database(pg) as db_url:
            engine = create_engine(db_url)
            fill_backlog(engine, EVENTS)
            relayed = {side: relay_rate(engine, clients[side], side) for side in (single,
                                                                                   cluster)}
            lengths = PartitionReads(engine, PARTITIONS).counts(EVENTS)
            engine.dispose()
        applied = {"one": projector_rate(pg, single, [EVENTS], 1),
                   "parts": projector_rate(pg, cluster, lengths, 1),
                   "members": projector_rate(pg, cluster, lengths, 2)}
        moved = rebalance_seconds(pg, cluster, lengths)
    finally:
        for side, client in clients.items():
            client.delete(*side.streams(), side.whole)
            client.close()
    combined = {"one": 1 / (1 / relayed[single] + 1 / applied["one"]),
                "parts": 1 / (1 / relayed[cluster] + 1 / applied["parts"]),
                "members": 1 / (1 / relayed[cluster] + 1 / applied["members"])}
    notes = (f"backlog of {EVENTS:,} TaskCreated events; relay in process in batches of "
             f"{RELAY_BATCH} (with 4 partitions it also keeps the whole log's stream), then "
             "`taskstream projector` processes from the first checkpoint that moved to the "
             "last event applied; count / (relay time + projector time)")
    return [
        result("relay + projector, Redis Cluster, 4 partitions, 1 projector process",
               combined["parts"], "events/s", COMMAND, notes),
        result("relay + projector, single Redis, 1 partition, 1 projector process",
               combined["one"], "events/s", COMMAND, notes),
        result("relay + projector 4 partitions on the cluster / 1 on a single Redis",
               combined["parts"] / combined["one"], "x", COMMAND, "target >= 0.8"),
        result("relay + projector, Redis Cluster, 4 partitions, 2 projector members",
               combined["members"], "events/s", COMMAND, notes),
        result("projector 2 members / 1 process, Redis Cluster, 4 partitions",
               applied["members"] / applied["parts"], "x", COMMAND,
               f"target >= 1.4 (two cores); projector alone: {applied['members']:.0f} vs "
               f"{applied['parts']:.0f} events/s, single Redis 1 partition "
               f"{applied['one']:.0f}"),
        result("relay from a backlog, Redis Cluster, 4 partitions", relayed[cluster],
               "events/s", COMMAND, "4 partition streams and the whole log's, one pass"),
        result("relay from a backlog, single Redis, 1 partition", relayed[single],
               "events/s", COMMAND, "one stream, one pass"),
        result("partitions of a SIGKILLed projector member applied again", moved, "s",
               COMMAND, "2 members, 4 partitions on the cluster; SIGKILL of the member "
               "that joined, 1 s after it took its share of the backlog, until both of its "
               "partitions' checkpoints move again; target <= 5 s"),
    ]
