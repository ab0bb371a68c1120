"""The whole system as subprocesses (`taskstream run`) on free ports, for e2e and bench."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests
from sqlalchemy.engine import make_url

from services.embedded import free_port
from services.registry import DATABASE_SERVICES
from shared.config import service_database_url
from shared.db import drop_database
from testbed.polling import wait_for

ROOT = Path(__file__).resolve().parent.parent
TASKSTREAM = Path(sys.executable).with_name("taskstream")
ADMIN_PASSWORD = "e2e-" + uuid.uuid4().hex
# What must never reach the terminal of `make run`: tracebacks, gunicorn masters fighting over
# one control socket, Celery's superuser warning, the embedded servers' command lines.
NOISE = ("Traceback", "Control server error", "Control socket", "SecurityWarning",
         "superuser privileges", "Running commandline", "RuntimeDirWarning", "pg_ctl")


@dataclass
class Stack:
    """A running system: where to reach it and how to read its logs."""

    base_url: str
    ports: dict[str, int]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes]
    marker: str
    session: requests.Session = field(default_factory=requests.Session)

    def url(self, service: str) -> str:
        """Base URL of one HTTP service."""
        return f"http://127.0.0.1:{self.ports[service]}"

    def logs(self) -> str:
        """Everything the processes printed so far."""
        return self.log_path.read_text(errors="replace")

    def noisy_lines(self) -> list[str]:
        """The lines of the log that a quiet `make run` would not show (see NOISE)."""
        return [line for line in self.logs().splitlines() if any(n in line for n in NOISE)]

    def operator_command(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `taskstream <args>` beside the stack with its environment, as an operator
        would in the same folder (whatever the stack found for itself, it must find too)."""
        return subprocess.run([str(TASKSTREAM), *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=60, check=False)

    def login(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> dict[str, str]:
        """Log in through the gateway and return the Authorization header."""
        response = self.session.post(f"{self.base_url}/auth/login",
                                     json={"username": username, "password": password})
        response.raise_for_status()
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def processes(self) -> list[psutil.Process]:
        """Every process on this machine that belongs to this stack."""
        return stack_processes(self.marker, self.env["DATA_DIR"])


def stack_processes(marker: str, data_dir: str) -> list[psutil.Process]:
    """Every process of a stack: those that inherited `TASKSTREAM_STACK_MARKER=<marker>`,
    the embedded servers (by pid file: redis-server rewrites its environment and command
    line for its title), and all their children."""
    roots = [proc for proc in psutil.process_iter() if _has_marker(proc.pid, marker)]
    for pid_file in (Path(data_dir) / "redis" / "redis.pid", Path(data_dir) / "pg" /
                     "postmaster.pid"):
        try:
            roots.append(psutil.Process(int(pid_file.read_text().split()[0])))
        except (OSError, ValueError, IndexError, psutil.NoSuchProcess):
            continue
    found: dict[int, psutil.Process] = {}
    for proc in roots:
        try:
            for member in [proc, *proc.children(recursive=True)]:
                found.setdefault(member.pid, member)
        except psutil.NoSuchProcess:
            continue
    found.pop(os.getpid(), None)
    return list(found.values())


def _has_marker(pid: int, marker: str) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"TASKSTREAM_STACK_MARKER={marker}".encode() in environ


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def stack_env(database_url: str | None, redis_url: str | None, data_dir: Path,
              extra: dict[str, str] | None = None) -> tuple[dict[str, str], dict[str, int], str]:
    """Environment for a stack on free ports with a private namespace and data folder."""
    marker = uuid.uuid4().hex
    ports = {name: free_port() for name in ("gateway", "auth", "tasks", "logger", "webhooks")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "PYTEST"))}
    env.update({
        "TASKSTREAM_ENV": "test", "TASKSTREAM_STACK_MARKER": marker, "DATA_DIR": str(data_dir),
        "REDIS_NAMESPACE": f"ts-e2e-{marker[:12]}", "ADMIN_USERNAME": "admin",
        "ADMIN_PASSWORD": ADMIN_PASSWORD, "WEB_CONCURRENCY": "1", "LOG_FORMAT": "json",
        "GATEWAY_PORT": str(ports["gateway"]), "AUTH_PORT": str(ports["auth"]),
        "TASKS_PORT": str(ports["tasks"]), "LOGGER_PORT": str(ports["logger"]),
        "WEBHOOKS_PORT": str(ports["webhooks"]), "WEBHOOKS_METRICS_PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1", "RATE_LIMIT_DEFAULT": "100000/minute",
        "RELAY_METRICS_PORT": str(free_port()), "PROJECTOR_METRICS_PORT": str(free_port()),
    })
    for key in ("DATABASE_URL", "REDIS_URL"):
        env.pop(key, None)
    if database_url:
        env["DATABASE_URL"] = database_url
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra or {})
    return env, ports, marker


@contextmanager
def running_stack(pg_url: str | None, redis_url: str | None, *, timeout: float = 90.0,
                  extra_env: dict[str, str] | None = None,
                  procfile: str | Path = "Procfile") -> Iterator[Stack]:
    """Start `taskstream run` (every process of `procfile`), yield once the gateway is ready."""
    base = None
    if pg_url:
        # As users paste it: `postgresql://`, no driver (every process must cope).
        base = make_url(pg_url).set(drivername="postgresql",
                                    database=f"ts_e2e_{uuid.uuid4().hex[:10]}")
    with tempfile.TemporaryDirectory(prefix="ts-stack-") as tmp:
        data_dir = Path(tmp) / "data"
        db_url = base.render_as_string(hide_password=False) if base else None
        env, ports, marker = stack_env(db_url, redis_url, data_dir, extra_env)
        log_path = Path(tmp) / "stack.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen([str(TASKSTREAM), "run", "--procfile", str(procfile)],
                                       cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        stack = Stack(f"http://127.0.0.1:{ports['gateway']}", ports, env, log_path, process,
                      marker)
        try:
            wait_for(lambda: process.poll() is not None or _ready(stack.base_url), timeout,
                       interval=0.25, what="the gateway to be ready")
            if process.poll() is not None:
                raise RuntimeError(f"taskstream run exited early:\n{stack.logs()[-5000:]}")
            yield stack
        except BaseException:
            sys.stderr.write(f"--- stack log (tail) ---\n{stack.logs()[-8000:]}\n")
            raise
        finally:
            stop_stack(stack)
            if db_url:
                for service in DATABASE_SERVICES:
                    drop_database(service_database_url(db_url, service))


def stop_stack(stack: Stack, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
    """Signal the runner and wait for it; kill anything left so tests never leak processes."""
    if stack.process.poll() is None:
        stack.process.send_signal(sig)
        try:
            stack.process.wait(timeout)
        except subprocess.TimeoutExpired:
            stack.process.kill()
            stack.process.wait()
    return stack.process.returncode
