"""The servers a running `taskstream run` started, for operator commands in the same folder.

`taskstream run` writes the URLs of the embedded servers it started to `run.env` under
`DATA_DIR` and removes the file when it stops; in development, configuration loading fills
an unset `DATABASE_URL`/`REDIS_URL` from it.
"""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import dotenv_values

RUN_STATE_FILE = "run.env"
RUN_STATE_KEYS = ("DATABASE_URL", "REDIS_URL")


def load_run_state(directory: Path) -> dict[str, str]:
    """Fill unset `DATABASE_URL`/`REDIS_URL` from a running `taskstream run`'s state file."""
    if live_runner(directory) is None:
        return {}  # none, or left behind by a runner that was killed: its servers are gone too
    values = dotenv_values(directory / RUN_STATE_FILE)
    applied = {}
    for key in RUN_STATE_KEYS:
        value = values.get(key)
        if value and not os.environ.get(key, "").strip():
            os.environ[key] = applied[key] = value
    return applied


def write_run_state(directory: Path, values: dict[str, str]) -> Path:
    """Record the servers this runner started (see `load_run_state`); return the file."""
    path = directory / RUN_STATE_FILE
    lines = [f"# Written by `taskstream run`; removed when it stops.\nRUN_PID={os.getpid()}"]
    lines += [f"{key}={value}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def live_runner(directory: Path) -> int | None:
    """The pid of the `taskstream run` whose state file is in `directory`, if it still runs."""
    path = directory / RUN_STATE_FILE
    if not path.is_file():
        return None
    try:
        pid = int(dotenv_values(path).get("RUN_PID") or "")
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return None
    except PermissionError:
        pass  # alive, as another user
    return pid


def remove_run_state(directory: Path) -> None:
    """Forget the servers: the runner that started them is stopping them."""
    (directory / RUN_STATE_FILE).unlink(missing_ok=True)
