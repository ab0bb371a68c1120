"""Every entry point turns a configuration error into one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.run_state import RUN_STATE_FILE, write_run_state

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
NO_REDIS = "Configuration error: REDIS_URL is not set"


def run(command: list[str], **variables: str) -> subprocess.CompletedProcess[str]:
    """Run an entry point in a bare test environment plus `variables`."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TEST_", "PYTEST")) and not key.endswith("_URL")}
    env.update({"TASKSTREAM_ENV": "test", "TASKSTREAM_ENV_FILE": "/nonexistent",
                "WEB_CONCURRENCY": "1", **variables})
    return subprocess.run([str(BIN / command[0]), *command[1:]], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def assert_one_line(result: subprocess.CompletedProcess[str], line: str) -> None:
    """The process failed, said `line`, and printed no traceback."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert line in output.splitlines(), output
    assert "Traceback" not in output, output


@pytest.mark.parametrize("command", [
    ["taskstream", "projections", "status"],
    ["taskstream", "relay"],
    ["taskstream", "projector"],
    ["celery", "--app", "services.task_service.entrypoints.celery_app", "worker",
     "--concurrency", "1"],
    ["celery", "--app", "services.task_service.entrypoints.celery_app", "beat", "--schedule",
     "/nonexistent/schedule"],
], ids=["projections-status", "relay", "projector", "celery-worker", "celery-beat"])
def test_a_missing_variable_is_one_line(command: list[str]) -> None:
    result = run(command)
    assert_one_line(result, NO_REDIS)
    assert result.stderr.strip() == NO_REDIS


@pytest.mark.parametrize("factory", ["api_gateway", "auth_service", "task_service",
                                     "logger_service"])
def test_gunicorn_stops_with_one_line_instead_of_respawning(factory: str) -> None:
    result = run(["gunicorn", "--config", "deploy/gunicorn.conf.py", "--bind", "127.0.0.1:0",
                  f"services.{factory}.entrypoints.app:create_app()"])
    assert_one_line(result, NO_REDIS)
    assert "App failed to load" in result.stderr


def test_a_bad_environment_name_is_one_line() -> None:
    result = run(["taskstream", "projections", "status"], TASKSTREAM_ENV="prodution")
    assert_one_line(result, "Configuration error: TASKSTREAM_ENV must be one of dev, test, "
                            "staging, production, not 'prodution'")


def test_production_refuses_a_placeholder_database_password() -> None:
    result = run(["taskstream", "db", "upgrade"], TASKSTREAM_ENV="production",
                 DATABASE_URL="postgresql://taskstream:change-me@127.0.0.1:1/taskstream")
    assert_one_line(result, "Configuration error: DATABASE_URL has an empty or placeholder "
                            "password; set a real one in production")


def test_production_setup_refuses_a_weak_admin_password(pg_url: str, redis_url: str) -> None:
    result = run(["taskstream", "setup"], TASKSTREAM_ENV="staging", ADMIN_PASSWORD="short",
                 DATABASE_URL=pg_url, REDIS_URL=redis_url, JWT_KEY_DIR="/nonexistent")
    assert_one_line(result, "Configuration error: ADMIN_PASSWORD does not meet the account "
                            "rules: Length must be between 8 and 1024.")


def test_a_second_runner_on_the_same_data_dir_is_one_line(tmp_path: Path) -> None:
    write_run_state(tmp_path, {"REDIS_URL": "redis://127.0.0.1:1/0"})  # "running": this pid
    result = run(["taskstream", "run"], TASKSTREAM_ENV="dev", DATA_DIR=str(tmp_path))
    assert_one_line(result, f"Configuration error: taskstream run (pid {os.getpid()}) is "
                            f"already running on DATA_DIR {tmp_path}; stop it or use another "
                            "DATA_DIR")
    assert (tmp_path / RUN_STATE_FILE).exists()  # the running one's file is left alone
