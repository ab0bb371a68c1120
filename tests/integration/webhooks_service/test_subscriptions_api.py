"""The subscriptions API over a real database: make, read, change, rotate, delete, replay."""

from __future__ import annotations

import pytest
import redis
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.integration.webhooks_service.conftest import admin, api_client, member

URL = "https://hooks.example.com/taskstream"


def make(client: FlaskClient, **body: object) -> dict:
    reply = client.post("/webhooks", json={"url": URL, **body}, headers=admin())
    assert reply.status_code == 201, reply.get_json()
    return reply.get_json()


def test_a_subscription_is_made_with_a_secret_shown_only_then(client: FlaskClient) -> None:
    reply = client.post("/webhooks", headers=admin(), json={
        "url": URL, "event_types": ["TaskCreated"], "description": "chat"})
    made = reply.get_json()
    assert reply.status_code == 201
    assert reply.headers["Location"] == f"/webhooks/{made['id']}"
    assert made["secret"].startswith("whsec_") and len(made["secret"]) > 40
    assert (made["url"], made["event_types"], made["paused"]) == (URL, ["TaskCreated"], False)
    shown = client.get(f"/webhooks/{made['id']}", headers=admin()).get_json()
    assert "secret" not in shown and shown["description"] == "chat"
    listed = client.get("/webhooks", headers=admin())
    assert listed.headers["X-Total-Count"] == "1"
    assert [s["id"] for s in listed.get_json()] == [made["id"]]


def test_only_webhook_managers_may_call(client: FlaskClient) -> None:
    assert client.get("/webhooks").status_code == 401
    reply = client.post("/webhooks", json={"url": URL}, headers=member())
    assert reply.status_code == 403
    assert reply.get_json() == {"error": "Forbidden"}


@pytest.mark.parametrize("url, problem", [
    ("ftp://hooks.example.com/", "Use http or https."),
    ("https://user:pw@hooks.example.com/", "Credentials in the URL are not allowed."),
    ("https:///path", "The URL needs a host."),
    ("http://127.0.0.1:8080/hook", "Refused: 127.0.0.1 is loopback."),
    ("http://169.254.169.254/latest/meta-data", "Refused: 169.254.169.254 is link-local"),
    ("http://[::ffff:10.0.0.1]/", "Refused: ::ffff:10.0.0.1 is private."),
])
def test_a_refused_url_is_a_422(client: FlaskClient, url: str, problem: str) -> None:
    reply = client.post("/webhooks", json={"url": url}, headers=admin())
    assert reply.status_code == 422
    body = reply.get_json()
    assert body["error"].startswith(f"Field 'url': {problem}")
    assert list(body["details"]["json"]) == ["url"]


def test_production_takes_only_https(engine: Engine, redis_client: redis.Redis, namespace: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    client = api_client(engine, redis_client, namespace, monkeypatch,
                        TASKSTREAM_ENV="production")
    reply = client.post("/webhooks", json={"url": "http://hooks.example.com/"}, headers=admin())
    assert (reply.status_code, reply.get_json()["error"]) == (422, "Field 'url': Use https.")
    assert client.post("/webhooks", json={"url": URL}, headers=admin()).status_code == 201


def test_private_hosts_may_be_allowed_outside_production(
        engine: Engine, redis_client: redis.Redis, namespace: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    client = api_client(engine, redis_client, namespace, monkeypatch,
                        WEBHOOKS_ALLOW_PRIVATE="true")
    assert client.post("/webhooks", json={"url": "http://127.0.0.1:9/"},
                       headers=admin()).status_code == 201


def test_unknown_event_types_and_empty_patches_are_refused(client: FlaskClient) -> None:
    reply = client.post("/webhooks", json={"url": URL, "event_types": ["TaskExploded"]},
                        headers=admin())
    assert reply.status_code == 422
    assert reply.get_json()["error"].startswith("Field 'event_types.0'")
    assert client.post("/webhooks", json={"url": URL, "event_types": []},
                       headers=admin()).status_code == 422
    made = make(client)
    assert client.patch(f"/webhooks/{made['id']}", json={},
                        headers=admin()).status_code == 422


def test_pausing_and_resuming_say_why(client: FlaskClient) -> None:
    made = make(client)
    paused = client.patch(f"/webhooks/{made['id']}", json={"paused": True}, headers=admin())
    assert paused.get_json()["paused_reason"] == "paused by an administrator"
    resumed = client.patch(f"/webhooks/{made['id']}", json={"paused": False, "event_types": None},
                           headers=admin()).get_json()
    assert (resumed["paused"], resumed["paused_reason"], resumed["event_types"]) == (
        False, None, None)


def test_rotation_keeps_the_old_secret_signing_for_a_while(client: FlaskClient,
                                                           engine: Engine) -> None:
    made = make(client)
    rotated = client.post(f"/webhooks/{made['id']}/rotate-secret", headers=admin())
    assert rotated.status_code == 200
    body = rotated.get_json()
    assert body["secret"].startswith("whsec_") and body["secret"] != made["secret"]
    assert body["previous_secret_expires_at"]
    with engine.connect() as connection:
        row = connection.execute(text(
            "SELECT secret, previous_secret, previous_secret_expires_at > now() + "
            "interval '23 hours' FROM subscriptions")).one()
    assert tuple(row) == (body["secret"], made["secret"], True)


def test_delete_takes_the_subscription_away(client: FlaskClient) -> None:
    made = make(client)
    assert client.delete(f"/webhooks/{made['id']}", headers=admin()).status_code == 204
    for reply in (client.get(f"/webhooks/{made['id']}", headers=admin()),
                  client.delete(f"/webhooks/{made['id']}", headers=admin()),
                  client.post(f"/webhooks/{made['id']}/replay", json={"from_seq": 0},
                              headers=admin()),
                  client.get(f"/webhooks/{made['id']}/deliveries", headers=admin())):
        assert reply.status_code == 404
        assert reply.get_json() == {"error": "Webhook not found"}


def test_replay_runs_up_to_what_is_queued(client: FlaskClient, engine: Engine) -> None:
    made = make(client)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO consumer_checkpoints (name, last_seq) VALUES ('webhooks', 40)"))
    reply = client.post(f"/webhooks/{made['id']}/replay", json={"from_seq": 10},
                        headers=admin())
    assert reply.status_code == 202
    assert {k: reply.get_json()[k] for k in ("from_seq", "through_seq", "finished")} == {
        "from_seq": 10, "through_seq": 40, "finished": False}
    beyond = client.post(f"/webhooks/{made['id']}/replay", json={"from_seq": 40},
                         headers=admin()).get_json()
    assert beyond["finished"] is True
    assert client.post(f"/webhooks/{made['id']}/replay", json={"from_seq": -1},
                       headers=admin()).status_code == 422


def test_deliveries_are_listed_by_status(client: FlaskClient) -> None:
    made = make(client)
    reply = client.get(f"/webhooks/{made['id']}/deliveries?status=failed", headers=admin())
    assert (reply.status_code, reply.get_json(), reply.headers["X-Total-Count"]) == (200, [], "0")
    assert client.get(f"/webhooks/{made['id']}/deliveries?status=lost",
                      headers=admin()).status_code == 400
    missing = client.post(f"/webhooks/{made['id']}/deliveries/5/resend", headers=admin())
    assert (missing.status_code, missing.get_json()) == (404, {"error": "Delivery not found"})
