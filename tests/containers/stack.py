"""docker-compose.yml run as staging and production run it: the committed production env file,
secrets from files, the gateway alone published on 127.0.0.1, a project of its own."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.polling import wait_for
from tests.containers.docker import run, say

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ("gateway", "auth", "tasks", "relay", "logger", "projector", "worker", "beat")
SERVERS = ("postgres", "redis")
UNCHECKED = {"worker", "beat"}  # no healthcheck: running is all compose can tell
TAG = "dev"


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def write_secrets(folder: Path) -> str:
    """Fresh random secrets, as an operator keeps them; return the admin's password."""
    database, redis, admin = (secrets.token_urlsafe(18) for _ in range(3))
    values = {
        "postgres_password": database,
        "redis_password": redis,
        "database_url": f"postgresql://taskstream:{database}@postgres:5432/taskstream",
        "redis_url": f"redis://:{redis}@redis:6379/0",
        "admin_password": admin,
    }
    for name, value in values.items():
        path = folder / name
        path.write_text(value + "\n")
        path.chmod(0o444)  # read by the services' users in the containers
    return admin


@dataclass
class ComposeStack:
    """One compose project of docker-compose.yml and the way to talk to it."""

    compose: list[str]
    project: str
    variables: dict[str, str]
    admin_password: str
    gateway_url: str

    @classmethod
    def production(cls, compose: list[str], folder: Path, servers: dict[str, str]) -> ComposeStack:
        """A production deployment: `.env.production.example` as it is, secrets in `folder`."""
        env_file = folder / "production.env"
        shutil.copy(ROOT / ".env.production.example", env_file)
        secret_folder = folder / "secrets"
        secret_folder.mkdir()
        admin = write_secrets(secret_folder)
        port = free_port()
        variables = {"TASKSTREAM_ENV_FILE": str(env_file), "TASKSTREAM_SECRETS": str(secret_folder),
                     "GATEWAY_PUBLISH": f"127.0.0.1:{port}", "TASKSTREAM_TAG": TAG, **servers}
        return cls(compose, f"tscheck{os.getpid()}", variables, admin, f"http://127.0.0.1:{port}")

    @property
    def environment(self) -> dict[str, str]:
        """The environment compose runs in."""
        return {**os.environ, **self.variables}

    def __call__(self, *args: str, check: bool = True,
                 timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run a compose command on this project."""
        return run(*self.compose, "-p", self.project, "-f", str(ROOT / "docker-compose.yml"),
                   *args, env=self.environment, check=check, timeout=timeout)

    def container(self, service: str) -> str:
        """The id of the service's (one) container."""
        ids = self("ps", "-q", service).stdout.split()
        if len(ids) != 1:
            raise RuntimeError(f"{service} has {len(ids)} containers")
        return ids[0]

    def state(self, service: str) -> dict[str, Any]:
        """`docker inspect`'s State of the service's container."""
        state: dict[str, Any] = json.loads(
            run("docker", "inspect", "-f", "{{json .State}}", self.container(service)).stdout)
        return state

    def logs(self, service: str) -> str:
        """Everything the service's container wrote (stdout and stderr)."""
        result = run("docker", "logs", self.container(service))
        return result.stdout + result.stderr

    def healthy(self) -> bool:
        """Every process and server healthy (or, without a healthcheck, running)."""
        for service in (*SERVERS, *PROCESSES):
            state = self.state(service)
            if not state["Running"]:
                raise RuntimeError(f"{service} is not running (exit {state['ExitCode']})")
            if service not in UNCHECKED and state["Health"]["Status"] != "healthy":
                return False
        return True

    def start(self, timeout: float = 240) -> float:
        """`up -d`, then wait until every process is healthy; return how long it took."""
        started = time.monotonic()
        self("up", "-d", "--no-build", timeout=timeout)
        if self.state("migrate")["ExitCode"] != 0:
            raise RuntimeError(f"the migrations failed:\n{self.logs('migrate')[-2000:]}")
        wait_for(self.healthy, timeout=timeout, interval=1, what="every container healthy")
        return time.monotonic() - started

    def tails(self, lines: int = 30) -> str:
        """The end of every container's log, to show what went wrong."""
        result = self("logs", "--no-color", "--tail", str(lines), check=False)
        return result.stdout + result.stderr

    def remove(self) -> None:
        """`down -v`: containers, network and volumes."""
        say(f"down -v ({self.project})")
        self("down", "-v", "--remove-orphans", check=False, timeout=180)


def make_first_key(stack: ComposeStack) -> str:
    """Production makes no signing key by itself: the documented first step makes one."""
    result = stack("run", "--rm", "-T", "--no-deps", "migrate", "taskstream", "keys", "rotate")
    return result.stdout.strip().splitlines()[-1]
