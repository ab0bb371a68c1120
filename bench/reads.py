"""Read benchmarks: current tasks pages (with and without `q`), a task's history and `as_of`,
the feed catching up from position 0, and read-your-writes pairs through the gateway.

The stores are filled with set-based SQL (`INSERT … SELECT generate_series`), not through
the API: a million commands would take hours on the 2-core machine, and these figures are
about reading. Sizes: `BENCH_READS_TASKS` current tasks (default 1,000,000) and
`BENCH_READS_EVENTS` events (default 1,000,000, ten per task); `BENCH_READS_SAMPLES` timed
requests per figure (default 400).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
import requests
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bench.core import percentile, result, servers
from bench.logger_service import logger_database
from services.logger_service.adapters.read_models import (
    ProjectionReader,
    counted,
    current_conditions,
    current_tasks_query,
    replicas,
)
from services.logger_service.config import Settings as LoggerSettings
from services.logger_service.entrypoints.app import create_app as logger_app
from services.logger_service.service_layer.filters import TaskFilter, TaskOrder
from services.task_service.adapters.stored_events import StoredEvents
from services.task_service.adapters.task_history import TaskHistory
from services.task_service.config import Settings as TaskSettings
from services.task_service.entrypoints.app import create_app as task_app
from shared.config import Env
from shared.settings import CommonSettings
from testbed.stack import running_stack
from testbed.tokens import TokenFactory

COMMAND = "make bench BENCH=reads"
TASKS = int(os.environ.get("BENCH_READS_TASKS", "1000000"))
EVENTS = int(os.environ.get("BENCH_READS_EVENTS", "1000000"))
VERSIONS = 10  # events per task in the event store
SAMPLES = int(os.environ.get("BENCH_READS_SAMPLES", "400"))
VOCABULARY = (
    "report budget invoice meeting review design deploy release roadmap hiring audit "
    "contract renewal backup migration payroll survey training onboarding offsite "
    "newsletter forecast inventory shipment refund website mobile database security "
    "license vendor customer partner launch campaign webinar workshop interview "
    "benchmark dashboard backlog sprint retrospective estimate quote proposal tender "
    "translation printing catering venue travel visa insurance tax pension")
WORDS = tuple(VOCABULARY.split())
STATUSES = ("active", "in_progress", "completed", "cancelled")
SORTS = ("due_date", "priority", "created_at", "updated_at")

FILL_TASK_STATE = text("""
INSERT INTO task_state (task_id, title, description, status, priority, due_date, deleted,
                        version, updated_at, created_by, created_at)
SELECT n,
       initcap(w.words[1 + n % w.size]) || ' ' || w.words[1 + (n / 7) % w.size] || ' #' || n,
       CASE WHEN n % 5 = 0 THEN NULL
            ELSE 'Notes on the ' || w.words[1 + (n / 3) % w.size] || ' for team ' || n % 40 END,
       (ARRAY['active', 'in_progress', 'completed', 'cancelled'])[1 + n % 4],
       (ARRAY['low', 'medium', 'high'])[1 + (n / 4) % 3],
       CASE WHEN n % 10 = 0 THEN NULL ELSE DATE '2030-01-01' + ((n * 7919) % 730)::int END,
       n % 50 = 0,
       1 + n % 9,
       TIMESTAMPTZ '2030-01-01 00:00:00+00' + ((n * 104729) % 31536000) * interval '1 second',
       1 + n % 100,
       TIMESTAMPTZ '2029-01-01 00:00:00+00' + n * interval '1 second'
FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) n,
     (SELECT string_to_array(:words, ' ') AS words,
             array_length(string_to_array(:words, ' '), 1) AS size) w
""")

# Ten events per task, a task's events spread over the log (seq = (version - 1) * tasks +
# task): TaskCreated, then renames, and every third version a status change.
FILL_EVENTS = text("""
INSERT INTO events (seq, event_id, task_id, version, type, data, metadata, occurred_at)
SELECT s, gen_random_uuid(), t, v,
       CASE WHEN v = 1 THEN 'TaskCreated' WHEN v % 3 = 0 THEN 'TaskStatusChanged'
            ELSE 'TaskUpdated' END,
       CASE WHEN v = 1 THEN jsonb_build_object(
                'title', 'Task ' || t, 'description', 'benchmark', 'status', 'active',
                'priority', 'medium', 'due_date', '2030-06-01', 'created_by', 1)
            WHEN v % 3 = 0 THEN jsonb_build_object(
                'previous_status', CASE WHEN (v / 3) % 2 = 1 THEN 'active' ELSE 'in_progress' END,
                'new_status', CASE WHEN (v / 3) % 2 = 1 THEN 'in_progress' ELSE 'active' END)
            ELSE jsonb_build_object(
                'changes', jsonb_build_object('title', 'Task ' || t || ' v' || v),
                'previous', jsonb_build_object('title', 'Task ' || t || ' v' || (v - 1))) END,
       jsonb_build_object('actor', jsonb_build_object('id', 1, 'username', 'bench',
                          'role', 'admin'), 'correlation_id', 'bench-' || s,
                          'schema_version', 1),
       TIMESTAMPTZ '2030-01-01 00:00:00+00' + s * interval '10 milliseconds'
FROM generate_series(:first, :last) s,
     LATERAL (SELECT (s - 1) % :tasks + 1 AS t, ((s - 1) / :tasks + 1)::int AS v) x
""")

FILL_TASK_MANAGER = text("""
INSERT INTO task_manager (id, title, description, status, priority, due_date, created_by,
                          created_at, updated_at, version, deleted_at)
SELECT t, 'Task ' || t || ' v' || :versions, 'benchmark', 'active', 'medium', DATE '2030-06-01',
       1, now(), now(), :versions, NULL
FROM generate_series(1, :tasks) t
""")


def _chunks(total: int, size: int) -> list[tuple[int, int]]:
    return [(first, min(total, first + size - 1)) for first in range(1, total + 1, size)]


def _timed(call: Callable[[], Any], samples: int) -> list[float]:
    """Milliseconds of each of `samples` calls (after a few untimed warm-up calls)."""
    for _ in range(5):
        call()
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def _common(rds: str) -> CommonSettings:
    os.environ.setdefault("REDIS_URL", rds)
    return CommonSettings.from_env(Env("test"))


def _get(client: FlaskClient, headers: dict[str, str], url: Callable[[], str]
         ) -> Callable[[], Any]:
    def call() -> Any:
        response = client.get(url(), headers=headers)
        assert response.status_code == 200, (response.status_code, response.get_data()[:300])
        return response.get_json()
    return call


# --- current tasks ------------------------------------------------------------------------

def current_tasks(pg: str, rds: str) -> list[dict[str, Any]]:
    """p95 of a filtered, sorted page of current tasks, without and with `q`."""
    rng = random.Random(15)
    with logger_database(pg) as engine:
        started = time.perf_counter()
        for first, last in _chunks(TASKS, 250_000):
            with engine.begin() as connection:
                connection.execute(FILL_TASK_STATE, {"first": first, "last": last,
                                                     "words": " ".join(WORDS)})
        # As autovacuum leaves a table that has settled: statistics and the visibility map
        # (the counts are index-only scans).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE task_state"))
        filled = time.perf_counter() - started
        tokens = TokenFactory()
        client = redis.Redis.from_url(rds)
        settings = LoggerSettings(common=_common(rds), database_url="unused")
        app = logger_app(settings, engine=engine, redis=client, token_verifier=tokens.verifier())
        http, headers = app.test_client(), tokens.headers(role="member")

        def filtered() -> str:
            statuses = ",".join(rng.sample(STATUSES, rng.randrange(1, 3)))
            return (f"/tasks/current?status={statuses}&priority={rng.choice(['low', 'high'])}"
                    f"&sort={rng.choice(SORTS)}&order={rng.choice(['asc', 'desc'])}"
                    f"&page={rng.randrange(1, 6)}&per_page=20")

        plain = _timed(_get(http, headers, filtered), SAMPLES)
        search, search_floor = searches(http, headers, engine, rng)
        reader = ProjectionReader(engine)
        bare = _timed(lambda: reader.current_tasks_page(
            TaskFilter(statuses=("active",), priorities=("high",)), TaskOrder("due_date"),
            40, 20), SAMPLES)
        client.close()
    notes = (f"{TASKS:,} tasks in task_state (2% deleted), {SAMPLES} requests each with "
             "random status/priority/sort/order/page, 20 per page; in-process WSGI client of "
             f"the logger app (no gateway); filled by INSERT ... SELECT and VACUUM ANALYZE in "
             f"{filled:.0f} s")
    return [
        result("current tasks page, filtered + sorted, p95", percentile(plain, 95), "ms",
               COMMAND, notes + "; target < 50 ms"),
        result("current tasks page, filtered + sorted, p50", percentile(plain, 50), "ms",
               COMMAND, notes),
        result("current tasks page with q, p95", percentile(search, 95), "ms", COMMAND,
               notes + "; q = one of 60 words (about 1 task in 30 matches); target < 50 ms"),
        result("current tasks page with q, p50", percentile(search, 50), "ms", COMMAND, notes),
        result("current tasks query alone (reference), p95", percentile(bare, 95), "ms",
               COMMAND, "the same kind of page read by the adapter, no HTTP"),
        result("q: count + page statements alone (the floor), p95",
               percentile(search_floor, 95), "ms", COMMAND,
               "the same requests' two statements run by the adapter beside each request "
               "(in turn before and after it), no HTTP: X-Total-Count's exact count (the GIN "
               "index finds the matches, PostgreSQL then checks each one's row in the heap "
               "for visibility and status) and the 20 rows"),
        result("q: page with q / its floor, p95 ratio",
               percentile(search, 95) / percentile(search_floor, 95), "x", COMMAND, ""),
    ]


def searches(http: FlaskClient, headers: dict[str, str], engine: Engine, rng: random.Random
             ) -> tuple[list[float], list[float]]:
    """Milliseconds of each `q` page request, and of its two statements (the exact count
    and the page) run by the adapter beside it, in turn first and second."""
    timings: list[float] = []
    floors: list[float] = []
    for number in range(SAMPLES + 5):  # the first five untimed, as in _timed
        filters = TaskFilter(statuses=("active", "in_progress"), text=rng.choice(WORDS))
        order = TaskOrder(rng.choice(SORTS), rng.choice([True, False]))
        url = (f"/tasks/current?q={filters.text}&status=active,in_progress&sort={order.field}"
               f"&order={'desc' if order.descending else 'asc'}&per_page=20")
        if number % 2:  # each goes first half the time: neither always finds the cache warm
            floor, took = _statements(engine, filters, order), _request(http, headers, url)
        else:
            took, floor = _request(http, headers, url), _statements(engine, filters, order)
        if number >= 5:
            timings.append(took)
            floors.append(floor)
    return timings, floors


def _request(http: FlaskClient, headers: dict[str, str], url: str) -> float:
    started = time.perf_counter()
    response = http.get(url, headers=headers)
    assert response.status_code == 200, (response.status_code, response.get_data()[:300])
    return (time.perf_counter() - started) * 1000


def _statements(engine: Engine, filters: TaskFilter, order: TaskOrder) -> float:
    """Milliseconds of a current tasks page's two statements: the count and the rows."""
    with engine.connect() as connection:
        started = time.perf_counter()
        connection.execute(counted(replicas, current_conditions(filters))).scalar_one()
        connection.execute(current_tasks_query(filters, order).limit(20)).all()
        return (time.perf_counter() - started) * 1000


# --- the event store: history, as_of, feed ------------------------------------------------

def fill_event_store(engine: Engine, events: int) -> tuple[int, float]:
    """EVENTS events of EVENTS / VERSIONS tasks, and their rows in task_manager."""
    tasks = events // VERSIONS
    started = time.perf_counter()
    for first, last in _chunks(events, 200_000):
        with engine.begin() as connection:
            connection.execute(FILL_EVENTS, {"first": first, "last": last, "tasks": tasks})
    with engine.begin() as connection:
        connection.execute(FILL_TASK_MANAGER, {"tasks": tasks, "versions": VERSIONS})
    # Settled, as autovacuum leaves a log written long ago: hint bits set and statistics
    # taken, so the first reader timed does not pay for writing them.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE events"))
        connection.execute(text("VACUUM ANALYZE task_manager"))
    return tasks, time.perf_counter() - started


def event_store_reads(pg: str, rds: str) -> list[dict[str, Any]]:
    """History and as_of p95, and the feed's catch-up rate from position 0."""
    rng = random.Random(16)
    with logger_database(pg, "tasks") as engine:
        tasks, filled = fill_event_store(engine, EVENTS)
        tokens = TokenFactory()
        settings = TaskSettings(common=_common(rds), database_url="unused")
        app = task_app(settings, engine=engine,
                       token_verifier=tokens.verifier(),
                       redis_client=redis.Redis.from_url(rds))
        http = app.test_client()
        member, service = tokens.headers(role="member"), tokens.headers(role="service")
        history = _timed(_get(http, member, lambda: (
            f"/tasks/current/{rng.randrange(1, tasks + 1)}/history?per_page=100")), SAMPLES)
        as_of = _timed(_get(http, member, lambda: (
            f"/tasks/current/{rng.randrange(1, tasks + 1)}"
            f"?as_of={rng.randrange(EVENTS // 2, EVENTS + 1)}")), SAMPLES)
        as_of_time = _timed(_get(http, member, lambda: (
            f"/tasks/current/{rng.randrange(1, tasks + 1)}"
            f"?as_of=2030-01-01T02:{rng.randrange(30, 60):02d}:00Z")), SAMPLES)
        fold_alone = _timed(lambda: TaskHistory(engine).until(
            rng.randrange(1, tasks + 1), None), SAMPLES)
        feed, raw = catch_up(http, service, engine)
    notes = (f"event store of {EVENTS:,} events ({tasks:,} tasks, {VERSIONS} events each, "
             f"spread over the log), filled by INSERT ... SELECT in {filled:.0f} s; "
             f"{SAMPLES} requests each, random tasks; in-process WSGI client of the task app")
    return [
        result("task history (10 events), p95", percentile(history, 95), "ms", COMMAND,
               notes + "; target < 20 ms"),
        result("task as_of a position, p95", percentile(as_of, 95), "ms", COMMAND,
               notes + "; target < 20 ms"),
        result("task as_of a time, p95", percentile(as_of_time, 95), "ms", COMMAND,
               notes + "; target < 20 ms"),
        result("task events read for the fold alone (reference), p95", percentile(fold_alone, 95),
               "ms", COMMAND, "TaskHistory.until, no HTTP"),
        result("feed catch-up from 0", feed, "events/s", COMMAND,
               f"GET /events?limit=1000 from after=0 to the end of {EVENTS:,} events, each page "
               "parsed as JSON by the client; in-process WSGI; target >= 50,000"),
        result("event store read alone (reference)", raw, "events/s", COMMAND,
               "StoredEvents.read(after, 1000) to the end: the relay's read, no HTTP"),
        result("feed / raw read ratio", feed / raw, "x", COMMAND, ""),
    ]


def catch_up(http: FlaskClient, headers: dict[str, str], engine: Engine) -> tuple[float, float]:
    """Events/s of a feed client reading every event from 0, and of the bare store read."""
    started, after, seen = time.perf_counter(), 0, 0
    while True:
        page = http.get(f"/events?after={after}&limit=1000", headers=headers).get_json()
        if not page["events"]:
            break
        seen, after = seen + len(page["events"]), page["next"]
    feed = seen / (time.perf_counter() - started)
    log, started, after, read = StoredEvents(engine), time.perf_counter(), 0, 0
    while found := log.read(after, 1000):
        read, after = read + len(found), found[-1][0]
    assert seen == read == EVENTS, (seen, read)
    return feed, read / (time.perf_counter() - started)


# --- read your writes through the gateway --------------------------------------------------

def read_your_writes(pg: str, rds: str, rate: int = 100, seconds: int = 20
                     ) -> list[dict[str, Any]]:
    """`POST /task` then `GET /tasks/current/<id>?min_seq=<X-Event-Seq>`, `rate` pairs/s."""
    pairs: list[float] = []
    posts: list[float] = []
    with running_stack(pg, rds) as stack:
        headers, session = stack.login(), requests.Session()
        begin = time.perf_counter()

        def pair(index: int) -> None:
            delay = begin + index / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            started = time.perf_counter()
            created = session.post(f"{stack.base_url}/task", headers=headers,
                                   json={"title": f"pair {index}"})
            written = time.perf_counter()
            read = session.get(f"{stack.base_url}/tasks/current/{created.json()['id']}"
                               f"?min_seq={created.headers['X-Event-Seq']}", headers=headers)
            assert read.status_code == 200 and read.json() == created.json(), read.text
            pairs.append((time.perf_counter() - started) * 1000)
            posts.append((written - started) * 1000)

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(pair, range(rate * seconds)))
        achieved = len(pairs) / (time.perf_counter() - begin)
    notes = (f"{rate} pairs/s offered for {seconds} s ({achieved:.0f}/s achieved), through the "
             "gateway of `taskstream run` (1 worker per service); every read answered the write")
    return [
        result("read-your-writes pair p50", percentile(pairs, 50), "ms", COMMAND, notes),
        result("read-your-writes pair p99", percentile(pairs, 99), "ms", COMMAND, notes),
        result("POST /task alone in those pairs p99 (reference)", percentile(posts, 99), "ms",
               COMMAND, "the write half of each pair: the rest is projection lag and the read"),
    ]


def run() -> list[dict[str, Any]]:
    """Every read benchmark, in one run on the same servers."""
    with servers() as (pg, rds):
        found = current_tasks(pg, rds)
        found += event_store_reads(pg, rds)
        found += read_your_writes(pg, rds)
    return found


if __name__ == "__main__":
    for row in run():
        print(f"{row['figure']}: {row['value']} {row['unit']}  ({row['notes']})")
