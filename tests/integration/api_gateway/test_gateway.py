"""The gateway against a real Redis and real HTTP upstreams."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.api_gateway.config import Settings
from services.api_gateway.entrypoints.app import create_app
from services.embedded import free_port
from shared.config import Env
from testbed.tokens import TokenFactory
from tests.stub_upstream import echo_app, serve


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory()


@pytest.fixture
def upstream() -> Iterator[tuple[Flask, str]]:
    app = echo_app()
    with serve(app) as url:
        yield app, url


def gateway_settings(monkeypatch: pytest.MonkeyPatch, redis_url: str, namespace: str,
                     upstream_url: str, **overrides: object) -> Settings:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("REDIS_NAMESPACE", namespace)
    for key in ("AUTH_SERVICE_URL", "TASK_SERVICE_URL", "LOGGER_SERVICE_URL",
                "WEBHOOKS_SERVICE_URL"):
        monkeypatch.setenv(key, upstream_url)
    return replace(Settings.from_env(Env("test")), **overrides)  # type: ignore[arg-type]


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, redis_url: str, namespace: str,
           upstream: tuple[Flask, str], tokens: TokenFactory) -> FlaskClient:
    settings = gateway_settings(monkeypatch, redis_url, namespace, upstream[1])
    return create_app(settings, verifier=tokens.verifier()).test_client()


def test_forwards_path_query_body_and_headers(client: FlaskClient, tokens: TokenFactory) -> None:
    headers = {**tokens.headers(), "X-Request-ID": "req-123", "If-Match": '"2"',
               "Idempotency-Key": "k1", "Content-Type": "application/json"}
    response = client.put("/task/5?x=1", data='{"title": "t"}', headers=headers)
    assert response.status_code == 200
    seen = response.get_json()
    assert (seen["path"], seen["method"], seen["query"]) == ("/task/5", "PUT", "x=1")
    assert seen["body"] == '{"title": "t"}'
    assert seen["headers"]["X-Request-Id"] == "req-123"
    assert seen["headers"]["If-Match"] == '"2"'
    assert seen["headers"]["Idempotency-Key"] == "k1"
    assert seen["headers"]["Authorization"] == headers["Authorization"]
    assert response.headers["X-Request-ID"] == "req-123"


def test_forwards_header_values_that_are_not_ascii(client: FlaskClient,
                                                   tokens: TokenFactory) -> None:
    """Latin-1 bytes in a header reach the service as sent (the service judges them)."""
    response = client.delete("/task/1", headers={**tokens.headers(), "If-Match": "NH_\u00d3}5b"})
    assert response.status_code == 200
    assert response.get_json()["headers"]["If-Match"] == "NH_\u00d3}5b"

def test_forwards_any_bytes_of_a_body_unchanged(client: FlaskClient,
                                                tokens: TokenFactory) -> None:
    body = b'{"title": "a\x00b"}\x00\xff'  # the service, not the gateway, judges a body
    response = client.post("/task", data=body, headers={
        **tokens.headers(), "Content-Type": "application/json"})
    assert response.status_code == 201
    assert response.get_json()["body"] == body.decode("utf-8", "replace")
    assert response.get_json()["headers"]["Content-Length"] == str(len(body))


def test_passes_back_status_and_headers_unchanged(client: FlaskClient,
                                                  tokens: TokenFactory) -> None:
    response = client.post("/task", json={"title": "x"}, headers=tokens.headers())
    assert response.status_code == 201
    assert response.headers["Location"] == "/task/7"
    assert response.headers["ETag"] == '"3"'
    assert response.headers["X-Total-Count"] == "42"
    assert response.headers["Link"] == '</tasks?page=2>; rel="next"'


def test_generates_request_id_when_missing(client: FlaskClient, tokens: TokenFactory) -> None:
    response = client.get("/tasks", headers=tokens.headers())
    assert len(response.headers["X-Request-ID"]) >= 16
    assert response.get_json()["headers"]["X-Request-Id"] == response.headers["X-Request-ID"]


def test_missing_token_is_401(client: FlaskClient) -> None:
    response = client.get("/tasks")
    assert response.status_code == 401
    assert response.get_json() == {"error": "Authentication required"}


def test_bad_token_is_401(client: FlaskClient, tokens: TokenFactory) -> None:
    other = TokenFactory()
    response = client.get("/tasks", headers=other.headers())
    assert response.status_code == 401
    assert response.get_json() == {"error": "Invalid or expired token"}


def test_public_routes_need_no_token(client: FlaskClient) -> None:
    assert client.post("/auth/login", json={"username": "a", "password": "b"}).status_code == 201
    assert client.get("/.well-known/jwks.json").status_code == 200


def test_json_errors_for_unknown_route_and_method(client: FlaskClient) -> None:
    missing = client.get("/nope")
    assert missing.status_code == 404 and missing.get_json() == {"error": "Not found"}
    wrong = client.patch("/tasks")
    assert wrong.status_code == 405 and wrong.get_json() == {"error": "Method not allowed"}


@pytest.mark.parametrize("row_id", ["99999999999999999999", "9223372036854775808", "0"])
def test_an_id_outside_bigint_is_404_and_never_forwarded(client: FlaskClient,
                                                         tokens: TokenFactory,
                                                         row_id: str) -> None:
    for method, path in (("GET", "/task/"), ("PUT", "/task/"), ("DELETE", "/task/"),
                         ("PATCH", "/auth/users/")):
        response = client.open(f"{path}{row_id}", method=method, json={"title": "t"},
                               headers=tokens.headers())
        assert (response.status_code, response.get_json()) == (
            404, {"error": "Not found"}), (method, path)
    largest = client.get("/task/9223372036854775807", headers=tokens.headers())
    assert largest.get_json()["path"] == "/task/9223372036854775807"

def test_docs_page_and_its_files_are_served_by_the_gateway(client: FlaskClient) -> None:
    """Swagger UI over /openapi.json, every file from the gateway itself, nothing external."""
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "http:" not in html and "https:" not in html and "//" not in html
    files = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert set(files) >= {"/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css",
                          "/docs/start.js", "/openapi.json"}
    for path in files:
        response = client.get(path)
        assert response.status_code == 200, path
    start = client.get("/docs/start.js").get_data(as_text=True)
    assert 'url: "/openapi.json"' in start and "persistAuthorization: true" in start
    assert "validatorUrl: null" in start  # no badge fetched from the Swagger validator
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert client.get("/docs/oauth2-redirect.html").status_code == 404
    assert client.get("/docs/..%2Fapp.py").status_code == 404

def test_body_over_the_limit_is_413(monkeypatch: pytest.MonkeyPatch, redis_url: str,
                                    namespace: str, upstream: tuple[Flask, str],
                                    tokens: TokenFactory) -> None:
    settings = gateway_settings(monkeypatch, redis_url, namespace, upstream[1],
                                max_body_bytes=100)
    client = create_app(settings, verifier=tokens.verifier()).test_client()
    response = client.post("/task", data="x" * 101, headers=tokens.headers())
    assert response.status_code == 413
    assert response.get_json() == {"error": "Request body too large"}


def test_security_headers(client: FlaskClient, tokens: TokenFactory) -> None:
    response = client.get("/tasks", headers=tokens.headers())
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Access-Control-Allow-Origin" not in response.headers


def test_rate_limit_gives_exact_429(monkeypatch: pytest.MonkeyPatch, redis_url: str,
                                    namespace: str, upstream: tuple[Flask, str],
                                    tokens: TokenFactory) -> None:
    settings = gateway_settings(monkeypatch, redis_url, namespace, upstream[1],
                                rate_limit_default="3/minute")
    client = create_app(settings, verifier=tokens.verifier()).test_client()
    headers = tokens.headers()
    responses = [client.get("/tasks", headers=headers) for _ in range(5)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]
    assert responses[0].headers["X-RateLimit-Remaining"] == "2"
    assert "Retry-After" not in responses[0].headers
    limited = client.get("/tasks", headers=headers)
    assert limited.get_json() == {"error": "Too many requests, please try again later."}
    assert int(limited.headers["Retry-After"]) > 0
    assert limited.headers["X-RateLimit-Limit"] == "3"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert "X-RateLimit-Reset" in limited.headers
    # another user has a budget of their own
    assert client.get("/tasks", headers=tokens.headers(user_id=2)).status_code == 200


def test_login_is_throttled_per_address(monkeypatch: pytest.MonkeyPatch, redis_url: str,
                                        namespace: str, upstream: tuple[Flask, str],
                                        tokens: TokenFactory) -> None:
    settings = gateway_settings(monkeypatch, redis_url, namespace, upstream[1],
                                rate_limit_login="2/minute")
    client = create_app(settings, verifier=tokens.verifier()).test_client()
    body = {"username": "admin", "password": "guess"}
    statuses = [client.post("/auth/login", json=body).status_code for _ in range(4)]
    assert statuses == [201, 201, 429, 429]


def test_redis_down_falls_back_to_in_process_limits(monkeypatch: pytest.MonkeyPatch,
                                                    namespace: str,
                                                    upstream: tuple[Flask, str],
                                                    tokens: TokenFactory) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    settings = gateway_settings(monkeypatch, dead_redis, namespace, upstream[1],
                                rate_limit_default="2/minute")
    client = create_app(settings, verifier=tokens.verifier()).test_client()
    headers = tokens.headers()
    statuses = [client.get("/tasks", headers=headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_upstream_down_is_503_json_quickly(monkeypatch: pytest.MonkeyPatch, redis_url: str,
                                           namespace: str, tokens: TokenFactory) -> None:
    settings = gateway_settings(monkeypatch, redis_url, namespace,
                                f"http://127.0.0.1:{free_port()}")
    client = create_app(settings, verifier=tokens.verifier()).test_client()
    started = time.monotonic()
    response = client.get("/tasks", headers=tokens.headers())
    assert response.status_code == 503
    assert response.get_json() == {"error": "Upstream service 'logger' is unavailable"}
    assert time.monotonic() - started < 5


def test_slow_upstream_is_504(monkeypatch: pytest.MonkeyPatch, redis_url: str, namespace: str,
                              upstream: tuple[Flask, str], tokens: TokenFactory) -> None:
    app, url = upstream
    app.config["DELAY"] = 1.0
    settings = gateway_settings(monkeypatch, redis_url, namespace, url, read_timeout=0.2,
                                retries=0)
    client = create_app(settings, verifier=tokens.verifier()).test_client()
    response = client.post("/task", json={"title": "t"}, headers=tokens.headers())
    assert response.status_code == 504
    assert response.get_json() == {"error": "Upstream service 'tasks' timed out"}


def test_readyz_reports_each_upstream(monkeypatch: pytest.MonkeyPatch, redis_url: str,
                                      namespace: str, upstream: tuple[Flask, str],
                                      tokens: TokenFactory) -> None:
    settings = gateway_settings(monkeypatch, redis_url, namespace, upstream[1])
    down = free_port()
    settings = replace(settings, upstreams={**settings.upstreams,
                                            "logger": f"http://127.0.0.1:{down}"})
    client = create_app(settings, verifier=tokens.verifier()).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"redis": "ok", "auth": "ok", "tasks": "ok",
                                             "logger": "error", "webhooks": "ok"}
    assert str(down) not in response.get_data(as_text=True)  # no addresses for the public


def test_metrics_count_requests_and_rejections(monkeypatch: pytest.MonkeyPatch, redis_url: str,
                                               namespace: str, upstream: tuple[Flask, str],
                                               tokens: TokenFactory) -> None:
    settings = gateway_settings(monkeypatch, redis_url, namespace, upstream[1],
                                rate_limit_default="1/minute")
    client = create_app(settings, verifier=tokens.verifier()).test_client()
    headers = tokens.headers(user_id=991)
    client.get("/tasks", headers=headers)
    client.get("/tasks", headers=headers)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'route="/tasks",service="api_gateway",status="429"' in text
    assert 'taskstream_rate_limited_total{limit="1 per 1 minute"}' in text


def test_cors_answers_only_configured_origins(monkeypatch: pytest.MonkeyPatch, redis_url: str,
                                             namespace: str, upstream: tuple[Flask, str],
                                             tokens: TokenFactory) -> None:
    settings = gateway_settings(monkeypatch, redis_url, namespace, upstream[1],
                                cors_origins=("https://app.example",))
    client = create_app(settings, verifier=tokens.verifier()).test_client()
    allowed = client.get("/tasks", headers={**tokens.headers(), "Origin": "https://app.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "ETag" in allowed.headers["Access-Control-Expose-Headers"]
    other = client.get("/tasks", headers={**tokens.headers(), "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_redis_going_away_mid_run_never_gives_500(monkeypatch: pytest.MonkeyPatch,
                                                  redis_url: str, namespace: str,
                                                  upstream: tuple[Flask, str],
                                                  tokens: TokenFactory) -> None:
    from sqlalchemy.engine import make_url

    from tests.proxy import CuttableProxy

    real = make_url(redis_url.replace("redis://", "postgresql://"))
    proxy = CuttableProxy((real.host or "127.0.0.1", real.port or 6379))
    settings = gateway_settings(monkeypatch, f"redis://127.0.0.1:{proxy.port}/0", namespace,
                                upstream[1], rate_limit_default="3/minute")
    client = create_app(settings, verifier=tokens.verifier()).test_client()
    headers = tokens.headers(user_id=4242)
    assert client.get("/tasks", headers=headers).status_code == 200
    proxy.cut()
    statuses = [client.get("/tasks", headers=headers).status_code for _ in range(5)]
    proxy.close()
    assert 500 not in statuses
    assert statuses[0] == 200  # the request that finds Redis gone is served
    assert 429 in statuses  # and the in-process fallback still limits


def test_rate_limiting_can_be_switched_off(monkeypatch: pytest.MonkeyPatch, redis_url: str,
                                          namespace: str, upstream: tuple[Flask, str],
                                          tokens: TokenFactory) -> None:
    settings = gateway_settings(monkeypatch, redis_url, namespace, upstream[1],
                                rate_limit_enabled=False, rate_limit_login="1/minute")
    client = create_app(settings, verifier=tokens.verifier()).test_client()
    body = {"username": "admin", "password": "guess"}
    assert [client.post("/auth/login", json=body).status_code for _ in range(3)] == [201] * 3


@pytest.fixture
def two_upstreams(monkeypatch: pytest.MonkeyPatch, redis_url: str, namespace: str,
                  tokens: TokenFactory) -> Iterator[tuple[FlaskClient, Flask]]:
    """A gateway whose task service and logger are two different servers."""
    tasks, logger = echo_app(), echo_app()
    tasks.config["NAME"], logger.config["NAME"] = "tasks", "logger"
    with serve(tasks) as tasks_url, serve(logger) as logger_url:
        settings = gateway_settings(monkeypatch, redis_url, namespace, logger_url,
                                    read_timeout=0.3, retries=0)
        settings = replace(settings, upstreams={**settings.upstreams, "tasks": tasks_url})
        yield create_app(settings, verifier=tokens.verifier()).test_client(), tasks


@pytest.mark.parametrize("path, served_by", [
    ("/tasks/current/3", "logger"),
    ("/tasks/current/3?min_seq=4", "logger"),
    ("/tasks/current/3?as_of=2025-04-05T17:32:00Z", "tasks"),
    ("/tasks/current/3?min_seq=4&as_of=12", "tasks"),
    ("/tasks/current/3/history", "tasks"),
    ("/tasks/current", "logger"),
    ("/events?after=7", "tasks"),
])
def test_a_task_as_it_was_its_history_and_the_feed_go_to_the_event_store(
        two_upstreams: tuple[FlaskClient, Flask], tokens: TokenFactory, path: str,
        served_by: str) -> None:
    client, _tasks = two_upstreams
    response = client.get(path, headers=tokens.headers())
    assert response.status_code == 200
    assert (response.get_json()["served_by"], response.get_json()["path"]) == (
        served_by, path.split("?")[0])


def test_a_long_poll_of_the_feed_may_take_its_wait_but_other_reads_may_not(
        two_upstreams: tuple[FlaskClient, Flask], tokens: TokenFactory) -> None:
    client, tasks = two_upstreams
    tasks.config["DELAY"] = 1.0  # past the 0.3 s read timeout; a long poll may wait 30 s more
    assert client.get("/events?wait=5", headers=tokens.headers()).status_code == 200
    assert client.get("/tasks/current/3/history", headers=tokens.headers()).status_code == 504
