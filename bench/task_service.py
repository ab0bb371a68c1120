"""Task service benchmarks: CSV import vs psql \\copy, POST /task, the relay, concurrent appends.

Sizes come from the environment so a quick run is possible while developing:
`BENCH_TASKS_CSV_ROWS` (default `100000,1000000`), `BENCH_TASKS_RELAY_EVENTS` (default
1,000,000), `BENCH_TASKS_SECONDS` (duration of each throughput run, default 10), and
`BENCH_TASKS_PARTS` picks parts (`csv_import`, `relay`, `appends`, `commands`,
`during_import`; default all).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import redis
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from bench.bare_writer import PGBENCH_NUMBERED_SCRIPT, PGBENCH_SCRIPT, write_for
from bench.core import ROOT, answers, percentile, result, serve_gunicorn, servers
from bench.load import requests_per_second, tool_name
from services.embedded import free_port
from services.registry import migrate_service
from services.task_service.adapters.event_store import event_metadata
from services.task_service.domain.model import Context
from shared.db import drop_database, ensure_database
from shared.events import Actor
from testbed.polling import wait_for
from testbed.stack import running_stack
from testbed.tokens import TokenFactory

COMMAND = "make bench BENCH=task_service"
CSV_ROWS = [int(n) for n in os.environ.get("BENCH_TASKS_CSV_ROWS", "100000,1000000").split(",")]
RELAY_EVENTS = int(os.environ.get("BENCH_TASKS_RELAY_EVENTS", "1000000"))
SECONDS = float(os.environ.get("BENCH_TASKS_SECONDS", "10"))
WARMUP_SECONDS = 3  # of load before each HTTP figure, dropped (`warmed_rate`)
PARTIAL = bool(os.environ.get("BENCH_TASKS_PARTS", "").strip())  # some parts: keep the rest
CONNECTIONS = 16
WRITERS = (1, 4, 16)
RELAY_BATCH = 1000  # RELAY_BATCH_SIZE's default
COLUMNS = "title,description,status,priority,due_date"
STATUSES = ("active", "in_progress", "completed", "cancelled")
PRIORITIES = ("low", "medium", "high")


# --- servers and processes ----------------------------------------------------------------

@contextmanager
def tasks_database(pg_url: str) -> Iterator[str]:
    """A fresh, migrated task database (its URL), dropped afterwards."""
    url = make_url(pg_url).set(database=f"bench_tasks_{uuid.uuid4().hex[:8]}")
    rendered = url.render_as_string(hide_password=False)
    ensure_database(rendered)
    migrate_service("tasks", rendered)
    try:
        yield rendered
    finally:
        drop_database(rendered)


@contextmanager
def jwks_server(tokens: TokenFactory) -> Iterator[str]:
    """Serve the factory's JWKS over HTTP (stands in for the auth service); yield its URL."""
    body = json.dumps(tokens.jwks()).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def task_service(db_url: str, redis_url: str, jwks_url: str) -> Iterator[str]:
    """The task service under gunicorn, as in the Procfile; yield its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "PYTEST"))}
    env.update({
        "TASKSTREAM_ENV": "test", "TASKS_DATABASE_URL": db_url, "REDIS_URL": redis_url,
        "REDIS_NAMESPACE": f"bench-{uuid.uuid4().hex[:8]}", "JWKS_URL": jwks_url,
        "CSV_MAX_BYTES": str(512 * 1024 * 1024), "CSV_MAX_ROWS": str(max(CSV_ROWS)),
        "WEB_TIMEOUT": "600", "LOG_LEVEL": "WARNING", "WEB_CONCURRENCY": "2",
    })
    command = [str(Path(sys.executable).with_name("gunicorn")), "--config",
               "deploy/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
               "services.task_service.entrypoints.app:create_app()"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(base), 60, 0.2, "the task service")
        yield base
    finally:
        process.terminate()
        process.wait(30)


def _ready(base: str) -> bool:
    try:
        return requests.get(f"{base}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def psql_binary() -> str:
    """psql from PATH, else the one bundled with pgserver."""
    found = shutil.which("psql")
    if found:
        return found
    from pgserver._commands import POSTGRES_BIN_PATH  # type: ignore[import-untyped]

    return str(POSTGRES_BIN_PATH / "psql")


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL as libpq (psql) understands it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- CSV import ---------------------------------------------------------------------------

def bench_task(i: int) -> tuple[str, str, str, str, str]:
    """Row `i` of the benchmark's file: title, description, status, priority, due date."""
    return (f"Task {i}", f"Imported row {i}", STATUSES[i % 4], PRIORITIES[i % 3],
            f"2030-{1 + i % 12:02d}-{1 + i % 28:02d}")


def write_csv(path: Path, rows: int) -> None:
    """A CSV of `rows` valid tasks, every column filled."""
    with path.open("w", encoding="utf-8") as out:
        out.write(COLUMNS + "\n")
        for i in range(rows):
            out.write(",".join(bench_task(i)) + "\n")


def psql_copy_seconds(db_url: str, path: Path) -> float:
    """Seconds for `psql \\copy` of the file into a bare table (no index, no constraint)."""
    table = f"bare_{uuid.uuid4().hex[:8]}"
    return _timed_psql(
        db_url,
        f"CREATE TABLE {table} (title text, description text, status text, priority text, "
        "due_date date)",
        f"\\copy {table} ({COLUMNS}) FROM '{path}' WITH (FORMAT csv, HEADER true)\n",
        f"DROP TABLE {table}")


def _timed_psql(db_url: str, setup: str, script: str, teardown: str) -> float:
    """Seconds psql takes to run `script` in one transaction, between untimed SQL."""
    psql, url = psql_binary(), libpq_url(db_url)
    subprocess.run([psql, url, "-q", "-c", setup], check=True)
    started = time.perf_counter()
    subprocess.run([psql, url, "-q", "-v", "ON_ERROR_STOP=1", "-1"], input=script.encode(),
                   check=True)
    seconds = time.perf_counter() - started
    subprocess.run([psql, url, "-q", "-c", teardown], check=True)
    return seconds


def write_ready_rows(folder: Path, rows: int) -> tuple[Path, Path]:
    """The rows an import of `write_csv`'s file stores, ready-made in COPY text format."""
    now = "2030-01-01 00:00:00+00"
    metadata = json.dumps(event_metadata(Context(Actor(1, "admin", "admin"), "bench")))
    tasks, events = folder / "tasks.copy", folder / "events.copy"
    with tasks.open("w", encoding="utf-8") as task_file, \
            events.open("w", encoding="utf-8") as event_file:
        for i in range(rows):
            title, description, status, priority, due = bench_task(i)
            task_file.write(f"{i + 1}\t{title}\t{description}\t{status}\t{priority}\t{due}"
                            f"\t1\t{now}\t{now}\t1\n")
            data = json.dumps({"title": title, "description": description, "status": status,
                               "priority": priority, "due_date": due, "created_by": 1})
            event_file.write(f"{i + 1}\t{uuid.UUID(int=i + 1)}\t{i + 1}\t1\tTaskCreated\t{data}"
                             f"\t{metadata}\t{now}\n")
    return tasks, events


def ready_rows_copy_seconds(db_url: str, tasks: Path, events: Path) -> float:
    """Seconds for `psql \\copy` of ready-made rows into copies of the two tables, indexes and all.

    The floor of what PostgreSQL needs to store an import: no parsing, no validation, no
    ids or event JSON to compute.
    """
    suffix = uuid.uuid4().hex[:8]
    task_table, event_table = f"floor_tasks_{suffix}", f"floor_events_{suffix}"
    return _timed_psql(
        db_url,
        f"CREATE TABLE {task_table} (LIKE task_manager INCLUDING ALL); "
        f"CREATE TABLE {event_table} (LIKE events INCLUDING ALL)",
        f"\\copy {task_table} (id, title, description, status, priority, due_date, "
        f"created_by, created_at, updated_at, version) FROM '{tasks}'\n"
        f"\\copy {event_table} (seq, event_id, task_id, version, type, data, metadata, "
        f"occurred_at) FROM '{events}'\n",
        f"DROP TABLE {task_table}, {event_table}")


def upload_seconds(base: str, headers: dict[str, str], path: Path, rows: int) -> float:
    """Seconds for `POST /upload-csv` (multipart, as `curl -F file=@...`) to answer 201."""
    started = time.perf_counter()
    with path.open("rb") as body:
        response = requests.post(f"{base}/upload-csv", headers=headers, timeout=900,
                                 files={"file": ("tasks.csv", body, "text/csv")})
    seconds = time.perf_counter() - started
    if response.status_code != 201 or response.json() != {"imported": rows}:
        raise RuntimeError(f"upload failed: {response.status_code} {response.text[:500]}")
    return seconds


def csv_import(pg: str, rds: str) -> list[dict[str, Any]]:
    """Each size: HTTP upload end to end, beside psql \\copy of the same file, same run."""
    found = []
    tokens = TokenFactory()
    with tempfile.TemporaryDirectory(prefix="bench-csv-") as tmp, jwks_server(tokens) as jwks:
        for rows in CSV_ROWS:
            path = Path(tmp) / f"tasks-{rows}.csv"
            write_csv(path, rows)
            ready = write_ready_rows(Path(tmp), rows)
            with tasks_database(pg) as db_url, task_service(db_url, rds, jwks) as base:
                copy_rate = rows / psql_copy_seconds(db_url, path)
                floor_rate = rows / ready_rows_copy_seconds(db_url, *ready)
                import_rate = rows / upload_seconds(base, tokens.headers(role="admin"), path,
                                                    rows)
            for written in (path, *ready):
                written.unlink()
            notes = (f"{rows:,} rows ({COLUMNS}); task service under gunicorn (Procfile "
                     "settings, 2 gthread workers) on its own database, multipart upload, "
                     "tasks + TaskCreated events in one transaction")
            found += [
                result(f"CSV import {rows:,} rows (HTTP upload -> 201)", import_rate, "rows/s",
                       COMMAND, notes),
                result(f"psql \\copy {rows:,} rows into a bare table", copy_rate, "rows/s",
                       COMMAND, f"same file, same server, {psql_binary()}"),
                result(f"CSV import / psql \\copy ratio, {rows:,} rows", import_rate / copy_rate,
                       "x", COMMAND, "target >= 0.5"),
                result(f"psql \\copy of the {rows:,} tasks and events ready-made", floor_rate,
                       "rows/s", COMMAND, "rows as an import stores them (ids, seqs, event JSON "
                       "computed beforehand), into copies of task_manager and events with "
                       "their indexes, one transaction"),
                result(f"CSV import / ready-made copy ratio, {rows:,} rows",
                       import_rate / floor_rate, "x", COMMAND,
                       "what parsing, validating and building the rows in SQL cost"),
            ]
    return found


# --- command throughput -----------------------------------------------------------------

TASK_BODY = {"title": "bench task", "priority": "high"}


def command_throughput(pg: str, rds: str) -> list[dict[str, Any]]:
    """`POST /task` requests/s straight to the task service and through the gateway, beside
    pgbench's two-insert transaction at as many clients, in the same run."""
    client = "wrk -t2" if tool_name() == "wrk" else "Python thread pool (wrk not installed)"
    extra = {"RATE_LIMIT_DEFAULT": "100000000/minute", "WEB_CONCURRENCY": "2"}
    with running_stack(pg, rds, extra_env=extra) as stack:
        headers = stack.login()
        direct, gateway = (warmed_rate(f"{base}/task", headers)
                           for base in (stack.url("tasks"), stack.base_url))
        floor, numbered = (bare_writer_rate(pg, {**stack.env, **extra}, flag)
                           for flag in ("", "1"))
        hopped = bare_writer_rate(pg, {**stack.env, **extra}, "1", hop=True)
    notes = (f"{client}, {CONNECTIONS} connections, {SECONDS:g} s each after "
             f"{WARMUP_SECONDS} s of the same load; whole system running "
             "(testbed.stack: gunicorn 2 gthread workers per service, relay and projector "
             "consuming the events); gateway rate limit raised out of the way")
    found = [
        result("POST /task direct to task_service", direct, "requests/s", COMMAND, notes),
        result("POST /task through the gateway", gateway, "requests/s", COMMAND, notes),
        result("bare Flask + psycopg2 POST /task", floor, "requests/s", COMMAND,
               notes + "; the floor for a Python HTTP service: the same gunicorn settings, "
               "the two inserts and commit on a connection per thread, nothing else "
               "(bench.bare_writer), beside the same system"),
        result("bare Flask + psycopg2 POST /task numbered after commit", numbered,
               "requests/s", COMMAND, notes + "; the same, each commit followed by the "
               "numbering step of bench.bare_writer.PGBENCH_NUMBERED_SCRIPT: the floor for a "
               "Python HTTP service keeping a gap-free log as the task service does"),
        result("POST /task direct / bare Flask + psycopg2 ratio", direct / floor, "x",
               COMMAND, "what the task service adds: auth, validation, the numbering step"),
        result("POST /task direct / bare Flask + psycopg2 numbered after commit ratio",
               direct / numbered, "x", COMMAND, "what the task service adds beside that "
               "floor: auth, validation, building the event, its consumers' share of the CPU"),
        result("POST /task through the gateway / bare Flask + psycopg2 ratio",
               gateway / floor, "x", COMMAND, "the gateway's hop on top"),
        result("bare Flask hop + bare Flask + psycopg2 numbered, POST /task", hopped,
               "requests/s", COMMAND, notes + "; bench.bare_app's forwarding hop (the "
               "gateway's Upstream, nothing else) in front of the numbered bare writer: the "
               "floor for two Python hops writing a gap-free log"),
        result("POST /task through the gateway / bare hop + numbered bare writer ratio",
               gateway / hopped, "x", COMMAND, "what the gateway and the task service add "
               "beside that floor"),
    ]
    binary = pgbench_binary()
    if binary is None:
        return found
    with tasks_database(pg) as db_url:
        reference = pgbench_rate(binary, db_url, CONNECTIONS)
    return [*found,
            result(f"pgbench two-insert transaction, {CONNECTIONS} clients (HTTP run)",
                   reference, "tx/s", COMMAND, "measured right after the two HTTP figures"),
            result("POST /task direct / pgbench ratio", direct / reference, "x", COMMAND,
                   "target >= 0.2"),
            result("POST /task through the gateway / pgbench ratio", gateway / reference, "x",
                   COMMAND, "target >= 0.1")]


def bare_writer_rate(pg: str, env: dict[str, str], numbered: str, hop: bool = False) -> float:
    """`POST /task` requests/s of bench.bare_writer under gunicorn on a fresh tasks database
    (`numbered` non-empty: each commit followed by the numbering step), or (`hop`) through
    bench.bare_app's forwarding hop in front of it."""
    with tasks_database(pg) as db_url, ExitStack() as running:
        url = _serve(running, {**env, "BARE_DATABASE_URL": libpq_url(db_url),
                               "BARE_NUMBERED": numbered}, "bench.bare_writer:create_app()")
        if hop:
            url = _serve(running, {**env, "BARE_UPSTREAM_URL": url},
                         "bench.bare_app:create_hop()")
        return warmed_rate(f"{url}/task", {})


def warmed_rate(url: str, headers: dict[str, str]) -> float:
    """`POST /task` requests/s at `url` over SECONDS, after WARMUP_SECONDS of the same load
    whose figure is dropped: a freshly started server's first requests open its database
    connections and prepare its statements, and a run just after another benchmark meets
    the server still writing out that one's work (one run measured 281 requests/s direct
    without it, the next 433)."""
    requests_per_second(url, headers, WARMUP_SECONDS, CONNECTIONS, TASK_BODY)
    return requests_per_second(url, headers, int(SECONDS), CONNECTIONS, TASK_BODY)


def _serve(running: ExitStack, env: dict[str, str], app: str) -> str:
    """Serve `app` under gunicorn until `running` closes; its base URL once it answers."""
    process, url = serve_gunicorn(env, app)
    running.callback(process.wait, 10)
    running.callback(process.terminate)
    wait_for(lambda: answers(f"{url}/task"), timeout=30, what=app)
    return url


def _post_tasks(base: str, headers: dict[str, str], stop: threading.Event,
                samples: list[tuple[float, float, bool]]) -> None:
    """Send `POST /task` one after another until `stop`; record (start, seconds, whether it
    answered its position) of each."""
    session = requests.Session()
    while not stop.is_set():
        started = time.perf_counter()
        response = session.post(f"{base}/task", json=TASK_BODY, headers=headers, timeout=300)
        if response.status_code != 201:
            raise RuntimeError(f"POST /task: {response.status_code} {response.text[:300]}")
        samples.append((started, time.perf_counter() - started,
                        "X-Event-Seq" in response.headers))


def commands_during_import(pg: str, rds: str) -> list[dict[str, Any]]:
    """`POST /task` latency from 4 clients, alone and while the largest CSV import runs."""
    rows, tokens = max(CSV_ROWS), TokenFactory()
    samples: list[tuple[float, float, bool]] = []
    with tempfile.TemporaryDirectory(prefix="bench-csv-") as tmp, jwks_server(tokens) as jwks:
        path = Path(tmp) / "tasks.csv"
        write_csv(path, rows)
        with tasks_database(pg) as db_url, task_service(db_url, rds, jwks) as base:
            headers, stop = tokens.headers(role="admin"), threading.Event()
            clients = [threading.Thread(target=_post_tasks, args=(base, headers, stop, samples))
                       for _ in range(4)]
            for thread in clients:
                thread.start()
            time.sleep(SECONDS)
            began = time.perf_counter()
            import_seconds = upload_seconds(base, headers, path, rows)
            stop.set()
            for thread in clients:
                thread.join()
    alone = [took * 1000 for started, took, _ in samples if started + took < began]
    during = [took * 1000 for started, took, _ in samples if started >= began]
    unplaced = sum(not placed for started, _, placed in samples if started >= began)
    notes = (f"4 clients sending POST /task one after another to the task service (gunicorn, "
             f"2 gthread workers); {len(alone)} requests in the {SECONDS:g} s before, "
             f"{len(during)} during the {rows:,}-row upload ({import_seconds:.1f} s, "
             f"{rows / import_seconds:,.0f} rows/s)")
    return [
        result("POST /task p99, no import", percentile(alone, 99), "ms", COMMAND, notes),
        result(f"POST /task p50 during a {rows:,}-row import", percentile(during, 50), "ms",
               COMMAND, notes),
        result(f"POST /task p99 during a {rows:,}-row import", percentile(during, 99), "ms",
               COMMAND, notes + "; target < 250 ms"),
        result(f"POST /task slowest during a {rows:,}-row import", max(during), "ms", COMMAND,
               notes + f"; {unplaced} answered without X-Event-Seq (committed while the "
               "import numbered its events: a command does not wait for that)"),
    ]


# --- relay --------------------------------------------------------------------------------

BACKLOG = text("""
INSERT INTO events (seq, event_id, task_id, version, type, data, metadata, occurred_at)
SELECT g, gen_random_uuid(), g, 1, 'TaskCreated',
       jsonb_build_object('title', 'Task ' || g, 'description', 'Imported row ' || g,
                          'status', 'active', 'priority', 'medium', 'due_date', '2030-01-01',
                          'created_by', 1),
       jsonb_build_object('actor', jsonb_build_object('id', 1, 'username', 'bench',
                          'role', 'admin'), 'correlation_id', md5(g::text),
                          'schema_version', 1),
       now()
FROM generate_series(:first, :last) AS g
""")


def fill_backlog(engine: Engine, count: int) -> None:
    """Insert `count` committed events in bulk (seq 1..count)."""
    for first in range(1, count + 1, 250_000):
        with engine.begin() as connection:
            connection.execute(BACKLOG, {"first": first, "last": min(count, first + 249_999)})
    with engine.begin() as connection:
        connection.execute(text("ANALYZE events"))


def stored_payloads(engine: Engine, count: int) -> list[tuple[str, str]]:
    """Every event's entry id and encoded envelope, exactly as the relay publishes them."""
    from services.task_service.adapters.stored_events import read_encoded_after

    payloads: list[tuple[str, str]] = []
    with engine.connect() as connection:
        while len(payloads) < count:
            entries = read_encoded_after(connection, len(payloads), 10_000)
            payloads += [(f"{seq}-0", payload) for seq, payload in entries]
    return payloads


def raw_xadd_rate(client: redis.Redis, stream: str, payloads: list[tuple[str, str]]) -> float:
    """Events/s of plain pipelined XADD of prepared payloads, RELAY_BATCH per round trip."""
    started = time.perf_counter()
    for start in range(0, len(payloads), RELAY_BATCH):
        pipe = client.pipeline(transaction=False)
        for entry_id, payload in payloads[start:start + RELAY_BATCH]:
            pipe.xadd(stream, {"event": payload}, id=entry_id)
        pipe.execute()
    return len(payloads) / (time.perf_counter() - started)


def relay_rate(engine: Engine, client: redis.Redis, stream: str, namespace: str,
               count: int = RELAY_EVENTS) -> float:
    """Events/s of the relay publishing the whole backlog of `count` events (one
    `publish_pending` pass)."""
    from services.task_service.config import RelayConfig
    from services.task_service.service_layer.relay import Relay
    from shared.stream.redis_bus import RedisStreamBus

    relay = Relay(engine, RedisStreamBus(client, stream),
                  RelayConfig(batch_size=RELAY_BATCH, namespace=namespace))
    started = time.perf_counter()
    published = relay.publish_pending()
    seconds = time.perf_counter() - started
    if published != count or client.xlen(stream) != count:
        raise RuntimeError(f"relay published {published}, stream has {client.xlen(stream)}")
    return published / seconds


def relay(pg: str, rds: str) -> list[dict[str, Any]]:
    """The relay from a backlog beside raw pipelined XADD of the same payloads."""
    client = redis.Redis.from_url(rds)
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        with tasks_database(pg) as db_url:
            engine = create_engine(db_url)
            fill_backlog(engine, RELAY_EVENTS)
            payloads = stored_payloads(engine, RELAY_EVENTS)
            raw = raw_xadd_rate(client, f"{namespace}:raw", payloads)
            del payloads
            client.delete(f"{namespace}:raw")
            relayed = relay_rate(engine, client, f"{namespace}:events", namespace)
            engine.dispose()
    finally:
        for key in client.scan_iter(match=f"{namespace}*"):
            client.delete(key)
        client.close()
    notes = (f"backlog of {RELAY_EVENTS:,} TaskCreated events, batches of {RELAY_BATCH} "
             "(RELAY_BATCH_SIZE), relay in process")
    return [
        result("relay throughput from a backlog", relayed, "events/s", COMMAND, notes),
        result("raw pipelined XADD (redis-py), same payloads", raw, "events/s", COMMAND,
               notes + "; payloads prepared in memory beforehand"),
        result("relay / raw XADD ratio", relayed / raw, "x", COMMAND, "target >= 0.5"),
    ]


# --- concurrent appends -------------------------------------------------------------------

def pgbench_binary() -> str | None:
    """pgbench from PATH, else the one bundled with pgserver, else None (saying so)."""
    found = shutil.which("pgbench")
    if found:
        return found
    try:
        from pgserver._commands import POSTGRES_BIN_PATH
    except ImportError:
        POSTGRES_BIN_PATH = Path("/nonexistent")
    bundled = POSTGRES_BIN_PATH / "pgbench"
    if bundled.exists():
        return str(bundled)
    print("pgbench not found: install the PostgreSQL client (apt-get install "
          "postgresql-client) for the reference figures; leaving them out", file=sys.stderr)
    return None


def pgbench_rate(binary: str, db_url: str, clients: int, commands: str = PGBENCH_SCRIPT
                 ) -> float:
    """Runs/s of pgbench's script `commands` (the two-insert command transaction)."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write(commands)
        script.flush()
        done = subprocess.run(
            [binary, "-n", "-f", script.name, "-c", str(clients), "-j", str(min(clients, 2)),
             "-T", str(int(SECONDS)), libpq_url(db_url)],
            check=True, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("tps = "):
            return float(line.split()[2])
    raise RuntimeError(f"no tps in pgbench's output: {done.stdout}")


def _writer(db_url: str, ready: Any, go: Any, counts: Any, index: int, bare: bool,
            numbered: bool) -> None:
    """One writer process: once told to go, create tasks (one event each) for SECONDS, with
    `create_task`, or (`bare`) with psycopg2 and the two inserts alone (`numbered`: each
    followed by the numbering step)."""
    from services.task_service.domain.model import Context, CreateTask
    from services.task_service.service_layer.tasks import create_task
    from services.task_service.service_layer.unit_of_work import UnitOfWork
    from shared.events import Actor

    if bare:
        ready.release()
        go.wait()
        counts[index] = write_for(libpq_url(db_url), SECONDS, numbered)
        return
    engine = create_engine(db_url, pool_size=1)
    with engine.connect():
        pass
    context, done = Context(Actor(1, "bench", "admin"), "bench"), 0
    unit = UnitOfWork(engine)
    ready.release()
    go.wait()
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        create_task(unit, CreateTask(f"writer {index} task {done}"), context)
        done += 1
    counts[index] = done
    engine.dispose()


def append_rate(db_url: str, writers: int, bare: bool = False, numbered: bool = False) -> float:
    """Events/s appended by `writers` processes, each committing one task at a time and
    learning its event's seq; checks the log is exactly 1..N afterwards. `bare`: the
    psycopg2 writers of bench.bare_writer instead (nothing checked; `numbered`: each commit
    followed by the numbering step)."""
    context = multiprocessing.get_context("spawn")
    counts, ready, go = context.Array("q", writers), context.Semaphore(0), context.Event()
    processes = [context.Process(target=_writer, args=(db_url, ready, go, counts, i, bare,
                                                         numbered))
                 for i in range(writers)]
    for process in processes:
        process.start()
    for _ in processes:
        if not ready.acquire(timeout=120):
            raise RuntimeError("a writer process did not start")
    go.set()
    for process in processes:
        process.join()
    appended = sum(counts[:])
    if any(process.exitcode != 0 for process in processes) or not appended:
        raise RuntimeError("a writer process failed")
    if bare:
        return appended / SECONDS
    engine = create_engine(db_url)
    with engine.connect() as connection:
        stored, top, numbered = connection.execute(
            text("SELECT count(*), max(seq), count(seq) FROM events")).one()
    engine.dispose()
    if not stored == top == numbered == appended:
        raise RuntimeError(f"{appended} creates but {stored} events, {numbered} numbered, "
                           f"head {top}")
    return appended / SECONDS


def concurrent_appends(pg: str) -> list[dict[str, Any]]:
    """Events/s with 1, 4, 16 writers beside pgbench's two-insert transaction at as many
    clients, each pair measured one after the other on fresh databases."""
    found, binary = [], pgbench_binary()
    for writers in WRITERS:
        plural = "s" if writers > 1 else ""
        with tasks_database(pg) as db_url:
            rate = append_rate(db_url, writers)
        with tasks_database(pg) as db_url:
            floor = append_rate(db_url, writers, bare=True)
        found.append(result(
            f"appends, {writers} concurrent writer{plural}", rate, "events/s", COMMAND,
            "each writer a process running create_task (one task + one event per "
            "transaction, synchronous_commit on, its seq given in its transaction when no "
            "step runs, else after its commit), "
            f"{SECONDS:g} s"))
        found.append(result(
            f"bare psycopg2 writers, {writers} process{'es' if writers > 1 else ''}", floor,
            "tx/s", COMMAND, "the floor for a Python writer: the same two inserts and commit "
            f"and nothing else (bench.bare_writer), as many processes, {SECONDS:g} s"))
        found.append(result(
            f"appends / bare psycopg2 writers ratio, {writers} writer{plural}", rate / floor,
            "x", COMMAND, "what create_task (validation, the numbering step) costs beside "
            "the rows alone"))
        with tasks_database(pg) as db_url:
            numbered_floor = append_rate(db_url, writers, bare=True, numbered=True)
        found.append(result(
            f"bare psycopg2 writers numbered after commit, {writers} "
            f"process{'es' if writers > 1 else ''}", numbered_floor, "commands/s", COMMAND,
            "the floor for a Python writer keeping a gap-free log as create_task does: the "
            "two inserts and commit, then the numbering step of PGBENCH_NUMBERED_SCRIPT "
            f"(bench.bare_writer), as many processes, {SECONDS:g} s"))
        found.append(result(
            f"appends / bare psycopg2 writers numbered after commit ratio, {writers} "
            f"writer{plural}", rate / numbered_floor, "x", COMMAND,
            "what create_task costs beside that floor: validation, building the event"))
        if binary is None:
            continue
        with tasks_database(pg) as db_url:
            reference = pgbench_rate(binary, db_url, writers)
        found.append(result(
            f"pgbench two-insert transaction, {writers} client{plural}", reference, "tx/s",
            COMMAND, f"pgbench -c {writers}: insert a task row, insert an event row, commit "
            f"(the reference: what the server commits), {SECONDS:g} s, same server"))
        found.append(result(
            f"appends / pgbench ratio, {writers} writer{plural}", rate / reference, "x",
            COMMAND, "target >= 0.3 at 16" if writers == 16 else "measured side by side"))
        with tasks_database(pg) as db_url:
            numbered = pgbench_rate(binary, db_url, writers, PGBENCH_NUMBERED_SCRIPT)
        found.append(result(
            f"pgbench command then numbering after its commit, {writers} client{plural}",
            numbered, "commands/s", COMMAND, "the two-insert transaction, then a second one "
            "that tries the sequencing lock and numbers the committed events, else waits "
            "for the step holding it (bench.bare_writer.PGBENCH_NUMBERED_SCRIPT): the "
            f"server's floor for a gap-free log of concurrent commits, {SECONDS:g} s"))
        found.append(result(
            f"pgbench numbered after commit / pgbench ratio, {writers} client{plural}",
            numbered / reference, "x", COMMAND, "what numbering after commit costs the "
            "server alone"))
        found.append(result(
            f"appends / pgbench numbered after commit ratio, {writers} writer{plural}",
            rate / numbered, "x", COMMAND, "ours beside that floor"))
    return found


def run() -> list[dict[str, Any]]:
    """The task service benchmarks `BENCH_TASKS_PARTS` names (all by default), in one run on
    the same servers."""
    parts = {"csv_import": csv_import, "relay": relay,
             "appends": lambda pg, _rds: concurrent_appends(pg),
             "commands": command_throughput, "during_import": commands_during_import}
    wanted = [n.strip() for n in os.environ.get("BENCH_TASKS_PARTS", "").split(",") if n.strip()]
    if unknown := set(wanted) - set(parts):
        sys.exit(f"unknown BENCH_TASKS_PARTS: {', '.join(sorted(unknown))}; have {list(parts)}")
    found: list[dict[str, Any]] = []
    with servers() as (pg, rds):
        for name in wanted or parts:
            found += parts[name](pg, rds)
    return found


if __name__ == "__main__":
    for row in run():
        print(f"{row['figure']}: {row['value']} {row['unit']}  ({row['notes']})")
