"""Task commands over HTTP against a real database: bodies, events, concurrency, retries."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from services.task_service.domain.model import Context, CreateTask
from services.task_service.service_layer.tasks import create_task
from services.task_service.service_layer.unit_of_work import UnitOfWork
from shared.events import Actor
from testbed.tokens import TokenFactory


def events_of(engine: Engine, task_id: int) -> list[tuple[str, int, dict[str, Any]]]:
    """(type, version, data) of a task's events, in order."""
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT type, version, data FROM events WHERE task_id = :id ORDER BY seq"),
            {"id": task_id})
        return [tuple(row) for row in rows]  # type: ignore[misc]


def count(engine: Engine, table: str) -> int:
    """Rows in a table."""
    with engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_create_returns_the_task_with_location_and_etag_and_stores_its_event(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    """201 with the task, `Location`, `ETag`; `TaskCreated` with actor and request id."""
    response = client.post("/task", json={"title": "Write docs", "priority": "high",
                                          "due_date": "2025-05-01"},
                           headers={**tokens.headers(role="member", sub="42",
                                                     username="ann"), "X-Request-ID": "rq-1"})
    assert response.status_code == 201
    task = response.get_json()
    assert {k: task[k] for k in ("title", "status", "priority", "due_date", "created_by",
                                 "version", "description")} == {
        "title": "Write docs", "status": "active", "priority": "high",
        "due_date": "2025-05-01", "created_by": 42, "version": 1, "description": None}
    assert response.headers["Location"] == f"/task/{task['id']}"
    assert response.headers["ETag"] == '"1"'
    with engine.connect() as connection:
        kind, data, meta = connection.execute(text(
            "SELECT type, data, metadata FROM events WHERE task_id = :id"), {"id": task["id"]}
        ).one()
    assert kind == "TaskCreated" and data["title"] == "Write docs"
    assert meta == {"actor": {"id": 42, "username": "ann", "role": "member"},
                    "correlation_id": "rq-1", "schema_version": 1}


def test_validation_errors_have_the_contract_bodies(client: FlaskClient,
                                                    tokens: TokenFactory) -> None:
    """Missing title → exact 422; not an object → 400; bad values → 422."""
    headers = tokens.headers()
    missing = client.post("/task", json={"description": "x"}, headers=headers)
    assert missing.status_code == 422
    assert missing.get_json()["error"] == "Field 'title' is required"
    assert "details" in missing.get_json()
    for body in ("[1, 2]", "not json", '"title"'):
        bad = client.post("/task", data=body, headers={**headers,
                                                      "Content-Type": "application/json"})
        assert (bad.status_code, bad.get_json()) == (
            400, {"error": "Request body must be a JSON object"})
    for field, value in (("status", "done"), ("priority", "urgent"), ("due_date", "05/01/2025"),
                         ("title", ""), ("title", "x" * 201)):
        assert client.post("/task", json={"title": "t", field: value},
                           headers=headers).status_code == 422


def test_authentication_and_permissions(client: FlaskClient, tokens: TokenFactory) -> None:
    """401 without a token; members cannot update, delete, import or transfer."""
    assert client.post("/task", json={"title": "t"}).get_json() == {
        "error": "Authentication required"}
    task = client.post("/task", json={"title": "t"}, headers=tokens.headers(role="member"))
    member = tokens.headers(role="member")
    forbidden = {"error": "You are not allowed to modify tasks"}
    task_id = task.get_json()["id"]
    assert client.put(f"/task/{task_id}", json={"title": "u"}, headers=member).get_json() == (
        forbidden)
    assert client.delete(f"/task/{task_id}", headers=member).status_code == 403
    assert client.post("/upload-csv", data=b"title\nx\n", headers=member).status_code == 403
    assert client.post("/admin/transfer", headers=member).get_json() == {"error": "Forbidden"}


def test_update_emits_changed_fields_and_status_change_events(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    """A PUT changing a field and the status gives `TaskUpdated` then `TaskStatusChanged`."""
    headers = tokens.headers(role="manager")
    task = client.post("/task", json={"title": "a", "status": "in_progress"},
                       headers=headers).get_json()
    response = client.put(f"/task/{task['id']}", json={"title": "b", "status": "completed",
                                                       "priority": "medium"}, headers=headers)
    assert response.status_code == 200
    assert response.get_json()["version"] == 3 and response.headers["ETag"] == '"3"'
    assert events_of(engine, task["id"])[1:] == [
        ("TaskUpdated", 2, {"changes": {"title": "b"}, "previous": {"title": "a"}}),
        ("TaskStatusChanged", 3, {"previous_status": "in_progress",
                                  "new_status": "completed"}),
    ]
    same = client.put(f"/task/{task['id']}", json={"title": "b"}, headers=headers)
    assert same.get_json()["version"] == 3  # nothing changed, nothing appended
    assert client.put(f"/task/{task['id']}", json={}, headers=headers).status_code == 422
    assert client.put("/task/999999", json={"title": "x"}, headers=headers).get_json() == {
        "error": "Task not found"}


def test_stale_if_match_is_refused_with_412(client: FlaskClient, tokens: TokenFactory) -> None:
    """If-Match naming an old version → 412 and nothing changes."""
    headers = tokens.headers()
    task = client.post("/task", json={"title": "a"}, headers=headers).get_json()
    assert client.put(f"/task/{task['id']}", json={"title": "b"},
                      headers={**headers, "If-Match": '"1"'}).status_code == 200
    stale = client.put(f"/task/{task['id']}", json={"title": "c"},
                       headers={**headers, "If-Match": '"1"'})
    assert (stale.status_code, stale.get_json()) == (
        412, {"error": "Task was modified by someone else"})
    assert client.delete(f"/task/{task['id']}", headers={**headers, "If-Match": "1"}
                         ).status_code == 412


def test_concurrent_updates_of_one_version_one_wins_the_other_gets_412(
        make_app, tokens: TokenFactory, engine: Engine) -> None:
    """Two writers with the same If-Match at the same moment: one 200, one 412, no lost update."""
    app = make_app()
    headers = tokens.headers()
    task = app.test_client().post("/task", json={"title": "a"}, headers=headers).get_json()
    barrier = threading.Barrier(2)
    results: list[int] = []

    def writer(title: str) -> None:
        barrier.wait()
        response = app.test_client().put(f"/task/{task['id']}", json={"title": title},
                                         headers={**headers, "If-Match": '"1"'})
        results.append(response.status_code)

    threads = [threading.Thread(target=writer, args=(t,)) for t in ("x", "y")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(results) == [200, 412]
    assert [kind for kind, _v, _d in events_of(engine, task["id"])] == [
        "TaskCreated", "TaskUpdated"]


def test_soft_delete_then_404_and_purge_needs_its_permission(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    """Soft delete keeps the events; purge removes the row and appends `TaskPurged`."""
    admin, manager = tokens.headers(), tokens.headers(role="manager")
    task = client.post("/task", json={"title": "a"}, headers=admin).get_json()
    deleted = client.delete(f"/task/{task['id']}", headers=manager)
    assert deleted.get_json() == {"message": "Task soft deleted successfully"}
    assert client.delete(f"/task/{task['id']}", headers=manager).status_code == 404
    assert client.put(f"/task/{task['id']}", json={"title": "b"},
                      headers=admin).status_code == 404
    assert client.delete(f"/task/{task['id']}?purge=true", headers=manager).get_json() == {
        "error": "You are not allowed to modify tasks"}
    assert client.delete(f"/task/{task['id']}?purge=true", headers=admin).get_json() == {
        "message": "Task purged"}
    assert client.delete(f"/task/{task['id']}?purge=true", headers=admin).status_code == 404
    assert [(k, v) for k, v, _d in events_of(engine, task["id"])] == [
        ("TaskCreated", 1), ("TaskSoftDeleted", 2), ("TaskPurged", 3)]
    assert count(engine, "task_manager") == 0


def test_a_failed_event_append_leaves_no_task_behind(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    """Change and event commit together: when the event cannot be stored, the task is not."""
    with engine.begin() as connection:  # occupy (task 1, version 1) so the append must fail
        connection.execute(text(
            "INSERT INTO events (seq, event_id, task_id, version, type, data, metadata, "
            "occurred_at) VALUES (1, gen_random_uuid(), 1, 1, 'TaskCreated', '{}', '{}', now())"))
    response = client.post("/task", json={"title": "a"}, headers=tokens.headers())
    assert response.status_code == 500
    assert count(engine, "task_manager") == 0


def test_idempotency_key_replays_the_first_response_and_refuses_another_body(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    """Same key and user → same response, one task; other body → 422; other user → new."""
    headers = {**tokens.headers(sub="5"), "Idempotency-Key": "k-1"}
    first = client.post("/task", json={"title": "a"}, headers=headers)
    again = client.post("/task", json={"title": "a"}, headers=headers)
    assert (again.status_code, again.get_json()) == (201, first.get_json())
    assert again.headers["Location"] == first.headers["Location"]
    assert count(engine, "task_manager") == 1
    other = client.post("/task", json={"title": "b"}, headers=headers)
    assert other.status_code == 422
    assert other.get_json() == {
        "error": "Idempotency-Key was already used with a different request"}
    someone_else = {**tokens.headers(sub="6"), "Idempotency-Key": "k-1"}
    assert client.post("/task", json={"title": "a"}, headers=someone_else).status_code == 201
    assert count(engine, "task_manager") == 2


def test_a_retry_replays_its_own_users_response_when_another_user_shares_the_key(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    """Keys are per user: each user's retry gets back their own first response."""
    ann = {**tokens.headers(sub="5"), "Idempotency-Key": "shared"}
    bob = {**tokens.headers(sub="6"), "Idempotency-Key": "shared"}
    firsts = [client.post("/task", json={"title": title}, headers=headers)
              for title, headers in (("ann's", ann), ("bob's", bob))]
    retries = [client.post("/task", json={"title": title}, headers=headers)
               for title, headers in (("ann's", ann), ("bob's", bob))]
    assert [r.status_code for r in firsts + retries] == [201] * 4
    assert [r.get_json() for r in retries] == [r.get_json() for r in firsts]
    assert [r.get_json()["title"] for r in retries] == ["ann's", "bob's"]
    assert count(engine, "task_manager") == 2


def test_concurrent_retries_with_one_key_create_one_task(
        make_app, tokens: TokenFactory, engine: Engine) -> None:
    """Two simultaneous requests with one key: both get the same task, one is stored."""
    app = make_app()
    headers = {**tokens.headers(), "Idempotency-Key": "race"}
    barrier = threading.Barrier(4)
    bodies: list[Any] = []

    def send() -> None:
        barrier.wait()
        bodies.append(app.test_client().post("/task", json={"title": "a"},
                                             headers=headers).get_json())

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len({b["id"] for b in bodies}) == 1 and count(engine, "task_manager") == 1


def test_health_and_openapi(client: FlaskClient) -> None:
    """`/readyz` checks the database and Redis; every endpoint is documented."""
    assert client.get("/readyz").get_json()["checks"] == {"database": "ok", "redis": "ok"}
    paths = client.get("/openapi.json").get_json()["paths"]
    assert {"/task", "/task/{task_id}", "/upload-csv", "/admin/transfer"} <= set(paths)
    assert paths["/task"]["post"]["summary"]


def test_a_create_the_database_refuses_leaves_its_connection_usable(tasks_url: str) -> None:
    """The one-round-trip create opens its own transaction: a failure must close it."""
    engine = create_engine(tasks_url, pool_size=1, max_overflow=0)
    context = Context(Actor(1, "admin", "admin"), "req")
    try:
        with pytest.raises(DBAPIError):  # longer than the column: the server refuses it
            create_task(UnitOfWork(engine), CreateTask("x" * 201), context)
        done = create_task(UnitOfWork(engine), CreateTask("fine"), context)
        assert done.position == 1 and done.body["title"] == "fine"
        assert count(engine, "task_manager") == count(engine, "events") == 1
    finally:
        engine.dispose()
