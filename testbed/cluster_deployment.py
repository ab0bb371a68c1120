"""The clustered deployment on one machine, as `make test-cluster` runs it.

PostgreSQL (TEST_DATABASE_URL's server, else an embedded one), a Redis Cluster of 3 masters
and 3 replicas, RabbitMQ (a private virtual host when `rabbitmqctl` can make one), two
replicas each of the gateway, auth, task and logger services and one of the webhooks API
behind HAProxy, two relays, three projector members, the webhooks process, a Celery worker
and beat. Every process is a `ManagedProcess` of the chaos harness, so the faults can kill
and restart any of them; `ClusterChaosStack` offers what the chaos checks and drivers use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis
import requests
from sqlalchemy.engine import Engine, make_url

from services.embedded import free_port
from services.registry import DATABASE_SERVICES
from shared.config import service_database_url
from shared.db import drop_database
from shared.redis_client import hash_tagged, redis_client
from testbed.polling import wait_for
from testbed.processes import CHAOS_ENV, ManagedDeployment, ManagedProcess, copy_logs
from testbed.redis_cluster import LocalRedisCluster, redis_cluster
from testbed.servers import postgres_server
from testbed.stack import ADMIN_PASSWORD, ROOT, TASKSTREAM

BIN = Path(sys.executable).parent
HTTP_SERVICES = {"gateway": "api_gateway", "auth": "auth_service", "tasks": "task_service",
                 "logger": "logger_service", "webhooks": "webhooks_service"}
REPLICAS = {"gateway": 2, "auth": 2, "tasks": 2, "logger": 2, "webhooks": 1}
RELAYS, PROJECTORS = 2, 3
LOGIN_LIMIT = 20  # logins per minute and client address, checked exact across the gateways
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672"


@dataclass
class LoadBalancer:
    """HAProxy in front of the HTTP replicas: one frontend port per service."""

    ports: dict[str, int]
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def base_url(self) -> str:
        """The public entry: the gateways' frontend."""
        return self.url("gateway")

    def url(self, service: str) -> str:
        """The frontend of one service."""
        return f"http://127.0.0.1:{self.ports[service]}"

    def login(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> dict[str, str]:
        """Log in through the load balancer and return the Authorization header.

        Each login comes from a client address of its own (see TRUSTED_PROXIES), so that the
        logins of the traffic never use up the login limit the probes measure.
        """
        response = self.session.post(f"{self.base_url}/auth/login",
                                     json={"username": username, "password": password},
                                     headers={"X-Forwarded-For": client_address()}, timeout=20)
        response.raise_for_status()
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


@dataclass
class ClusterChaosStack(ManagedDeployment):
    """The running deployment, with what the chaos drivers, faults and checks need."""

    stack: LoadBalancer
    cluster: LocalRedisCluster
    env: dict[str, str]
    workdir: Path
    replica_ports: dict[str, int]  # by process name (`gateway-1`, ...)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    engines: dict[str, Engine] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        """The Redis namespace of this deployment."""
        return self.env["REDIS_NAMESPACE"]

    @property
    def stream_key(self) -> str:
        """The event stream (hash-tagged on the cluster)."""
        return hash_tagged(f"{self.namespace}:events")

    def redis(self) -> redis.Redis:
        """A new client of the cluster."""
        return redis_client(self.cluster.url, socket_timeout=5, socket_connect_timeout=2)

    def wait_healthy(self, name: str, timeout: float = 60.0) -> None:
        """Wait until an HTTP replica answers `/readyz` with 200."""
        url = f"http://127.0.0.1:{self.replica_ports[name]}/readyz"
        wait_for(lambda: _answers(url), timeout=timeout, interval=0.2, what=f"{name} ready")

    def close(self) -> None:
        """Stop every process and dispose of the engines."""
        for process in reversed(self.processes.values()):
            if process.alive():
                process.terminate(timeout=15)
        for engine in self.engines.values():
            engine.dispose()


def client_address() -> str:
    """A client address no one else uses (in 10.0.0.0/8)."""
    number = uuid.uuid4().int
    return f"10.{number % 250}.{(number >> 8) % 250}.{(number >> 16) % 250 + 1}"


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def haproxy_config(frontends: dict[str, int], backends: dict[str, list[int]]) -> str:
    """HAProxy: round robin over each service's replicas, health-checked every second.

    A request is retried on another replica only when it could not be sent (HAProxy's
    default `retry-on conn-failure`), so a command is never sent twice by the balancer.
    """
    lines = ["global", "  maxconn 2000", "defaults", "  mode http", "  timeout connect 2s",
             "  timeout client 120s", "  timeout server 120s", "  retries 3",
             "  option redispatch", "  option httpchk GET /healthz",
             # A dead replica refuses the check's connection at once (out in 3 s); a replica
             # busy hashing passwords on a loaded machine may take long to answer it.
             "  timeout check 10s", "  default-server inter 1s fall 3 rise 2"]
    for service, port in frontends.items():
        lines += [f"frontend {service}_in", f"  bind 127.0.0.1:{port}",
                  f"  default_backend {service}"]
        if service == "gateway":  # the public edge: tell the gateways who the client is
            lines.append("  option forwardfor")
        lines += [f"backend {service}", "  balance roundrobin"]
        lines += [f"  server {service}{n} 127.0.0.1:{replica} check"
                  for n, replica in enumerate(backends[service], 1)]
    return "\n".join(lines) + "\n"


def haproxy_binary() -> str:
    """The haproxy binary, or a clear error saying how to get it."""
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    if not found:
        raise RuntimeError("make test-cluster needs HAProxy: apt-get install haproxy")
    return found


@contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """A broker URL: a fresh virtual host on the local RabbitMQ when `rabbitmqctl` can make
    one (removed afterwards), else RABBITMQ_URL's default one."""
    base = os.environ.get("TEST_RABBITMQ_URL", RABBITMQ_URL).rstrip("/")
    ctl = shutil.which("rabbitmqctl") or shutil.which("rabbitmqctl", path="/usr/sbin")
    vhost = f"ts-cluster-{uuid.uuid4().hex[:8]}"
    if ctl is None or "TEST_RABBITMQ_URL" in os.environ:
        yield base + "//"
        return
    made = subprocess.run([ctl, "add_vhost", vhost], capture_output=True, text=True, timeout=60)
    if made.returncode != 0:
        raise RuntimeError("make test-cluster needs RabbitMQ on 127.0.0.1:5672 (guest/guest): "
                           "apt-get install rabbitmq-server && service rabbitmq-server start, "
                           f"or set TEST_RABBITMQ_URL. rabbitmqctl said: {made.stderr[-300:]}")
    try:
        subprocess.run([ctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
                       check=True, capture_output=True, timeout=60)
        yield f"{base}/{vhost}"
    finally:
        subprocess.run([ctl, "delete_vhost", vhost], capture_output=True, timeout=60,
                       check=False)


def deployment_env(database_url: str, redis_url: str, broker_url: str, data_dir: Path,
                   frontends: dict[str, int]) -> dict[str, str]:
    """The environment every process of the deployment shares."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "PYTEST"))}
    for key in ("REDIS_URL", "REDIS_CLUSTER_URL", "DATABASE_URL", "CELERY_BROKER_URL"):
        env.pop(key, None)
    env.update(CHAOS_ENV)
    env.update({
        "TASKSTREAM_ENV": "test", "DATA_DIR": str(data_dir), "DATABASE_URL": database_url,
        "REDIS_CLUSTER_URL": redis_url, "CELERY_BROKER_URL": broker_url,
        "REDIS_NAMESPACE": f"ts-cluster-{uuid.uuid4().hex[:8]}", "ADMIN_USERNAME": "admin",
        "ADMIN_PASSWORD": ADMIN_PASSWORD, "WEB_CONCURRENCY": "1", "LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AUTH_SERVICE_URL": f"http://127.0.0.1:{frontends['auth']}",
        "TASK_SERVICE_URL": f"http://127.0.0.1:{frontends['tasks']}",
        "LOGGER_SERVICE_URL": f"http://127.0.0.1:{frontends['logger']}",
        "WEBHOOKS_SERVICE_URL": f"http://127.0.0.1:{frontends['webhooks']}",
        # HAProxy appends the client it saw; a client's own entry before it is believed too,
        # so the rate-limit probe can be a client address of its own.
        "TRUSTED_PROXIES": "2",
        "RATE_LIMIT_DEFAULT": "100000/minute", "RATE_LIMIT_LOGIN": f"{LOGIN_LIMIT}/minute",
        "RATE_LIMIT_LOGIN_USERNAME": "100000/minute",
        "WEBHOOKS_METRICS_PORT": "0", "CELERY_QUIET": "1",
        # Beat asks every 2 s, so the scheduled transfer goes beat -> RabbitMQ -> worker soon.
        "TRANSFER_CHECK_SECONDS": "2",
    })
    return env


def http_replicas(env: dict[str, str], log_dir: Path) -> tuple[dict[str, ManagedProcess],
                                                                dict[str, int]]:
    """Every gunicorn replica, by name, and the port each listens on."""
    processes, ports = {}, {}
    for service, package in HTTP_SERVICES.items():
        for n in range(1, REPLICAS[service] + 1):
            name, port = f"{service}-{n}", free_port()
            processes[name] = ManagedProcess(name, [
                str(BIN / "gunicorn"), "--config", "deploy/gunicorn.conf.py", "--bind",
                f"127.0.0.1:{port}", f"services.{package}.entrypoints.app:create_app()"],
                env, log_dir)
            ports[name] = port
    return processes, ports


def stream_processes(env: dict[str, str], log_dir: Path) -> dict[str, ManagedProcess]:
    """Relays, projector members, the webhooks process, Celery worker and beat."""
    processes = {f"relay-{n}": ManagedProcess(f"relay-{n}", [str(TASKSTREAM), "relay"], env,
                                              log_dir) for n in range(1, RELAYS + 1)}
    processes |= {f"projector-{n}": ManagedProcess(f"projector-{n}",
                                                   [str(TASKSTREAM), "projector"], env, log_dir)
                  for n in range(1, PROJECTORS + 1)}
    celery = [str(BIN / "celery"), "--app", "services.task_service.entrypoints.celery_app"]
    processes["webhooks"] = ManagedProcess("webhooks", [str(TASKSTREAM), "webhooks", "run"],
                                           env, log_dir)
    processes["worker"] = ManagedProcess("worker", [*celery, "worker", "--concurrency", "1",
                                                    "--hostname", f"worker-{uuid.uuid4().hex[:6]}"
                                                    "@%h"], env, log_dir)
    processes["beat"] = ManagedProcess("beat", [*celery, "beat", "--schedule",
                                                str(log_dir / "celerybeat-schedule")], env,
                                       log_dir)
    return processes


PREPARE = ("from services.entrypoints.runner import prepare; from shared.config import Env; "
           "prepare(Env.load())")


def prepare(env: dict[str, str]) -> None:
    """Migrate every database and create the admin, as `taskstream run` does first."""
    done = subprocess.run([sys.executable, "-c", PREPARE], cwd=ROOT, env=env, timeout=300,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"migrating and creating the admin failed:\n{done.stderr[-3000:]}")


@contextmanager
def cluster_deployment(keep_logs: Path | None = None, extra_env: Mapping[str, str] | None = None
                       ) -> Iterator[ClusterChaosStack]:
    """Start everything (`extra_env` added to every process's environment); yield once the
    gateways answer through the load balancer."""
    with tempfile.TemporaryDirectory(prefix="ts-cluster-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        pg_url = stack.enter_context(postgres_server())
        database = make_url(pg_url).set(drivername="postgresql",
                                        database=f"ts_cluster_{uuid.uuid4().hex[:10]}")
        database_url = database.render_as_string(hide_password=False)
        stack.callback(drop_service_databases, database_url)
        cluster = stack.enter_context(redis_cluster())
        broker = stack.enter_context(rabbitmq_vhost())
        frontends = {service: free_port() for service in HTTP_SERVICES}
        env = deployment_env(database_url, cluster.url, broker, workdir / "data", frontends)
        env.update(extra_env or {})
        prepare(env)
        http, replica_ports = http_replicas(env, workdir)
        backends = {service: [port for name, port in replica_ports.items()
                              if name.rsplit("-", 1)[0] == service] for service in HTTP_SERVICES}
        config = workdir / "haproxy.cfg"
        config.write_text(haproxy_config(frontends, backends))
        balancer = {"haproxy": ManagedProcess("haproxy", [haproxy_binary(), "-db", "-f",
                                                          str(config)], env, workdir)}
        chaos = ClusterChaosStack(LoadBalancer(frontends), cluster, env, workdir, replica_ports,
                                  {**balancer, **http, **stream_processes(env, workdir)})
        if keep_logs is not None:
            stack.callback(lambda: copy_logs(list(workdir.glob("*.log")), keep_logs))
        stack.callback(chaos.close)
        chaos.start("auth-1")  # the first auth replica makes the development signing keys
        chaos.wait_healthy("auth-1", timeout=120)
        chaos.ensure_running()
        for name in replica_ports:
            chaos.wait_healthy(name, timeout=120)
        wait_for(lambda: _answers(f"{chaos.stack.base_url}/readyz"), timeout=60,
                 what="the gateways through HAProxy")
        yield chaos


def drop_service_databases(database_url: str) -> None:
    """Drop every service's database under `database_url`."""
    for service in DATABASE_SERVICES:
        drop_database(service_database_url(database_url, service))
