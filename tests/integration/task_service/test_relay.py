"""The relay: each committed event reaches the stream once, in seq order, whatever fails."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from services.task_service.adapters.event_store import APPEND_LOCK_KEY, Written
from services.task_service.adapters.relay_status import read_status
from services.task_service.config import RelayConfig, Settings
from services.task_service.domain.model import Context, CreateTask, UpdateTask, created_event
from services.task_service.service_layer.csv_import import import_csv
from services.task_service.service_layer.relay import Relay
from services.task_service.service_layer.tasks import create_task, update_task
from services.task_service.service_layer.transfer import request_transfer
from services.task_service.service_layer.unit_of_work import UnitOfWork
from shared.events import Actor, decode
from shared.stream.redis_bus import RedisStreamBus
from testbed.polling import wait_for
from tests.fakes.bus import PublishingRedisBus
from tests.integration.relay_threads import relays_in_threads
from tests.integration.task_service.helpers import (
    read_after,
    store_seqs,
    stream_ids,
    stream_seqs,
)
from tests.proxy import CuttableProxy

CONTEXT = Context(Actor(7, "writer", "admin"), "req-relay")


def write_tasks(engine: Engine, count: int, prefix: str = "task") -> list[int]:
    """Create tasks one transaction each; return their ids."""
    return [create_task(UnitOfWork(engine), CreateTask(f"{prefix} {i}"), CONTEXT).body["id"]
            for i in range(count)]


@pytest.fixture
def stream(settings: Settings) -> str:
    """The test's stream key."""
    return settings.common.stream_key()


@pytest.fixture
def run_relay(engine: Engine, redis_client: redis.Redis, stream: str, namespace: str
              ) -> Iterator[object]:
    """Start relays in threads; every one is stopped at the end."""
    with relays_in_threads() as run:
        def start(relay_engine: Engine = engine, **config: object) -> Relay:
            options = {"poll_seconds": 0.2, "namespace": namespace, "batch_size": 100} | config
            return run(Relay(relay_engine, RedisStreamBus(redis_client, stream),
                             RelayConfig(**options)))  # type: ignore[arg-type]

        yield start


def test_concurrent_writers_reach_the_stream_once_in_seq_order(
        engine: Engine, redis_client: redis.Redis, stream: str, run_relay) -> None:
    """Many writers commit out of order around the relay: no gap, no duplicate, order kept."""
    run_relay()
    ids = write_tasks(engine, 4)

    def writer(worker: int) -> None:
        for round_ in range(15):
            task_id = ids[(worker + round_) % len(ids)]
            update_task(UnitOfWork(engine), UpdateTask(task_id, {"description": f"{worker}"
                                                                 f"-{round_}"}), CONTEXT)
            create_task(UnitOfWork(engine), CreateTask(f"w{worker} {round_}"), CONTEXT)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(writer, range(8)))
    expected = store_seqs(engine)
    assert expected == list(range(1, len(expected) + 1))  # gap-free in the store itself
    wait_for(lambda: stream_seqs(redis_client, stream) == expected, timeout=20)


class Op(NamedTuple):
    """One write as its writer saw it: when it began and ended, and the position answered
    (None when an import held the numbering: then `written` tells where its event is)."""

    began: float
    ended: float
    position: int | None
    written: Written = Written()


class Abandoned(Exception):
    """Raised inside a unit of work after its append, so that it rolls back."""


def abandoned_create(engine: Engine) -> None:
    """A command that appends its event and then rolls back."""
    with pytest.raises(Abandoned), UnitOfWork(engine) as uow:
        task = uow.tasks.create(CreateTask("never"), 7, datetime.now(UTC))
        uow.events.append([created_event(task)], CONTEXT, datetime.now(UTC))
        raise Abandoned


def race_writer(engine: Engine, worker: int, shared: list[int]) -> list[Op]:
    """Eight writes of one kind per worker: CSV imports, or creates and updates of shared
    tasks with a rolled-back append among them."""
    done = []
    for round_ in range(8):
        began, uow = time.monotonic(), UnitOfWork(engine)
        if worker % 4 == 0:
            rows = "".join(f"w{worker} r{round_} {n}\n" for n in range(25)).encode()
            position = import_csv(uow, io.BytesIO(b"title\n" + rows),
                                  CONTEXT).position
            written = uow.events.written
        elif round_ % 2:
            position = update_task(uow, UpdateTask(
                shared[(worker + round_) % len(shared)], {"description": f"{worker}-{round_}"}),
                CONTEXT).position
            written = uow.events.written
        else:
            if round_ == 4:
                abandoned_create(engine)
            created = create_task(uow, CreateTask(f"w{worker} {round_}"), CONTEXT)
            position, written = created.position, created_row(engine, created.body["id"])
        done.append(Op(began, time.monotonic(), position, written))
    return done


def created_row(engine: Engine, task_id: int) -> Written:
    """Where a task's `TaskCreated` is (the create answers its position, not its row)."""
    with engine.connect() as connection:
        return Written(None, connection.execute(
            text("SELECT id FROM events WHERE task_id = :id AND version = 1"),
            {"id": task_id}).scalar_one())


def numbered_later(engine: Engine, ops: list[Op]) -> list[Op]:
    """The ops, each with the seq its event has now where it answered none."""
    with engine.connect() as connection:
        return [op if op.position is not None else op._replace(position=connection.execute(
            text("SELECT seq FROM events WHERE id = :id"), {"id": op.written.row_id}
        ).scalar_one()) for op in ops]


def test_32_writers_and_imports_race_the_relays_and_the_stream_is_exactly_1_to_n(
        engine: Engine, redis_client: redis.Redis, stream: str, run_relay) -> None:
    """Commands, imports and rollbacks from 32 writers while two relays publish: the stream
    carries every committed event once as 1..N, a task's events in version order, and a
    write that ended before another began has the lower position (commit-visibility order)."""
    run_relay(batch_size=7)
    run_relay(batch_size=50)
    shared = write_tasks(engine, 5, "shared")
    with ThreadPoolExecutor(32) as pool:
        ops = [op for done in pool.map(lambda w: race_writer(engine, w, shared), range(32))
               for op in done]
    with engine.connect() as connection:
        stored = connection.execute(text(
            "SELECT seq, event_id::text, task_id, version FROM events ORDER BY id")).all()
    count = len(stored)
    assert count == 5 + 8 * 8 * 25 + 24 * 8  # every committed event, none rolled back
    assert sorted(row.seq for row in stored) == list(range(1, count + 1))
    wait_for(lambda: stream_ids(redis_client, stream)[-1:] == [count], timeout=60)
    published = [decode(fields[b"event"]) for _id, fields in redis_client.xrange(stream)]
    assert [event.seq for event in published] == list(range(1, count + 1))
    assert sorted(event.event_id for event in published) == sorted(r.event_id for r in stored)
    versions: dict[int, list[int]] = {}
    for event in published:
        if event.task_id is not None:
            versions.setdefault(event.task_id, []).append(event.version or 0)
    assert all(seen == list(range(1, len(seen) + 1)) for seen in versions.values())
    ordered = sorted(numbered_later(engine, ops))
    for n, earlier in enumerate(ordered):
        later = [op for op in ordered[n + 1:] if op.began > earlier.ended]
        assert all(op.position > earlier.position for op in later), (earlier, later[:3])


def test_the_relay_numbers_events_whose_writer_never_did(
        engine: Engine, redis_client: redis.Redis, stream: str, run_relay) -> None:
    """A writer that dies between its commit and numbering its event loses nothing."""
    with engine.connect() as step, UnitOfWork(engine) as uow:
        # A numbering step is running, so the command commits its event unnumbered.
        step.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK_KEY})
        task = uow.tasks.create(CreateTask("orphan"), 7, datetime.now(UTC))
        uow.events.append([created_event(task)], CONTEXT, datetime.now(UTC))
        uow.commit()  # and no position asked for: nothing numbered it
        step.rollback()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT seq FROM events")).scalar_one() is None
    run_relay()
    wait_for(lambda: stream_seqs(redis_client, stream) == [1], timeout=20)
    assert store_seqs(engine) == [1]


def test_relay_republishes_when_redis_loses_the_stream(
        engine: Engine, redis_client: redis.Redis, stream: str, run_relay, namespace: str
        ) -> None:
    """The stream vanishes (or loses a prefix) under a running relay: it is rebuilt whole."""
    run_relay()
    write_tasks(engine, 30)
    wait_for(lambda: len(stream_seqs(redis_client, stream)) == 30)
    redis_client.delete(stream)
    write_tasks(engine, 5)
    wait_for(lambda: stream_seqs(redis_client, stream) == list(range(1, 36)))
    # A flush in the middle of a pipelined batch leaves only the batch's tail.
    redis_client.delete(stream)
    redis_client.xadd(stream, {"event": "{}"}, id="36-0")
    write_tasks(engine, 1)
    wait_for(lambda: stream_ids(redis_client, stream)[:3] == [1, 2, 3])
    wait_for(lambda: stream_seqs(redis_client, stream) == list(range(1, 37)))
    # The status of an earlier pass (35 of 35, lag 0) may still be there: wait for this one's.
    status = wait_for(lambda: (s := read_status(redis_client, namespace)).get("store_head")
                      == "36" and s.get("lag") == "0" and s)
    assert status["stream_head"] == "36"


def append_backlog(engine: Engine, count: int, after: int = 0) -> None:
    """Append TaskCreated events `after + 1 .. after + count` in one statement (fast)."""
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO events (seq, event_id, task_id, version, type, data, metadata, "
            "occurred_at) SELECT g, gen_random_uuid(), g, 1, 'TaskCreated', "
            "jsonb_build_object('title', 't' || g), '{}'::jsonb, now() "
            "FROM generate_series(:first, :last) AS g"),
            {"first": after + 1, "last": after + count})


def test_a_backlog_of_several_batches_is_published_whole_in_one_pass(
        engine: Engine, redis_client: redis.Redis, stream: str, namespace: str) -> None:
    """Each batch starts right after the last one: nothing skipped or repeated at a seam."""
    append_backlog(engine, 250)
    relay = Relay(engine, RedisStreamBus(redis_client, stream),
                  RelayConfig(batch_size=100, namespace=namespace))
    assert relay.publish_pending() == 250
    assert stream_seqs(redis_client, stream) == list(range(1, 251))
    assert read_status(redis_client, namespace)["stream_head"] == "250"


def test_trimming_keeps_every_entry_a_stopped_consumer_group_has_not_acknowledged(
        engine: Engine, redis_client: redis.Redis, stream: str, namespace: str) -> None:
    """`RELAY_STREAM_MAXLEN` of 2 with a consumer that read 4 events, acked 3 and stopped."""
    bus = RedisStreamBus(redis_client, stream)
    bus.ensure_group("logger")
    relay = Relay(engine, bus, RelayConfig(batch_size=100, maxlen=2, namespace=namespace))
    append_backlog(engine, 10)
    relay.publish_pending()
    read = bus.read_new("logger", "p1", 4, 0)
    bus.ack("logger", [d.entry_id for d in read[:3]])
    append_backlog(engine, 30, after=10)
    relay.publish_pending()
    assert stream_seqs(redis_client, stream) == list(range(4, 41))
    while deliveries := bus.read_pending("logger", "p1", 100) or bus.read_new(
            "logger", "p1", 100, 0):  # the consumer comes back and catches up
        bus.ack("logger", [d.entry_id for d in deliveries])
    relay.publish_pending()
    assert stream_seqs(redis_client, stream) == [39, 40]


def test_relay_resumes_after_a_crash_between_xadd_and_anything_else(
        engine: Engine, redis_client: redis.Redis, stream: str, run_relay) -> None:
    """Events already XADDed by a dead relay are neither repeated nor reordered."""
    write_tasks(engine, 10)
    with engine.connect() as connection:
        PublishingRedisBus(redis_client, stream).publish(read_after(connection, 0, 6))
    run_relay()
    wait_for(lambda: stream_seqs(redis_client, stream) == list(range(1, 11)))


def test_relay_process_killed_with_sigkill_loses_and_repeats_nothing(
        engine: Engine, redis_client: redis.Redis, stream: str, settings: Settings,
        tmp_path: Path) -> None:
    """`taskstream relay` killed mid-backlog, then restarted: the stream equals the store."""
    append_backlog(engine, 30000)
    env = {**os.environ, "TASKS_DATABASE_URL": settings.database_url,
           "REDIS_URL": settings.common.redis_url, "REDIS_NAMESPACE": settings.common.namespace,
           "RELAY_BATCH_SIZE": "100", "LOG_FORMAT": "text", "TASKSTREAM_ENV": "test"}
    command = [str(Path(sys.executable).with_name("taskstream")), "relay"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    wait_for(lambda: redis_client.exists(stream) and redis_client.xlen(stream) > 1000, 30)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert redis_client.xlen(stream) < 30000, "the relay finished before it was killed"
    second = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: redis_client.xlen(stream) == 30000, 60)
        assert stream_seqs(redis_client, stream) == list(range(1, 30001))
    finally:
        second.send_signal(signal.SIGTERM)
        output, _ = second.communicate(timeout=15)
    assert second.returncode == 0, output
    assert "Relay stopped" in output


def _pg_target(url: str) -> tuple[str, int] | str:
    parsed = make_url(url)
    socket_dir = parsed.query.get("host")
    if socket_dir:
        return f"{socket_dir}/.s.PGSQL.{parsed.port or 5432}"
    return (parsed.host or "127.0.0.1", parsed.port or 5432)


def test_relay_recovers_by_itself_when_postgresql_goes_away_and_comes_back(
        engine: Engine, tasks_url: str, redis_client: redis.Redis, stream: str, run_relay
        ) -> None:
    """The relay's database connections die and are refused for a while; it catches up."""
    proxy = CuttableProxy(_pg_target(tasks_url))
    proxied_url = make_url(tasks_url).set(host="127.0.0.1", port=proxy.port, query={})
    relay_engine = create_engine(proxied_url, pool_pre_ping=True)
    try:
        relay = run_relay(relay_engine)
        write_tasks(engine, 5)
        wait_for(lambda: len(stream_seqs(redis_client, stream)) == 5)
        proxy.cut()
        write_tasks(engine, 5, "while down")
        wait_for(lambda: relay.failures > 0, what="the relay to fail against the dead database")
        assert len(stream_seqs(redis_client, stream)) == 5
        proxy.restore()
        wait_for(lambda: stream_seqs(redis_client, stream) == list(range(1, 11)), 30)
    finally:
        proxy.close()
        relay_engine.dispose()


def test_transfer_events_are_relayed_like_task_events(
        engine: Engine, redis_client: redis.Redis, stream: str, run_relay) -> None:
    """`DailyTransferRequested` (no task) is published in its place in the order."""
    run_relay()
    write_tasks(engine, 2)
    day = date(2025, 4, 5)
    request_transfer(UnitOfWork(engine), day, CONTEXT)
    request_transfer(UnitOfWork(engine), day + timedelta(days=1), CONTEXT)
    wait_for(lambda: stream_seqs(redis_client, stream) == [1, 2, 3, 4])


def test_after_a_small_pass_the_next_waits_for_the_linger(
        engine: Engine, redis_client: redis.Redis, stream: str, run_relay) -> None:
    """Events committed right after a pass that published less than a batch wait until
    `linger_ms` after that pass began, then go out together."""
    run_relay(linger_ms=1000)
    write_tasks(engine, 1)
    wait_for(lambda: stream_seqs(redis_client, stream) == [1])
    seen = time.monotonic()  # the first pass began before this
    write_tasks(engine, 5)
    wait_for(lambda: stream_seqs(redis_client, stream) == list(range(1, 7)))
    assert time.monotonic() - seen >= 0.5
