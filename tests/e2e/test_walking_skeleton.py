"""The thin path through every process: login → create → relay → project → transfer → query."""

from __future__ import annotations

import datetime as dt
import json

import redis

from tests.polling import wait_for
from tests.stack import Stack


def test_gateway_is_ready_with_every_upstream(stack: Stack) -> None:
    body = stack.session.get(f"{stack.base_url}/readyz").json()
    assert body["status"] == "ready"
    assert set(body["checks"]) >= {"redis", "auth", "tasks", "logger"}


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
