"""`make run`: start embedded servers if needed, migrate, create the admin, run the Procfile.

Every child runs in its own session so that a Ctrl-C in the terminal reaches only this
process, which then stops honcho (and with it every service) and last the embedded servers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

from services.embedded import EmbeddedPostgres, EmbeddedRedis
from services.registry import migrate_all
from shared.config import Env

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def data_dir(env: Env) -> Path:
    """The folder for embedded servers, keys and schedules (`DATA_DIR`, default `.data`)."""
    path = Path(env.str("DATA_DIR", ".data")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def start_servers(env: Env, root: Path) -> list[EmbeddedPostgres | EmbeddedRedis]:
    """Start the embedded servers that the environment does not name, exporting their URLs."""
    started: list[EmbeddedPostgres | EmbeddedRedis] = []
    if not env.str("DATABASE_URL"):
        postgres = EmbeddedPostgres(root / "pg")
        os.environ["DATABASE_URL"] = postgres.start()
        started.append(postgres)
        print(f"Embedded PostgreSQL: {os.environ['DATABASE_URL']}", flush=True)
    if not env.str("REDIS_URL"):
        redis_server = EmbeddedRedis(root / "redis", port=env.int("EMBEDDED_REDIS_PORT", 0))
        os.environ["REDIS_URL"] = redis_server.start()
        started.append(redis_server)
        print(f"Embedded Redis: {os.environ['REDIS_URL']}", flush=True)
    return started


def prepare(env: Env) -> str:
    """Migrate every database and make sure an admin exists; return how it was made."""
    for line in migrate_all(env):
        print(f"Database {line}", flush=True)
    from services.auth_service.bootstrap import ensure_admin

    return ensure_admin(env)


def banner(env: Env, admin_note: str) -> str:
    """What a developer needs to know once everything is starting."""
    gateway = f"http://localhost:{env.int('GATEWAY_PORT', 5000)}"
    return (
        f"\nTaskstream is starting.\n  API:  {gateway}\n  Docs: {gateway}/docs "
        f"(OpenAPI: {gateway}/openapi.json)\n  Admin: {admin_note}\n"
        "Press Ctrl-C to stop everything.\n"
    )


def run_processes(procfile: str) -> int:
    """Run honcho on the Procfile until it exits or we are told to stop."""
    bin_dir = Path(sys.executable).parent
    honcho = bin_dir / "honcho"
    # The Procfile names gunicorn, celery and taskstream: they live beside this interpreter.
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    child = subprocess.Popen(
        [str(honcho), "start", "-f", procfile],
        start_new_session=True,
    )

    stopping = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)

    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)
    code = child.wait()
    return 0 if stopping else code  # a requested stop is a clean exit


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run_system(procfile: str = "Procfile") -> int:
    """The whole `make run`; returns the exit code of the process group."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _exit_on_signal)
    env = Env.load()
    root = data_dir(env)
    os.environ.setdefault("DATA_DIR", str(root))
    servers: list[EmbeddedPostgres | EmbeddedRedis] = []
    try:
        servers = start_servers(env, root)
        admin_note = prepare(env)
        print(banner(env, admin_note), flush=True)
        return run_processes(procfile)
    finally:
        for server in reversed(servers):
            server.stop()
        print("Taskstream stopped.", flush=True)
