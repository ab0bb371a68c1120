"""Cluster benchmarks: the clustered deployment beside its single-server reference, same run.

- Relay + projector events/s from a backlog of `BENCH_CLUSTER_EVENTS` stored events (default
  1,000,000): the relay publishes the backlog to the event stream, then the projector applies
  it, on the local Redis Cluster (testbed.redis_cluster: 3 masters, 3 replicas) beside one
  plain redis-server of the same binary and settings, with one stream.
- The partitioned log (`bench/partitions.py`): 4 partitions on the cluster beside 1 on a
  single Redis, 2 projector members beside 1, the rebalance after a SIGKILL.
- `POST /task` requests/s through HAProxy: two gateway and two task service replicas beside
  one of each, behind the same HAProxy, on the same cluster and PostgreSQL, rounds interleaved
  (`BENCH_CLUSTER_ROUNDS`, default 3, of `BENCH_CLUSTER_SECONDS`, default 10, each).

Needs redis-server, redis-cli and (for the commands) HAProxy: without them it says how to
install them and measures nothing. `BENCH_CLUSTER_PARTS` picks parts.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, cast

import requests
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url

from bench import partitions
from bench.core import answers, result
from bench.load import requests_per_second, tool_name
from bench.logger_service import BATCH, logger_database, projector_rate
from bench.task_service import RELAY_BATCH, TASK_BODY, fill_backlog, relay_rate, tasks_database
from services.embedded import free_port
from services.registry import DATABASE_SERVICES
from shared.config import service_database_url
from shared.db import drop_database
from shared.redis_client import hash_tagged, redis_client
from shared.stream.redis_bus import RedisStreamBus
from testbed import cluster_deployment as deployment
from testbed.polling import wait_for
from testbed.processes import ManagedProcess
from testbed.redis_cluster import LocalRedisCluster, redis_cluster, single_redis
from testbed.servers import postgres_server

COMMAND = "make bench BENCH=cluster"
EVENTS = int(os.environ.get("BENCH_CLUSTER_EVENTS", "1000000"))
SECONDS = int(os.environ.get("BENCH_CLUSTER_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_CLUSTER_ROUNDS", "3"))
CONNECTIONS = 16
TOOLS = ("redis-server", "redis-cli", "haproxy")
INSTALL = "apt-get install redis-server haproxy"


def missing_tools(haproxy: bool = True) -> list[str]:
    """The programs this benchmark needs that this machine lacks (HAProxy only for the
    commands through the load balancer)."""
    return [tool for tool in TOOLS if (haproxy or tool != "haproxy")
            and not (shutil.which(tool) or shutil.which(tool, path="/usr/sbin"))]


# --- relay + projector --------------------------------------------------------------------

@dataclass(frozen=True)
class EventPath:
    """Events/s of the relay and of the projector over the same backlog, on one Redis, and
    the CPU seconds this process spent in each (the Redis client's share shows there)."""

    relay: float
    projector: float
    relay_cpu: float
    projector_cpu: float

    @property
    def combined(self) -> float:
        """Events/s of the backlog through both: count / (relay's time + projector's time)."""
        return 1 / (1 / self.relay + 1 / self.projector)


def _stream(url: str, namespace: str) -> str:
    """The event stream's key as the services name it on that Redis (tagged on a cluster)."""
    key = f"{namespace}:events"
    return hash_tagged(key) if "+cluster" in url else key


def event_path(pg: str, single_url: str, cluster_url: str) -> tuple[EventPath, EventPath]:
    """The backlog relayed to a single Redis and to the cluster, then applied from each.

    Order single, cluster, cluster, single, so that a change of the machine's load in
    between weighs on both sides alike.
    """
    urls = {"single": single_url, "cluster": cluster_url}
    clients = {side: redis_client(url) for side, url in urls.items()}
    namespaces = {side: f"bench-{uuid.uuid4().hex[:8]}" for side in urls}
    streams = {side: _stream(urls[side], namespaces[side]) for side in urls}
    relayed: dict[str, float] = {}
    applied: dict[str, float] = {}
    cpu: dict[tuple[str, str], float] = {}
    try:
        with tasks_database(pg) as db_url:
            engine: Engine = create_engine(db_url)
            fill_backlog(engine, EVENTS)
            for side in ("single", "cluster"):
                started = time.process_time()
                relayed[side] = relay_rate(engine, clients[side], streams[side],
                                           namespaces[side], EVENTS)
                cpu["relay", side] = time.process_time() - started
            engine.dispose()
        for side in ("cluster", "single"):
            with logger_database(pg) as logger:
                started = time.process_time()
                applied[side] = projector_rate(
                    logger, RedisStreamBus(clients[side], streams[side]), EVENTS)
                cpu["projector", side] = time.process_time() - started
            clients[side].delete(streams[side])
    finally:
        for client in clients.values():
            client.close()
    single, cluster = (EventPath(relayed[side], applied[side], cpu["relay", side],
                                 cpu["projector", side]) for side in ("single", "cluster"))
    return single, cluster


def event_results(single: EventPath, cluster: EventPath) -> list[dict[str, Any]]:
    """The figures of `event_path`."""
    notes = (f"backlog of {EVENTS:,} TaskCreated events stored in PostgreSQL, relayed in "
             f"process in batches of {RELAY_BATCH}, then applied by the projector in process "
             f"in batches of {BATCH}; 1 stream (STREAM_PARTITIONS=1)")
    cluster_notes = notes + "; Redis Cluster of 3 masters and 3 replicas on this machine"
    single_notes = notes + "; one plain redis-server, same binary and settings"
    return [
        result("relay + projector from a backlog, Redis Cluster, 1 partition",
               cluster.combined, "events/s", COMMAND,
               cluster_notes + "; count / (relay time + projector time)"),
        result("relay + projector from a backlog, single Redis", single.combined, "events/s",
               COMMAND, single_notes + "; count / (relay time + projector time)"),
        result("relay + projector cluster (1 partition) / single Redis ratio",
               cluster.combined / single.combined, "x", COMMAND,
               "1 partition; the target >= 0.8 is for 4 partitions (the partitioned figures)"),
        result("relay from a backlog, Redis Cluster", cluster.relay, "events/s", COMMAND,
               cluster_notes),
        result("relay from a backlog, single Redis", single.relay, "events/s", COMMAND,
               single_notes),
        result("projector from a backlog, Redis Cluster", cluster.projector, "events/s",
               COMMAND, cluster_notes),
        result("projector from a backlog, single Redis", single.projector, "events/s",
               COMMAND, single_notes),
        result("relay CPU in its process, Redis Cluster / single Redis",
               cluster.relay_cpu / single.relay_cpu, "x", COMMAND,
               f"{cluster.relay_cpu * 1e6 / EVENTS:.0f} vs {single.relay_cpu * 1e6 / EVENTS:.0f}"
               " us per event (process CPU time: reading PostgreSQL, encoding, the Redis "
               "client's pipeline)"),
        result("projector CPU in its process, Redis Cluster / single Redis",
               cluster.projector_cpu / single.projector_cpu, "x", COMMAND,
               f"{cluster.projector_cpu * 1e6 / EVENTS:.0f} vs "
               f"{single.projector_cpu * 1e6 / EVENTS:.0f} us per event (process CPU time)"),
    ]


# --- commands through the load balancer ---------------------------------------------------

@contextmanager
def balanced_replicas(pg: str, cluster: LocalRedisCluster, workdir: Path
                      ) -> Iterator[tuple[Any, Any]]:
    """Two gateway and two task service replicas, and one of each, behind one HAProxy.

    The processes, their environment and HAProxy's configuration are those of `make
    test-cluster` (testbed.cluster_deployment), on the same cluster and one database; one auth
    replica serves both. Yields the two entries: the pairs' gateway frontend, the single one's.
    """
    with ExitStack() as stack:
        database = make_url(pg).set(drivername="postgresql",
                                    database=f"bench_cluster_{uuid.uuid4().hex[:10]}")
        database_url = database.render_as_string(hide_password=False)
        stack.callback(_drop_databases, database_url)
        frontends = {service: free_port() for service in
                     ("gateway", "auth", "tasks", "logger", "webhooks", "gateway_one",
                      "tasks_one")}
        broker = deployment.RABBITMQ_URL + "//"  # Celery's: no HTTP replica sends to it
        env = deployment.deployment_env(database_url, cluster.url, broker, workdir / "data",
                                        frontends)
        env["RATE_LIMIT_DEFAULT"] = "100000000/minute"  # out of the way of the load
        deployment.prepare(env)
        single_env = {**env, "TASK_SERVICE_URL": f"http://127.0.0.1:{frontends['tasks_one']}"}
        for folder in ("pairs", "one"):
            (workdir / folder).mkdir()
        pairs, pair_ports = deployment.http_replicas(env, workdir / "pairs")
        ones, one_ports = deployment.http_replicas(single_env, workdir / "one")
        chosen = {name: pairs[name] for name in
                  ("auth-1", "gateway-1", "gateway-2", "tasks-1", "tasks-2")}
        chosen |= {"gateway-one": ones["gateway-1"], "tasks-one": ones["tasks-1"]}
        ports = {name: pair_ports[name] for name in pairs if name in chosen}
        ports |= {"gateway-one": one_ports["gateway-1"], "tasks-one": one_ports["tasks-1"]}
        backends = {"auth": [ports["auth-1"]], "gateway": [ports["gateway-1"],
                                                           ports["gateway-2"]],
                    "tasks": [ports["tasks-1"], ports["tasks-2"]],
                    "gateway_one": [ports["gateway-one"]], "tasks_one": [ports["tasks-one"]]}
        config = workdir / "haproxy.cfg"
        config.write_text(deployment.haproxy_config(
            {name: frontends[name] for name in backends}, backends))
        chosen["haproxy"] = ManagedProcess(
            "haproxy", [deployment.haproxy_binary(), "-db", "-f", str(config)], env, workdir)
        for process in reversed(chosen.values()):
            stack.callback(_stop, process)
        chosen["auth-1"].start()  # it makes the development signing keys the others read
        _wait_answers(f"http://127.0.0.1:{ports['auth-1']}/readyz")
        for name, process in chosen.items():
            if name != "auth-1":
                process.start()
        for name, port in ports.items():
            # A gateway's readiness asks the logger and webhooks too, which are not running.
            path = "/healthz" if name.startswith("gateway") else "/readyz"
            _wait_answers(f"http://127.0.0.1:{port}{path}")
        yield deployment.LoadBalancer({"gateway": frontends["gateway"]}), \
            deployment.LoadBalancer({"gateway": frontends["gateway_one"]})


def _drop_databases(database_url: str) -> None:
    for service in DATABASE_SERVICES:
        drop_database(service_database_url(database_url, service))


def _stop(process: ManagedProcess) -> None:
    if process.process is not None:
        process.terminate(15)


def _wait_answers(url: str) -> None:
    wait_for(lambda: answers(url, 5, lambda status: status == 200), timeout=180,
             interval=0.25, what=f"{url} to answer 200")


def _logged_in(entry: Any) -> dict[str, str] | None:
    try:
        return dict(entry.login())
    except requests.RequestException:
        return None


def _created(entry: Any, headers: dict[str, str]) -> bool:
    try:
        reply = entry.session.post(f"{entry.base_url}/task", headers=headers, json=TASK_BODY,
                                   timeout=60)
    except requests.RequestException:
        return False
    if reply.status_code not in (201, 502, 503):
        raise RuntimeError(f"POST /task answered {reply.status_code}: {reply.text[:500]}")
    return reply.status_code == 201


def commands(pg: str, cluster: LocalRedisCluster) -> list[dict[str, Any]]:
    """`POST /task` requests/s through HAProxy: two replicas of each beside one of each."""
    rates: dict[str, list[float]] = {"pairs": [], "one": []}
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp, \
            balanced_replicas(pg, cluster, Path(tmp)) as (pairs, one):
        # HAProxy takes a replica in once its health checks pass: until then it answers 503.
        headers = cast(dict[str, str], wait_for(partial(_logged_in, pairs), timeout=120,
                                                interval=0.5, what="a login through HAProxy"))
        entries = {"pairs": pairs, "one": one}
        for entry in entries.values():  # both paths work before anything is timed
            wait_for(partial(_created, entry, headers), timeout=120, interval=0.5,
                     what=f"POST /task through {entry.base_url}")
        for round_ in range(ROUNDS):
            order = ("pairs", "one") if round_ % 2 == 0 else ("one", "pairs")
            for side in order:
                rates[side].append(requests_per_second(
                    f"{entries[side].base_url}/task", headers, SECONDS, CONNECTIONS,
                    TASK_BODY))
    client = "wrk -t2" if tool_name() == "wrk" else "Python thread pool (wrk not installed)"
    spread = "; ".join(f"{side} {min(found):.0f}-{max(found):.0f}"
                       for side, found in rates.items())
    notes = (f"{client}, {CONNECTIONS} connections, best of {ROUNDS} interleaved {SECONDS} s "
             f"rounds (all rounds: {spread} requests/s); HAProxy round robin (make "
             "test-cluster's configuration) in front of gunicorn replicas of 1 gthread worker "
             "each, one auth replica, Redis Cluster, one PostgreSQL; relay and projector not "
             "running")
    best = {side: max(found) for side, found in rates.items()}
    return [
        result("POST /task through HAProxy, 2 gateways + 2 task services", best["pairs"],
               "requests/s", COMMAND, notes),
        result("POST /task through HAProxy, 1 gateway + 1 task service", best["one"],
               "requests/s", COMMAND, notes),
        result("POST /task 2+2 replicas / 1+1 ratio", best["pairs"] / best["one"], "x",
               COMMAND, "same HAProxy, same run; 2 cores shared by every process"),
    ]


def run() -> list[dict[str, Any]]:
    """The cluster benchmarks `BENCH_CLUSTER_PARTS` names (`events`, `partitions`,
    `commands`; all by default) in one run; nothing when a needed program is missing."""
    parts = {"events": lambda pg, single, cluster: event_results(
                 *event_path(pg, single, cluster.url)),
             "partitions": lambda pg, single, cluster: partitions.run(pg, single, cluster.url),
             "commands": lambda pg, _single, cluster: commands(pg, cluster)}
    wanted = [n.strip() for n in os.environ.get("BENCH_CLUSTER_PARTS", "").split(",")
              if n.strip()] or list(parts)
    if unknown := set(wanted) - set(parts):
        sys.exit(f"unknown BENCH_CLUSTER_PARTS: {', '.join(sorted(unknown))}; "
                 f"have {list(parts)}")
    missing = missing_tools(haproxy="commands" in wanted)
    if missing:
        print(f"BENCH=cluster skipped: it needs {', '.join(missing)} (Debian: {INSTALL})",
              file=sys.stderr)
        return []
    found: list[dict[str, Any]] = []
    with postgres_server() as pg, redis_cluster() as cluster, single_redis() as single:
        for name in wanted:
            found += parts[name](pg, single, cluster)
    return found


if __name__ == "__main__":
    for row in run():
        print(f"{row['figure']}: {row['value']} {row['unit']}  ({row['notes']})")
