"""The HTTP edge every service shares: JSON bodies, JSON errors, request ids."""

from __future__ import annotations

import pytest
from flask import Flask, jsonify
from flask.testing import FlaskClient
from marshmallow import Schema, fields, validate

from shared.errors import validation_message
from shared.http import Blueprint, create_api, init_http, json_depth


class ItemSchema(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=5))


@pytest.fixture
def client() -> FlaskClient:
    app = Flask("services.example.app")
    init_http(app, max_body_bytes=64)
    api = create_api(app, "Example", "An example service.")
    blp = Blueprint("items", __name__)

    @blp.route("/items", methods=["POST"])
    @blp.arguments(ItemSchema)
    def create(item: dict) -> dict:
        """Create an item."""
        return item

    @blp.route("/boom")
    def boom() -> None:
        """Fail."""
        raise RuntimeError("secret detail")

    api.register_blueprint(blp)
    app.add_url_rule("/ok", "ok", lambda: jsonify([]))
    return app.test_client()


def test_missing_field_is_422_with_the_contract_message(client: FlaskClient) -> None:
    response = client.post("/items", json={})
    assert response.status_code == 422
    assert response.get_json() == {"error": "Field 'title' is required",
                                   "details": {"json": {"title": [
                                       "Missing data for required field."]}}}


def test_invalid_value_names_the_field(client: FlaskClient) -> None:
    response = client.post("/items", json={"title": "far too long"})
    assert response.status_code == 422
    assert response.get_json()["error"].startswith("Field 'title': ")


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'"text"', b"\xff"])
def test_body_that_is_not_a_json_object_is_400(client: FlaskClient, body: bytes) -> None:
    response = client.post("/items", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"error": "Request body must be a JSON object"}


def test_unknown_route_wrong_method_big_body_and_crash_are_json(client: FlaskClient) -> None:
    assert client.get("/nope").get_json() == {"error": "Not found"}
    assert client.delete("/items").get_json() == {"error": "Method not allowed"}
    big = client.post("/items", data=b"{" + b" " * 100 + b"}", content_type="application/json")
    assert (big.status_code, big.get_json()) == (413, {"error": "Request body too large"})
    crash = client.get("/boom")
    assert (crash.status_code, crash.get_json()) == (500, {"error": "Internal server error"})
    assert "secret" not in crash.get_data(as_text=True)


def test_request_id_is_echoed_or_generated(client: FlaskClient) -> None:
    assert client.get("/ok", headers={"X-Request-ID": "abc-1"}).headers["X-Request-ID"] == "abc-1"
    generated = client.get("/ok", headers={"X-Request-ID": "bad id with spaces"})
    assert generated.headers["X-Request-ID"] != "bad id with spaces"
    assert len(generated.headers["X-Request-ID"]) == 32
    assert generated.headers["X-Content-Type-Options"] == "nosniff"


def test_nested_validation_messages_name_the_inner_field() -> None:
    assert validation_message({"json": {"due_date": ["Not a valid date."]}}) == (
        "Field 'due_date': Not a valid date.")


@pytest.mark.parametrize("body", [{"title": "a\u0000b"}, {"title": "ok", "tags": ["x", "\u0000"]},
                                  {"ti\u0000tle": "ok"}])
def test_nul_characters_are_refused_with_422(client: FlaskClient, body: dict) -> None:
    response = client.post("/items", json=body)
    assert response.status_code == 422
    assert "NUL characters are not allowed." in response.get_json()["error"]


@pytest.mark.parametrize("text, depth", [
    (b"{}", 1), (b'{"a": [1, {"b": [2]}]}', 4), (b'{"a": "[[[{{"}', 1),
    (b'{"a": "\\"[[[", "b": "\\\\", "c": [[]]}', 3), (b"[" * 100_000, 100_000),
    (b'{"a":' * 100_000, 100_000), (b"", 0), (b"[[]][[[]]]", 3),
])
def test_json_depth_counts_brackets_outside_strings(text: bytes, depth: int) -> None:
    assert json_depth(text) == depth


@pytest.fixture
def ids_client() -> FlaskClient:
    """An app with an `<id:...>` route for two methods (a 405 trap) and a big enough body."""
    app = Flask("services.example.app")
    init_http(app)
    api = create_api(app, "Example", "An example service.")
    blp = Blueprint("things", __name__)

    @blp.route("/things/<id:thing_id>", methods=["PUT"])
    @blp.arguments(ItemSchema)
    def put(item: dict, thing_id: int) -> dict:
        """Replace a thing."""
        return {"id": thing_id, **item}

    @blp.route("/things/<id:thing_id>", methods=["DELETE"])
    def delete(thing_id: int) -> dict:
        """Delete a thing."""
        return {"id": thing_id}

    api.register_blueprint(blp)
    return app.test_client()


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 100_000, b'{"title": ' +
                                  b"[" * 33 + b"]" * 33 + b"}"])
def test_json_nested_too_deep_is_400_before_parsing(ids_client: FlaskClient,
                                                     body: bytes) -> None:
    response = ids_client.put("/things/1", data=body, content_type="application/json")
    assert (response.status_code, response.get_json()) == (
        400, {"error": "Request body nests JSON deeper than 32 levels"})


@pytest.mark.parametrize("thing_id", ["0", "-1", "01", "9223372036854775808",
                                      "99999999999999999999", "1" * 5000, "\u0661"])
def test_an_id_outside_positive_bigint_matches_no_route(ids_client: FlaskClient,
                                                        thing_id: str) -> None:
    for method in ("PUT", "DELETE"):
        response = ids_client.open(f"/things/{thing_id}", method=method, json={"title": "t"})
        assert (response.status_code, response.get_json()) == (404, {"error": "Not found"})


def test_ids_from_one_to_the_largest_bigint_match(ids_client: FlaskClient) -> None:
    for thing_id in (1, 9, 10, 8999999999999999999, 9223372036854775799, 9223372036854775807):
        assert ids_client.delete(f"/things/{thing_id}").get_json() == {"id": thing_id}


def test_id_parameters_are_documented_as_positive_bigints(ids_client: FlaskClient) -> None:
    document = ids_client.get("/openapi.json").get_json()
    (parameter,) = document["paths"]["/things/{thing_id}"]["parameters"]
    assert parameter["schema"] == {"type": "integer", "format": "int64", "minimum": 1,
                                   "maximum": 9223372036854775807, "example": 42}
