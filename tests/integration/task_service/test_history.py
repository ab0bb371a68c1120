"""A task's history and the task as it was (`as_of`), read from the real event store."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.events import parse_timestamp
from testbed.tokens import TokenFactory

CREATED_FIELDS = ("title", "description", "status", "priority", "due_date", "created_by")


def replay(envelopes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The task its envelopes leave, folded here from the contract alone (not the domain's
    fold): the oracle `as_of` must agree with."""
    task: dict[str, Any] | None = None
    for event in envelopes:
        if event["type"] == "TaskCreated":
            task = {"id": event["task_id"], "created_at": event["occurred_at"],
                    **{name: event["data"][name] for name in CREATED_FIELDS}}
        elif event["type"] == "TaskUpdated":
            task = {**task, **event["data"]["changes"]}  # type: ignore[dict-item]
        elif event["type"] == "TaskStatusChanged":
            task = {**task, "status": event["data"]["new_status"]}  # type: ignore[dict-item]
        task = {**task, "version": event["version"],  # type: ignore[dict-item]
                "updated_at": event["occurred_at"]}
    return task


def random_change(rng: random.Random) -> dict[str, Any]:
    """One to three fields of a task changed at random."""
    choices: dict[str, Callable[[], Any]] = {
        "title": lambda: f"Title {rng.randrange(10_000)}",
        "description": lambda: rng.choice([None, f"Notes {rng.randrange(100)}"]),
        "status": lambda: rng.choice(["active", "in_progress", "completed", "cancelled"]),
        "priority": lambda: rng.choice(["low", "medium", "high"]),
        "due_date": lambda: rng.choice([None, f"2025-0{rng.randrange(1, 10)}-1{rng.randrange(9)}"]),
    }
    return {name: choices[name]() for name in rng.sample(sorted(choices), rng.randrange(1, 4))}


@pytest.fixture
def admin(tokens: TokenFactory) -> dict[str, str]:
    """An admin's headers."""
    return tokens.headers(role="admin")


def history(client: FlaskClient, task_id: int, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every event of a task through the history route (all pages)."""
    events: list[dict[str, Any]] = []
    page = 1
    while True:
        response = client.get(f"/tasks/current/{task_id}/history?per_page=100&page={page}",
                              headers=headers)
        assert response.status_code == 200, response.get_json()
        events += response.get_json()
        if len(events) >= int(response.headers["X-Total-Count"]):
            return events
        page += 1


def test_as_of_equals_an_independent_fold_at_twenty_random_points(
        client: FlaskClient, admin: dict[str, str]) -> None:
    rng = random.Random(1504)
    task = client.post("/task", json={"title": "Tracked", "priority": "low"}, headers=admin)
    task_id = task.get_json()["id"]
    answered = {int(task.headers["X-Event-Seq"]): task.get_json()}  # position -> the task
    for _ in range(40):
        if rng.random() < 0.3:  # other tasks' events in between: positions are not contiguous
            client.post("/task", json={"title": "Other"}, headers=admin)
        changed = client.put(f"/task/{task_id}", json=random_change(rng), headers=admin)
        assert changed.status_code == 200, changed.get_json()
        answered[int(changed.headers["X-Event-Seq"])] = changed.get_json()
    events = history(client, task_id, admin)
    assert [event["version"] for event in events] == list(range(1, len(events) + 1))
    positions = [event["seq"] for event in events]
    for point in rng.sample(range(positions[0], positions[-1] + 5), 14):
        expected = replay([event for event in events if event["seq"] <= point])
        read = client.get(f"/tasks/current/{task_id}?as_of={point}", headers=admin)
        assert (read.status_code, read.get_json()) == (200, expected), point
        assert read.headers["ETag"] == f'"{expected["version"]}"'  # type: ignore[index]
        if point in answered:
            assert read.get_json() == answered[point]
    for event in rng.sample(events, 6):  # at an event's time, and naive times are UTC
        moment = parse_timestamp(event["occurred_at"])
        expected = replay([e for e in events if parse_timestamp(e["occurred_at"]) <= moment])
        naive = moment.replace(tzinfo=None).isoformat()
        read = client.get(f"/tasks/current/{task_id}?as_of={naive}", headers=admin)
        assert (read.status_code, read.get_json()) == (200, expected), naive


def test_as_of_before_the_task_existed_is_404(client: FlaskClient, admin: dict[str, str]
                                              ) -> None:
    client.post("/task", json={"title": "First"}, headers=admin)
    task = client.post("/task", json={"title": "Second"}, headers=admin)
    created_at = task.get_json()["created_at"]
    position = int(task.headers["X-Event-Seq"])
    for as_of in (position - 1, 0, "2000-01-01T00:00:00Z"):
        read = client.get(f"/tasks/current/{task.get_json()['id']}?as_of={as_of}",
                          headers=admin)
        assert (read.status_code, read.get_json()) == (
            404, {"error": "Task did not exist yet at that point"}), as_of
    at_creation = client.get(f"/tasks/current/{task.get_json()['id']}?as_of={created_at}",
                             headers=admin)
    assert at_creation.get_json() == task.get_json()


def test_history_is_the_contracts_envelopes_oldest_first_in_pages(
        client: FlaskClient, tokens: TokenFactory, admin: dict[str, str]) -> None:
    headers = {**admin, "X-Request-ID": "history-1"}
    task_id = client.post("/task", json={"title": "a", "due_date": "2025-04-30"},
                          headers=headers).get_json()["id"]
    client.put(f"/task/{task_id}", json={"title": "b", "status": "in_progress"}, headers=headers)
    member = tokens.headers(role="member")
    response = client.get(f"/tasks/current/{task_id}/history", headers=member)
    assert response.status_code == 200 and response.headers["X-Total-Count"] == "3"
    created, updated, status = response.get_json()
    assert list(created) == ["event_id", "seq", "type", "task_id", "version", "occurred_at",
                             "schema_version", "actor", "correlation_id", "data"]
    assert [e["type"] for e in (created, updated, status)] == [
        "TaskCreated", "TaskUpdated", "TaskStatusChanged"]
    assert updated["data"] == {"changes": {"title": "b"}, "previous": {"title": "a"}}
    assert status["data"] == {"previous_status": "active", "new_status": "in_progress"}
    assert created["actor"]["role"] == "admin" and created["correlation_id"] == "history-1"
    assert created["data"]["due_date"] == "2025-04-30"
    second = client.get(f"/tasks/current/{task_id}/history?per_page=2&page=2", headers=member)
    assert second.get_json() == [status]
    assert 'rel="prev"' in second.headers["Link"] and 'rel="next"' not in second.headers["Link"]


def test_a_deleted_purged_or_unknown_task_has_no_history_and_no_past(
        client: FlaskClient, admin: dict[str, str]) -> None:
    deleted = client.post("/task", json={"title": "gone"}, headers=admin).get_json()["id"]
    purged = client.post("/task", json={"title": "gone too"}, headers=admin).get_json()["id"]
    client.delete(f"/task/{deleted}", headers=admin)
    client.delete(f"/task/{purged}?purge=true", headers=admin)
    for task_id in (deleted, purged, 999):
        for path in (f"/tasks/current/{task_id}/history", f"/tasks/current/{task_id}?as_of=1"):
            response = client.get(path, headers=admin)
            assert (response.status_code, response.get_json()) == (
                404, {"error": "Task not found"}), path


@pytest.mark.parametrize("query", ["as_of=", "as_of=yesterday", "as_of=-3", "as_of=2025-13-01",
                                   "", "as_of=1&min_seq=-1"])
def test_a_bad_as_of_is_a_400_naming_it(client: FlaskClient, admin: dict[str, str],
                                       query: str) -> None:
    task_id = client.post("/task", json={"title": "t"}, headers=admin).get_json()["id"]
    response = client.get(f"/tasks/current/{task_id}?{query}", headers=admin)
    assert response.status_code == 400
    assert response.get_json()["error"].split(",")[0] in {"Invalid as_of", "Invalid min_seq"}


def test_history_and_as_of_need_task_read(client: FlaskClient, tokens: TokenFactory) -> None:
    assert client.get("/tasks/current/1/history").status_code == 401
    assert client.get("/tasks/current/1?as_of=1").status_code == 401
    stranger = tokens.headers(role="nobody")
    assert client.get("/tasks/current/1/history", headers=stranger).status_code == 403


def test_if_none_match_on_a_past_version_is_304(client: FlaskClient, admin: dict[str, str]
                                                ) -> None:
    task = client.post("/task", json={"title": "t"}, headers=admin)
    client.put(f"/task/{task.get_json()['id']}", json={"title": "u"}, headers=admin)
    path = f"/tasks/current/{task.get_json()['id']}?as_of={task.headers['X-Event-Seq']}"
    assert client.get(path, headers={**admin, "If-None-Match": '"1"'}).status_code == 304
    assert client.get(path, headers={**admin, "If-None-Match": '"2"'}).status_code == 200
