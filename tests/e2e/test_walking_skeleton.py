"""The thin path through every process: login → create → relay → project → transfer → query."""

from __future__ import annotations

import datetime as dt
import json
import re

import redis

from testbed.polling import wait_for
from testbed.stack import Stack


def test_gateway_is_ready_with_every_upstream(stack: Stack) -> None:
    body = stack.session.get(f"{stack.base_url}/readyz").json()
    assert body["status"] == "ready"
    assert set(body["checks"]) >= {"redis", "auth", "tasks", "logger", "webhooks"}


GUNICORN_LINE = re.compile(r"^\[[0-9-]+ [0-9:]+ [+-][0-9]{4}\] \[[0-9]+\] \[[A-Z]+\] \S")


def test_the_log_is_the_banner_and_one_line_per_event(stack: Stack) -> None:
    before, banner, after = stack.logs().partition("Taskstream is ready.")
    assert banner, before[-3000:]
    assert f"http://localhost:{stack.ports['gateway']}/auth/login" in after
    assert stack.noisy_lines() == []
    printed = [line.split(" | ", 1)[1] for line in after.splitlines()
               if " | " in line and " system " not in line.split(" | ", 1)[0]]
    assert [line for line in printed if not is_one_event(line)] == []


def is_one_event(line: str) -> bool:
    """One log record: a JSON object (the stack runs with LOG_FORMAT=json) or gunicorn's own."""
    if GUNICORN_LINE.match(line):
        return True
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def test_admin_logs_in_through_the_gateway(stack: Stack) -> None:
    credentials = {"username": "admin", "password": stack.env["ADMIN_PASSWORD"]}
    response = stack.session.post(f"{stack.base_url}/auth/login", json=credentials)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["access_token"] and body["expires_in"] > 0


def test_created_task_is_listed_for_today_after_the_transfer(stack: Stack) -> None:
    headers = stack.login()
    created = stack.session.post(f"{stack.base_url}/task", headers=headers,
                                 json={"title": "Walk the skeleton"})
    assert created.status_code == 201, created.text
    task = created.json()
    assert created.headers["Location"].endswith(f"/task/{task['id']}")

    today = dt.datetime.now(dt.UTC).date().isoformat()
    transfer = stack.session.post(f"{stack.base_url}/admin/transfer", headers=headers,
                                  json={"date": today})
    assert transfer.status_code == 202, transfer.text
    assert transfer.json()["date"] == today

    def listed() -> list | None:
        response = stack.session.get(f"{stack.base_url}/tasks", params={"date": today},
                                     headers=headers)
        assert response.status_code == 200, response.text
        entries = [e for e in response.json() if e["task_id"] == task["id"]]
        return entries or None

    entries = wait_for(listed, timeout=30, what="the task in today's TaskLogger")
    assert entries[0]["title"] == "Walk the skeleton"
    assert entries[0]["status"] == "active"
    assert entries[0]["date"] == today


def test_request_id_travels_to_logs_and_the_event(stack: Stack) -> None:
    headers = {**stack.login(), "X-Request-ID": "e2e-trace-0001"}
    response = stack.session.post(f"{stack.base_url}/task", headers=headers,
                                  json={"title": "Traced"})
    assert response.headers["X-Request-ID"] == "e2e-trace-0001"

    def services_logging_it() -> set[str]:
        lines = [json.loads(line.split("|", 1)[-1]) for line in stack.logs().splitlines()
                 if "e2e-trace-0001" in line and "{" in line]
        return {line["service"] for line in lines if line.get("request_id") == "e2e-trace-0001"}

    wait_for(lambda: {"gateway", "tasks"} <= services_logging_it(), timeout=10,
               what="the request id in the gateway's and task service's log lines")
    stream = redis.Redis.from_url(stack.env["REDIS_URL"])
    key = f"{stack.env['REDIS_NAMESPACE']}:events"

    def event_of_request() -> list[dict]:
        entries = stream.xrange(key)
        events = [json.loads(fields[b"event"]) for _id, fields in entries]
        return [e for e in events if e["correlation_id"] == "e2e-trace-0001"]

    events = wait_for(event_of_request, timeout=10, what="the event on the stream")
    assert events[0]["type"] == "TaskCreated"
    assert events[0]["task_id"] == response.json()["id"]


def test_a_repeated_transfer_adds_new_tasks_and_a_soft_delete_takes_its_entry_away(
        stack: Stack) -> None:
    headers, base, day = stack.login(), stack.base_url, "2001-02-03"

    def create(title: str) -> int:
        response = stack.session.post(f"{base}/task", headers=headers, json={"title": title})
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def transfer() -> str:
        response = stack.session.post(f"{base}/admin/transfer", headers=headers,
                                      json={"date": day})
        assert response.status_code == 202, response.text
        return str(response.json()["event_id"])

    def entries() -> dict[int, list[int]]:
        response = stack.session.get(f"{base}/tasks", headers=headers,
                                     params={"date": day, "per_page": 100})
        found: dict[int, list[int]] = {}
        for entry in response.json():
            found.setdefault(entry["task_id"], []).append(entry["id"])
        return found

    first = create("Logged by the first transfer")
    first_event = transfer()
    wait_for(lambda: first in entries(), timeout=30, what="the first transfer")
    second = create("Logged by the second transfer")
    assert transfer() != first_event
    logged = wait_for(lambda: second in entries() and entries(), timeout=30,
                      what="the second transfer")
    assert len(logged[first]) == len(logged[second]) == 1
    deleted = stack.session.delete(f"{base}/task/{first}", headers=headers)
    assert deleted.status_code == 200, deleted.text
    wait_for(lambda: first not in entries(), timeout=30, what="the soft delete")
    gone = stack.session.get(f"{base}/task/{logged[first][0]}", headers=headers)
    assert gone.status_code == 404 and gone.json() == {"error": "Task log entry not found"}
