"""A stack that faults can be injected into: its own PostgreSQL and Redis, relay and projector
run as processes of their own (outside honcho) so they can be killed and restarted.

Everything here acts only on servers and processes this harness started itself: FLUSHALL and
a PostgreSQL restart are never aimed at a shared server.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from services.embedded import EmbeddedPostgres, EmbeddedRedis, free_port, wait_for_redis
from shared.config import service_database_url
from testbed.polling import wait_for
from testbed.stack import ROOT, TASKSTREAM, Stack, running_stack

# The stream processes the harness manages itself (name: `taskstream` arguments); honcho runs
# the rest of the Procfile.
MANAGED: dict[str, tuple[str, ...]] = {"relay": ("relay",), "projector": ("projector",)}

# Small batches and quick takeovers, so that kills land inside batches and recovery is fast.
CHAOS_ENV = {
    "RELAY_BATCH_SIZE": "50",
    "RELAY_POLL_SECONDS": "0.5",
    "PROJECTOR_BATCH_SIZE": "100",
    "PROJECTOR_BLOCK_MS": "200",
    "PROJECTOR_CLAIM_IDLE_MS": "2000",
    "PROJECTOR_CLAIM_INTERVAL_SECONDS": "1",
    "PROJECTOR_LOCK_POLL_SECONDS": "0.2",
    "PROJECTOR_RETRY_DELAY_SECONDS": "0.2",
    "DB_CONNECT_ATTEMPTS": "30",
    "DB_CONNECT_BACKOFF": "0.2",
    "RELAY_METRICS_PORT": "0",
    "PROJECTOR_METRICS_PORT": "0",
}


def procfile_without(names: tuple[str, ...], target: Path) -> Path:
    """Write a copy of the Procfile without the processes `names`; return its path."""
    kept = [line for line in (ROOT / "Procfile").read_text().splitlines()
            if line.strip() and line.split(":", 1)[0].strip() not in names]
    target.write_text("\n".join(kept) + "\n")
    return target


@dataclass
class ManagedProcess:
    """One `taskstream <command>` process that can be started, killed and stopped again."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_dir: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def log_path(self) -> Path:
        """Where every incarnation of this process writes (appended)."""
        return self.log_dir / f"{self.name}.log"

    def start(self) -> subprocess.Popen[bytes]:
        """Start a new incarnation (in its own session, so a kill reaches only it)."""
        self.starts += 1
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        return self.process

    def alive(self) -> bool:
        """True while the current incarnation runs."""
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the current incarnation (an unclean stop) and reap it."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM the current incarnation and return its exit code (killed after timeout)."""
        assert self.process is not None, f"{self.name} was never started"
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.process.returncode)

    def logs(self) -> str:
        """Everything every incarnation wrote."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class ManagedDeployment:
    """What every chaos deployment offers over its `env`, `engines` and `processes`: its
    databases, the CLI, and starting and killing its processes."""

    engines: dict[str, Engine]
    processes: dict[str, ManagedProcess]

    if TYPE_CHECKING:
        @property
        def env(self) -> dict[str, str]:
            """The environment every process of the deployment runs with."""

    def engine(self, service: str) -> Engine:
        """An engine on one service's database (pre-pinged: it survives restarts)."""
        if service not in self.engines:
            url = service_database_url(self.env["DATABASE_URL"], service)
            self.engines[service] = create_engine(url, pool_pre_ping=True, pool_size=2)
        return self.engines[service]

    def scalar(self, service: str, sql: str) -> int:
        """One integer from one service's database."""
        with self.engine(service).connect() as connection:
            return int(connection.execute(text(sql)).scalar_one())

    def run_cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run `taskstream <args>` against this deployment."""
        return subprocess.run([str(TASKSTREAM), *args], cwd=ROOT, env=self.env, timeout=timeout,
                              capture_output=True, text=True, check=False)

    def ensure_running(self) -> None:
        """Start every managed process that is not running."""
        for process in self.processes.values():
            if not process.alive():
                process.start()

    def kill(self, name: str) -> None:
        """SIGKILL one managed process."""
        self.processes[name].kill()

    def start(self, name: str) -> None:
        """Start one managed process (again)."""
        self.processes[name].start()


@dataclass
class ChaosStack(ManagedDeployment):
    """A running system over private servers, plus handles to hurt it."""

    stack: Stack
    postgres: EmbeddedPostgres
    redis_server: EmbeddedRedis
    workdir: Path
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    engines: dict[str, Engine] = field(default_factory=dict)

    # -- where things are ---------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """The environment every process of the stack runs with."""
        return self.stack.env

    @property
    def namespace(self) -> str:
        """The Redis namespace of this stack."""
        return self.env["REDIS_NAMESPACE"]

    @property
    def stream_key(self) -> str:
        """The event stream."""
        return f"{self.namespace}:events"

    def redis(self) -> redis.Redis:
        """A new client of the stack's own Redis."""
        return redis.Redis.from_url(self.redis_server.url, socket_timeout=5,
                                    socket_connect_timeout=2)

    # -- the servers --------------------------------------------------------------------------

    def flush_redis(self) -> None:
        """FLUSHALL on this stack's own Redis: the stream, groups, caches, everything."""
        client = self.redis()
        try:
            client.flushall()
        finally:
            client.close()

    def stop_redis(self) -> None:
        """Stop this stack's Redis (it keeps nothing on disk: everything is lost)."""
        self.redis_server.stop()

    def start_redis(self) -> None:
        """Start this stack's Redis again on the same port."""
        self.redis_server.start()
        wait_for_redis(self.redis_server.url, timeout=15)

    def stop_postgres(self) -> None:
        """Stop this stack's PostgreSQL (fast shutdown: sessions are cut)."""
        self.postgres.stop()

    def start_postgres(self) -> None:
        """Start this stack's PostgreSQL again on the same socket."""
        import pgserver

        pgserver.get_server(self.postgres.data_dir, cleanup_mode=None).ensure_postgres_running()

    def close(self) -> None:
        """Stop the managed processes and dispose of the engines."""
        for process in self.processes.values():
            if process.alive():
                process.terminate(timeout=15)
        for engine in self.engines.values():
            engine.dispose()
        self.engines.clear()


def copy_logs(logs: list[Path], target: Path) -> None:
    """Copy log files to `target`."""
    target.mkdir(parents=True, exist_ok=True)
    for log in logs:
        if log.exists():
            shutil.copy(log, target / log.name)


def managed_processes(env: dict[str, str], log_dir: Path,
                      managed: Mapping[str, tuple[str, ...]] = MANAGED
                      ) -> dict[str, ManagedProcess]:
    """`taskstream relay`, `taskstream projector` (or those `managed` names), not started."""
    return {name: ManagedProcess(name, [str(TASKSTREAM), *args], env, log_dir)
            for name, args in managed.items()}


@contextmanager
def chaos_stack(extra_env: dict[str, str] | None = None, timeout: float = 120.0,
                keep_logs: Path | None = None,
                managed: Mapping[str, tuple[str, ...]] = MANAGED) -> Iterator[ChaosStack]:
    """Start private PostgreSQL and Redis, the stack without relay/projector, then those two.

    With `keep_logs`, every process's log is copied there when the stack stops.
    """
    with tempfile.TemporaryDirectory(prefix="ts-chaos-") as tmp, ExitStack() as stack_of_things:
        workdir = Path(tmp)
        postgres = EmbeddedPostgres(workdir / "pg")
        pg_url = postgres.start()
        stack_of_things.callback(postgres.stop)
        redis_server = EmbeddedRedis(workdir / "redis", port=free_port())
        redis_url = redis_server.start()
        stack_of_things.callback(redis_server.stop)
        procfile = procfile_without(tuple(managed), workdir / "Procfile.chaos")
        env = dict(CHAOS_ENV, **(extra_env or {}))
        stack = stack_of_things.enter_context(
            running_stack(pg_url, redis_url, timeout=timeout, extra_env=env, procfile=procfile))
        chaos = ChaosStack(stack, postgres, redis_server, workdir)
        if keep_logs is not None:
            stack_of_things.callback(
                lambda: copy_logs([stack.log_path, *workdir.glob("*.log")], keep_logs))
        chaos.processes = managed_processes(stack.env, workdir, managed)
        stack_of_things.callback(chaos.close)
        chaos.ensure_running()
        wait_for(lambda: chaos.run_cli("projections", "status", "--json").returncode == 0,
                   60, interval=0.5, what="the logger database to answer")
        yield chaos
