"""`make run` on a machine with no servers: embedded PostgreSQL and Redis, and a clean stop."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from testbed.stack import running_stack, stop_stack


def test_embedded_servers_start_and_ctrl_c_leaves_nothing_behind() -> None:
    with running_stack(None, None, timeout=120, extra_env={"TASKSTREAM_ENV": "dev"}) as stack:
        created = stack.session.post(f"{stack.base_url}/task", headers=stack.login(),
                                     json={"title": "On embedded servers"})
        assert created.status_code == 201
        data_dir = Path(stack.env["DATA_DIR"])
        assert {"DATABASE_URL", "REDIS_URL"}.isdisjoint(stack.env)
        status = stack.operator_command("projections", "status", "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["name"] == "logger"
        assert "initdb" in (data_dir / "embedded.log").read_text()
        assert "Taskstream is ready." in stack.logs() and stack.noisy_lines() == []
        before = stack.processes()
        names = " ".join(p.name() for p in before)
        assert "postgres" in names and "redis-server" in names and "gunicorn" in names, names
        stop_stack(stack, signal.SIGINT)
        deadline = time.monotonic() + 30
        while (leftovers := [p for p in before if p.is_running()]) and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        for proc in leftovers:  # keep the machine clean even when the test fails
            proc.kill()
        assert [p.name() for p in leftovers] == []
        assert not (data_dir / "run.env").exists()
        assert stack.noisy_lines() == []
