"""Every command answers with `X-Event-Seq`: the position of its own last event."""

from __future__ import annotations

import threading
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from werkzeug.test import TestResponse

from testbed.tokens import TokenFactory


def last_seq_of(engine: Engine, request_id: str) -> int:
    """The seq of the last event a request appended (events carry its id)."""
    with engine.connect() as connection:
        return int(connection.execute(text(
            "SELECT max(seq) FROM events WHERE metadata->>'correlation_id' = :id"),
            {"id": request_id}).scalar_one())


def head(engine: Engine) -> int:
    """The highest seq stored."""
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT max(seq) FROM events")).scalar_one())


def test_each_command_answers_the_position_of_its_last_event(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    admin = tokens.headers(role="admin")

    def sent(request_id: str, method: str, path: str, **kwargs: object) -> TestResponse:
        response = client.open(path, method=method, headers={**admin, "X-Request-ID": request_id},
                               **kwargs)
        assert response.status_code < 300, response.get_json()
        assert response.headers["X-Event-Seq"] == str(last_seq_of(engine, request_id))
        return response

    task_id = sent("create", "POST", "/task", json={"title": "a"}).get_json()["id"]
    sent("update", "PUT", f"/task/{task_id}", json={"title": "b", "status": "completed"})
    sent("import", "POST", "/upload-csv", data="title\nx\ny\nz\n",
         content_type="text/csv")
    sent("transfer", "POST", "/admin/transfer", json={"date": "2025-04-05"})
    sent("delete", "DELETE", f"/task/{task_id}")
    assert last_seq_of(engine, "update") == last_seq_of(engine, "create") + 2
    assert last_seq_of(engine, "import") == last_seq_of(engine, "update") + 3
    other = sent("other", "POST", "/task", json={"title": "c"}).get_json()["id"]
    sent("purge", "DELETE", f"/task/{other}?purge=true")


def test_a_change_that_changes_nothing_answers_the_head(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    """No event of its own: any position at or past the task's last event is right; the head is."""
    created = client.post("/task", json={"title": "a"}, headers=tokens.headers())
    client.post("/task", json={"title": "later"}, headers=tokens.headers())
    unchanged = client.put(f"/task/{created.get_json()['id']}", json={"title": "a"},
                           headers=tokens.headers())
    assert unchanged.status_code == 200 and unchanged.get_json()["version"] == 1
    assert unchanged.headers["X-Event-Seq"] == str(head(engine)) == "2"


def test_a_replayed_answer_carries_the_first_position(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    headers = {**tokens.headers(sub="5"), "Idempotency-Key": "k-1"}
    first = client.post("/task", json={"title": "a"}, headers=headers)
    client.post("/task", json={"title": "someone else's"}, headers=tokens.headers())
    again = client.post("/task", json={"title": "a"}, headers=headers)
    assert first.headers["X-Event-Seq"] == again.headers["X-Event-Seq"] == "1"
    assert head(engine) == 2


def test_a_response_stored_before_positions_replays_with_the_head(
        client: FlaskClient, tokens: TokenFactory, engine: Engine) -> None:
    headers = {**tokens.headers(sub="5"), "Idempotency-Key": "old"}
    client.post("/task", json={"title": "a"}, headers=headers)
    client.post("/task", json={"title": "b"}, headers=tokens.headers())
    with engine.begin() as connection:
        connection.execute(text(
            "UPDATE idempotency_keys SET event_position = NULL, last_event_id = NULL"))
    again = client.post("/task", json={"title": "a"}, headers=headers)
    assert again.status_code == 201 and again.headers["X-Event-Seq"] == "2"


def test_concurrent_writers_each_get_their_own_position(
        make_app: Callable[..., Flask], tokens: TokenFactory, engine: Engine) -> None:
    app = make_app()
    answers: dict[str, str] = {}
    barrier = threading.Barrier(6)

    def write(request_id: str) -> None:
        barrier.wait()
        response = app.test_client().post("/task", json={"title": request_id}, headers={
            **tokens.headers(), "X-Request-ID": request_id})
        answers[request_id] = response.headers["X-Event-Seq"]

    threads = [threading.Thread(target=write, args=(f"w{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert answers == {rid: str(last_seq_of(engine, rid)) for rid in answers}
    assert sorted(map(int, answers.values())) == list(range(1, 7))
