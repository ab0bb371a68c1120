"""Logger benchmarks: projector throughput, rebuild rate, daily transfer, cached date pages.

Sizes come from `BENCH_LOGGER_EVENTS` (default 1,000,000; also the rebuild's event count) and
`BENCH_LOGGER_TASKS` (default 1,000,000 active tasks for the transfer); `BENCH_LOGGER_PARTS` picks
parts (`projector`, `rebuild`, `transfer`, `date_pages`, `lag`; all by default).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from bench.core import percentile, result, servers
from bench.load import send_steadily
from services.logger_service.adapters.cache import DatePageCache
from services.logger_service.adapters.projection_store import SqlProjectionStore, sql_transaction
from services.logger_service.config import ProjectorSettings, Settings
from services.logger_service.entrypoints.app import create_app
from services.logger_service.service_layer.projection import LoggerProjection
from services.logger_service.service_layer.projection_rebuild import rebuild
from services.registry import migrate_service
from services.task_service.adapters.stored_events import StoredEvents
from shared.config import Env, service_database_url
from shared.db import drop_database, ensure_database
from shared.events import Actor, EventEnvelope, encode
from shared.settings import CommonSettings
from shared.stream.applier_lock import NoLock
from shared.stream.consumer import StreamConsumer
from shared.stream.options import ConsumerOptions
from shared.stream.redis_bus import RedisStreamBus
from testbed.stack import running_stack
from testbed.tokens import TokenFactory

COMMAND = "make bench BENCH=logger_service"
EVENTS = int(os.environ.get("BENCH_LOGGER_EVENTS", "1000000"))
TASKS = int(os.environ.get("BENCH_LOGGER_TASKS", "1000000"))
BATCH = ProjectorSettings().options.batch_size  # the projector's default
AT = dt.datetime(2030, 1, 1, 9, 0, tzinfo=dt.UTC)
ACTOR = Actor(1, "bench", "admin")
StreamReply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]  # XREADGROUP's answer


@contextmanager
def logger_database(pg_url: str, service: str = "logger") -> Iterator[Engine]:
    """A fresh, migrated database of a service (the logger's by default), dropped afterwards."""
    url = make_url(pg_url).set(database=f"bench_{service}_{uuid.uuid4().hex[:8]}")
    rendered = url.render_as_string(hide_password=False)
    ensure_database(rendered)
    migrate_service(service, rendered)
    engine = create_engine(rendered, pool_size=4)
    try:
        yield engine
    finally:
        engine.dispose()
        drop_database(rendered)


def created(seq: int) -> EventEnvelope:
    """A TaskCreated event for task `seq`."""
    return EventEnvelope(
        event_id=str(uuid.uuid4()), seq=seq, type="TaskCreated", task_id=seq, version=1,
        occurred_at=AT, actor=ACTOR, data={
            "title": f"Task {seq}", "description": "benchmark", "status": "active",
            "priority": "medium", "due_date": None, "created_by": 1,
        },
    )


def fill_stream(bus: RedisStreamBus, count: int) -> None:
    """Publish `count` TaskCreated events in pipelined chunks."""
    for start in range(1, count + 1, 10_000):
        bus.publish_encoded([(s, encode(created(s)))
                             for s in range(start, min(count, start + 9_999) + 1)])


def raw_read_and_ack(client: redis.Redis, stream: str, count: int) -> float:
    """Events/s of a bare XREADGROUP + XACK loop over the whole stream."""
    client.xgroup_create(stream, "raw", id="0")
    done, started = 0, time.perf_counter()
    while done < count:
        reply = cast(StreamReply, client.xreadgroup("raw", "r", {stream: ">"}, count=BATCH))
        ids = [entry_id for _, entries in reply for entry_id, _ in entries]
        client.xack(stream, "raw", *ids)
        done += len(ids)
    return count / (time.perf_counter() - started)


def projector_rate(engine: Engine, bus: RedisStreamBus, count: int) -> float:
    """Events/s of the projector applying the backlog (each batch one transaction)."""
    projection = LoggerProjection(sql_transaction(engine))
    options = ConsumerOptions(group="logger", consumer="bench", batch_size=BATCH, block_ms=0)
    consumer = StreamConsumer(bus, projection, options)
    bus.ensure_group("logger")
    consumer.recheck_pending = False
    started = time.perf_counter()
    applied = 0
    while applied < count:
        applied += max(0, consumer.step())
    return count / (time.perf_counter() - started)


def throughput(pg: str, rds: str) -> list[dict[str, Any]]:
    """Projector vs raw XREADGROUP+XACK on the same backlog."""
    client = redis.Redis.from_url(rds)
    stream = f"bench-{uuid.uuid4().hex[:8]}:events"
    bus = RedisStreamBus(client, stream)
    try:
        fill_stream(bus, EVENTS)
        raw = raw_read_and_ack(client, stream, EVENTS)
        with logger_database(pg) as engine:
            applied = projector_rate(engine, bus, EVENTS)
    finally:
        client.delete(stream)
        client.close()
    notes = f"backlog of {EVENTS:,} TaskCreated events, batches of {BATCH}"
    return [
        result("projector throughput", applied, "events/s", COMMAND, notes),
        result("raw XREADGROUP+XACK (redis-py)", raw, "events/s", COMMAND, notes),
        result("projector / raw ratio", applied / raw, "x", COMMAND, "target >= 0.3"),
    ]


STORE_CREATED = text("""
    INSERT INTO events (seq, event_id, task_id, version, type, data, metadata, occurred_at)
    SELECT n, gen_random_uuid(), n, 1, 'TaskCreated',
           jsonb_build_object('title', 'Task ' || n, 'description', 'benchmark',
                              'status', 'active', 'priority', 'medium', 'due_date', NULL,
                              'created_by', 1),
           '{"actor": {"id": 1, "username": "bench", "role": "admin"},
             "correlation_id": "bench", "schema_version": 1}',
           TIMESTAMPTZ '2030-01-01 09:00:00+00'
    FROM generate_series(:first, :last) n
""")


def rebuild_rate(pg: str, count: int) -> list[dict[str, Any]]:
    """Events/s of `projections rebuild` from an event store of `count` events."""
    with logger_database(pg, "tasks") as tasks, logger_database(pg) as engine:
        for first in range(1, count + 1, 100_000):
            with tasks.begin() as connection:
                connection.execute(STORE_CREATED, {"first": first,
                                                   "last": min(count, first + 99_999)})
        with tasks.begin() as connection:
            connection.execute(text("ANALYZE events"))
        done = rebuild(engine, StoredEvents(tasks), NoLock(), batch_size=5000)
    notes = (f"{count:,} TaskCreated events read from the tasks database's event store, "
             "applied into shadow tables (5,000 per transaction) and swapped in")
    return [result("projection rebuild rate", done.rate, "events/s", COMMAND, notes)]


BARE_TRANSFER = (
    "INSERT INTO task_logger (task_id, title, description, status, priority, date, "
    "transferred_at) SELECT task_id, title, description, status, priority, DATE '{day}', now() "
    "FROM task_state WHERE NOT deleted AND status IN ('active', 'in_progress') "
    "ON CONFLICT (task_id, date) DO NOTHING"
)


def bare_transfer_seconds(engine: Engine, day: dt.date) -> tuple[float, str]:
    """The same INSERT … SELECT run bare (psql when installed)."""
    statement = BARE_TRANSFER.format(day=day.isoformat())
    psql = shutil.which("psql")
    started = time.perf_counter()
    if psql:
        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        subprocess.run([psql, url, "-q", "-c", statement], check=True, capture_output=True)
        return time.perf_counter() - started, "psql"
    with engine.begin() as connection:
        connection.execute(text(statement))
    return time.perf_counter() - started, "SQLAlchemy text (no psql)"


def projector_transfer_seconds(engine: Engine, day: dt.date) -> float:
    """The projector's transfer statement, in its own transaction."""
    started = time.perf_counter()
    with engine.begin() as connection:
        SqlProjectionStore(connection).transfer(day, AT)
    return time.perf_counter() - started


def transfer(pg: str) -> list[dict[str, Any]]:
    """Daily transfer of TASKS active tasks: first run, repeat, and bare psql."""
    with logger_database(pg) as engine:
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO task_state (task_id, title, description, status, priority, "
                "version, updated_at) SELECT n, 'Task ' || n, 'benchmark', 'active', 'medium', "
                "1, now() FROM generate_series(1, :n) n"), {"n": TASKS})
            connection.execute(text("ANALYZE task_state"))
            connection.execute(text("SELECT count(*) FROM task_state"))  # warm the cache
        # Each first run starts from an empty task_logger, so neither pays for the other's rows.
        bare, how = bare_transfer_seconds(engine, dt.date(2030, 1, 1))
        with engine.begin() as connection:
            connection.execute(text("TRUNCATE task_logger"))
        first = projector_transfer_seconds(engine, dt.date(2030, 1, 2))
        repeat = projector_transfer_seconds(engine, dt.date(2030, 1, 2))
    notes = f"{TASKS:,} active tasks"
    return [
        result("daily transfer, first run", first, "s", COMMAND, notes),
        result("daily transfer, repeat", repeat, "s", COMMAND, notes + "; inserts 0 rows"),
        result("daily transfer, bare INSERT ... SELECT", bare, "s", COMMAND, f"{notes}; {how}"),
        result("daily transfer / bare ratio", first / bare, "x", COMMAND, "target <= 1.5"),
    ]


def date_page_rate(pg: str, rds: str, hit: bool, requests: int = 2000) -> float:
    """Requests/s of `GET /tasks?date=&per_page=100` in process (WSGI), hit or miss."""
    tokens = TokenFactory()
    client = redis.Redis.from_url(rds)
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    os.environ.setdefault("REDIS_URL", rds)
    common = CommonSettings.from_env(Env("test"))
    settings = Settings(common=common.__class__(**{**common.__dict__, "namespace": namespace}),
                        database_url="unused")
    with logger_database(pg) as engine:
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO task_state (task_id, title, status, priority, version, updated_at) "
                "SELECT n, 'Task ' || n, 'active', 'medium', 1, now() "
                "FROM generate_series(1, 1000) n"))
            SqlProjectionStore(connection).transfer(dt.date(2030, 1, 1), AT)
        app = create_app(settings, engine=engine, redis=client,
                         token_verifier=tokens.verifier())
        http, headers = app.test_client(), tokens.headers(role="member")
        cache = DatePageCache(client, namespace)
        url = "/tasks?date=2030-01-01&per_page=100"
        started = time.perf_counter()
        for number in range(1, requests + 1):
            if not hit:  # a new version of the date each time, as the projector publishes
                cache.publish({dt.date(2030, 1, 1): number})
            http.get(url, headers=headers)
        rate = requests / (time.perf_counter() - started)
    for key in client.scan_iter(match=f"{namespace}*"):
        client.delete(key)
    client.close()
    return rate


def _watch_applied(engine: Engine, seen: dict[int, float], stop: threading.Event) -> None:
    """Record when each task first appears in the logger's task_state.

    Task ids need not be applied in id order, so the poll starts below the lowest id not
    seen yet rather than after the highest one seen.
    """
    floor = 0
    with engine.connect() as connection:
        while not stop.is_set():
            rows = connection.execute(text(
                "SELECT task_id FROM task_state WHERE task_id > :floor"),
                {"floor": floor}).scalars().all()
            connection.commit()
            now = time.perf_counter()
            for task_id in rows:
                seen.setdefault(task_id, now)
            if not floor and seen:
                floor = min(seen) - 1
            while floor + 1 in seen:
                floor += 1
            stop.wait(0.001)


def end_to_end_lag(pg: str, rds: str, rate: int = 100, seconds: int = 20
                   ) -> list[dict[str, Any]]:
    """Time from a 201 of POST /task (through the gateway) to the task in task_state."""
    with running_stack(pg, rds) as stack:
        headers = stack.login()
        engine = create_engine(service_database_url(stack.env["DATABASE_URL"], "logger"))
        seen: dict[int, float] = {}
        stop = threading.Event()
        watcher = threading.Thread(target=_watch_applied, args=(engine, seen, stop))
        watcher.start()
        try:
            begun = time.perf_counter()
            sent = send_steadily(stack, headers, rate, seconds)
            achieved = len(sent) / (time.perf_counter() - begun)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not set(sent) <= set(seen):
                time.sleep(0.05)
        finally:
            stop.set()
            watcher.join()
            engine.dispose()
    lags = [max(0.0, seen[i] - t) * 1000 for i, t in sent.items() if i in seen]
    notes = (f"{rate} POST /task per second offered for {seconds} s through the gateway, "
             f"{achieved:.0f}/s achieved ({len(lags)}/{len(sent)} seen); task_state polled "
             "every ~1 ms")
    at = "" if rate == 100 else f" at {rate}/s"
    return [
        result(f"end-to-end lag p50{at}", percentile(lags, 50), "ms", COMMAND, notes),
        result(f"end-to-end lag p99{at}", percentile(lags, 99), "ms", COMMAND, notes),
    ]


def _date_pages(pg: str, rds: str) -> list[dict[str, Any]]:
    notes = "100 entries per page, in-process WSGI client (not through the gateway)"
    return [result("GET /tasks?date= cache hit", date_page_rate(pg, rds, True),
                   "requests/s", COMMAND, notes),
            result("GET /tasks?date= cache miss", date_page_rate(pg, rds, False),
                   "requests/s", COMMAND, notes + "; a new date version per request")]


PARTS: dict[str, Callable[[str, str], list[dict[str, Any]]]] = {
    "projector": throughput, "rebuild": lambda pg, _rds: rebuild_rate(pg, EVENTS),
    "transfer": lambda pg, _rds: transfer(pg), "date_pages": _date_pages,
    "lag": lambda pg, rds: end_to_end_lag(pg, rds) + end_to_end_lag(pg, rds, rate=500)}
WANTED = [n.strip() for n in os.environ.get("BENCH_LOGGER_PARTS", "").split(",") if n.strip()]
PARTIAL = bool(WANTED)  # some parts: the latest results keep the others' figures


def run() -> list[dict[str, Any]]:
    """The logger benchmarks `BENCH_LOGGER_PARTS` names (all by default), in one run on the
    same servers."""
    if unknown := set(WANTED) - set(PARTS):
        sys.exit(f"unknown BENCH_LOGGER_PARTS: {', '.join(sorted(unknown))}; have {list(PARTS)}")
    found: list[dict[str, Any]] = []
    with servers() as (pg, rds):
        for name in WANTED or PARTS:
            found += PARTS[name](pg, rds)
    return found


if __name__ == "__main__":
    for row in run():
        print(f"{row['figure']}: {row['value']} {row['unit']}  ({row['notes']})")
