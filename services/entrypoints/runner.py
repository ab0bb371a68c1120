"""`make run`: start embedded servers if needed, migrate, create the admin, run the Procfile.

Every child runs in its own session so that a Ctrl-C in the terminal reaches only this
process, which then stops honcho (and with it every service) and last the embedded servers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import requests

from services.embedded import CHATTER_LOG, EmbeddedPostgres, EmbeddedRedis
from services.registry import migrate_all
from shared.config import ConfigError, Env, data_dir_path
from shared.run_state import live_runner, remove_run_state, write_run_state
from shared.settings import Ports, read_settings

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
READY_TIMEOUT_SECONDS = 120.0


def data_dir(env: Env) -> Path:
    """The folder for embedded servers, keys and schedules (`DATA_DIR`, default `.data`)."""
    path = data_dir_path().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


Servers = dict[str, EmbeddedPostgres | EmbeddedRedis]  # by the variable naming each one


def start_servers(env: Env, root: Path, started: Servers) -> None:
    """Start the embedded servers the environment does not name, export their URLs and
    add them to `started` (as each one starts, so a failure still stops the first)."""
    if not env.str("DATABASE_URL"):
        postgres = EmbeddedPostgres(root / "pg")
        os.environ["DATABASE_URL"] = postgres.start()
        started["DATABASE_URL"] = postgres
    if not env.str("REDIS_URL"):
        redis_server = EmbeddedRedis(root / "redis", port=env.int("EMBEDDED_REDIS_PORT", 0))
        os.environ["REDIS_URL"] = redis_server.start()
        started["REDIS_URL"] = redis_server
    if started:
        names = {"DATABASE_URL": "PostgreSQL", "REDIS_URL": "Redis"}
        print(f"Started embedded {' and '.join(names[key] for key in started)} under {root} "
              f"(their output: {root / CHATTER_LOG})", flush=True)


def prepare(env: Env) -> str:
    """Migrate every database and make sure an admin exists; return how it was made."""
    from services.auth_service.entrypoints.first_admin import admin_credentials, ensure_admin

    admin_credentials(env)  # refuse a weak ADMIN_PASSWORD before creating anything
    print(f"Databases: {', '.join(migrate_all(env))}", flush=True)
    return ensure_admin(env)


def banner(env: Env, admin_note: str, ready: bool) -> str:
    """What a developer needs to know: where the API is and how to log in."""
    from services.auth_service.entrypoints.first_admin import admin_username

    gateway = f"http://localhost:{read_settings(Ports, env).gateway}"
    username = admin_username(env)
    state = "is ready" if ready else "is starting (not ready yet: see the lines above)"
    return (
        f"\nTaskstream {state}.\n"
        f"  API:    {gateway}\n"
        f"  Docs:   {gateway}/docs (OpenAPI: {gateway}/openapi.json)\n"
        f"  Admin:  {admin_note}\n"
        f"  Log in: curl -s {gateway}/auth/login -H 'Content-Type: application/json' \\\n"
        f"            -d '{{\"username\": \"{username}\", \"password\": "
        f"\"{password_hint(env)}\"}}'\n"
        "  Operator commands (`taskstream --help`) work from another terminal in this folder.\n"
        "Press Ctrl-C to stop everything.\n"
    )


def password_hint(env: Env) -> str:
    """What to put as the admin's password in the login example."""
    from services.auth_service.entrypoints.first_admin import PASSWORD_FILE

    generated = data_dir_path() / PASSWORD_FILE
    if env.str("ADMIN_PASSWORD"):
        return "<ADMIN_PASSWORD>"
    if generated.is_file():
        return f"'\"$(cat {generated})\"'"
    return "<the admin's password>"


def gateway_ready(env: Env) -> Callable[[], bool]:
    """A probe: does the gateway answer `/readyz` with 200?"""
    url = f"{read_settings(Ports, env).local_url('gateway')}/readyz"

    def probe() -> bool:
        try:
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    return probe


def wait_until_ready(child: subprocess.Popen[bytes], ready: Callable[[], bool],
                     timeout: float = READY_TIMEOUT_SECONDS) -> bool:
    """Poll `ready` until it holds, the child exits or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while child.poll() is None and time.monotonic() < deadline:
        if ready():
            return True
        time.sleep(0.25)
    return False


def run_processes(procfile: str, announce: Callable[[bool], None],
                  ready: Callable[[], bool]) -> int:
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
    is_ready = wait_until_ready(child, ready)
    if child.poll() is None:
        announce(is_ready)
    code = child.wait()
    return 0 if stopping else code  # a requested stop is a clean exit


def quiet_children() -> None:
    """Settings for the children that only make `make run` quieter (the user's win)."""
    # Celery's start-up banners are the only multi-line output left; `celery --quiet`.
    os.environ.setdefault("CELERY_QUIET", "1")


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run_system(procfile: str = "Procfile") -> int:
    """The whole `make run`; returns the exit code of the process group."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _exit_on_signal)
    env = Env.load()
    root = data_dir(env)
    running = live_runner(root)
    if running is not None:
        raise ConfigError(f"taskstream run (pid {running}) is already running on DATA_DIR "
                          f"{root}; stop it or use another DATA_DIR")
    os.environ["DATA_DIR"] = str(root)
    servers: Servers = {}
    try:
        start_servers(env, root, servers)
        if servers:
            write_run_state(root, {key: os.environ[key] for key in servers})
        admin_note = prepare(env)
        quiet_children()
        return run_processes(
            procfile, lambda ready: print(banner(env, admin_note, ready), flush=True),
            gateway_ready(env))
    finally:
        if servers:
            remove_run_state(root)
        for server in reversed(servers.values()):
            server.stop()
        print("Taskstream stopped.", flush=True)
