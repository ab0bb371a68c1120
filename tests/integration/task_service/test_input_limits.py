"""Hostile input to the task service is refused with the contract's error, never a 500."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from testbed.tokens import TokenFactory
from tests.integration.task_service.test_csv_import import tasks_and_events
from tests.statements import recorded_statements

DEEP_BODIES = [b"[" * 100_000, b'{"a":' * 100_000]
BEYOND_BIGINT = "99999999999999999999"


@pytest.mark.parametrize("body", DEEP_BODIES, ids=["arrays", "objects"])
def test_deeply_nested_json_is_400(client: FlaskClient, tokens: TokenFactory, engine: Engine,
                                   body: bytes) -> None:
    for method, path in (("POST", "/task"), ("PUT", "/task/1")):
        response = client.open(path, method=method, data=body, headers=tokens.headers(),
                               content_type="application/json")
        assert response.status_code == 400, (method, response.get_json())
        assert response.get_json() == {
            "error": "Request body nests JSON deeper than 32 levels"}
    assert tasks_and_events(engine) == (0, 0)


def test_json_nested_to_the_limit_is_parsed(client: FlaskClient, tokens: TokenFactory) -> None:
    """32 levels are read (and then refused by the schema), 33 are not."""
    body = b'{"title": "t", "description": ' + b"[" * 31 + b"]" * 31 + b"}"
    response = client.post("/task", data=body, headers=tokens.headers(),
                           content_type="application/json")
    assert response.status_code == 422
    assert response.get_json()["error"] == "Field 'description': Not a valid string."
    deeper = body.replace(b"[", b"[[", 1).replace(b"]", b"]]", 1)
    assert client.post("/task", data=deeper, headers=tokens.headers(),
                       content_type="application/json").status_code == 400


@pytest.mark.parametrize("task_id", [BEYOND_BIGINT, "9223372036854775808", "0", "-1", "1" * 5000])
def test_a_task_id_outside_bigint_is_404_without_a_query(
        client: FlaskClient, tokens: TokenFactory, engine: Engine, task_id: str) -> None:
    with recorded_statements(engine) as sent:
        put = client.put(f"/task/{task_id}", json={"title": "x"}, headers=tokens.headers())
        delete = client.delete(f"/task/{task_id}", headers=tokens.headers())
    for response in (put, delete):
        assert (response.status_code, response.get_json()) == (404, {"error": "Not found"})
    assert sent == []


def test_the_largest_bigint_is_an_ordinary_unknown_task(
        client: FlaskClient, tokens: TokenFactory) -> None:
    response = client.delete("/task/9223372036854775807", headers=tokens.headers())
    assert (response.status_code, response.get_json()) == (404, {"error": "Task not found"})



@pytest.mark.parametrize("if_match", ["\u00b2", '"\u00b2"', "1" * 5000, "NH_\u00d3}5b"])
def test_an_if_match_that_names_no_version_is_412_not_a_500(
        client: FlaskClient, tokens: TokenFactory, if_match: str) -> None:
    task = client.post("/task", json={"title": "t"}, headers=tokens.headers()).get_json()
    for method in ("PUT", "DELETE"):
        response = client.open(f"/task/{task['id']}", method=method, json={"title": "u"},
                               headers={**tokens.headers(), "If-Match": if_match})
        assert response.status_code == 412, (method, response.get_json())
