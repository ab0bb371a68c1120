"""Operator commands find the embedded servers of a running `taskstream run` (development)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import Env
from shared.run_state import RUN_STATE_FILE, write_run_state

STARTED = {"DATABASE_URL": "postgresql+psycopg2://postgres:@/taskstream?host=/tmp/x",
           "REDIS_URL": "redis://127.0.0.1:45678/0"}


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TASKSTREAM_ENV_FILE", str(tmp_path / "no-env-file"))
    for key in STARTED:
        monkeypatch.delenv(key, raising=False)
    return tmp_path


def test_development_commands_use_the_running_servers(monkeypatch: pytest.MonkeyPatch,
                                                      data_dir: Path) -> None:
    write_run_state(data_dir, STARTED)
    monkeypatch.setenv("TASKSTREAM_ENV", "dev")
    env = Env.load()
    assert env.redis_url() == STARTED["REDIS_URL"]
    assert env.database_url("tasks").startswith("postgresql+psycopg2://postgres:@/taskstream_tasks")


def test_variables_that_are_set_win(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    write_run_state(data_dir, STARTED)
    monkeypatch.setenv("TASKSTREAM_ENV", "dev")
    monkeypatch.setenv("REDIS_URL", "redis://elsewhere:6379/0")
    assert Env.load().redis_url() == "redis://elsewhere:6379/0"
    assert os.environ["DATABASE_URL"] == STARTED["DATABASE_URL"]


@pytest.mark.parametrize("environment", ["test", "staging", "production"])
def test_only_development_reads_it(monkeypatch: pytest.MonkeyPatch, data_dir: Path,
                                   environment: str) -> None:
    write_run_state(data_dir, STARTED)
    monkeypatch.setenv("TASKSTREAM_ENV", environment)
    Env.load()
    assert "REDIS_URL" not in os.environ and "DATABASE_URL" not in os.environ


def test_a_file_left_by_a_killed_runner_is_ignored(monkeypatch: pytest.MonkeyPatch,
                                                    data_dir: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    path = write_run_state(data_dir, STARTED)
    path.write_text(path.read_text().replace(f"RUN_PID={os.getpid()}", f"RUN_PID={gone.pid}"))
    monkeypatch.setenv("TASKSTREAM_ENV", "dev")
    Env.load()
    assert (data_dir / RUN_STATE_FILE).exists() and "REDIS_URL" not in os.environ
