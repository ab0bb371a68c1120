"""The database is the record of every revocation; Redis is a copy that is repaired: a mark
Redis lost, or one that could not be written after its commit, comes back from the database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from services.auth_service.adapters.passwords import Argon2Passwords
from services.auth_service.entrypoints.app import create_app
from services.auth_service.service_layer.republisher import MarkRepublisher
from shared.background import background_of, start_background
from shared.revocation import KEY_SUFFIX
from shared.settings import CommonSettings
from testbed.polling import wait_for
from tests.integration.auth_service.conftest import login
from tests.proxy import CuttableProxy
from tests.unit.auth_service.fakes import common_settings, make_settings


def republisher(app: Flask) -> MarkRepublisher:
    """The app's republisher (built, not started)."""
    (work,) = background_of(app)
    assert isinstance(work, MarkRepublisher)
    return work


def recorded_mark(engine: Engine, user_id: int) -> float:
    """The user's revocation time as the database holds it (Unix seconds)."""
    with engine.connect() as connection:
        at = connection.execute(text("SELECT tokens_revoked_at FROM users WHERE id = :id"),
                                {"id": user_id}).scalar_one()
    return float(at.timestamp())


def me_status(client: FlaskClient, headers: dict[str, str]) -> int:
    """Status of GET /auth/me with these headers."""
    return client.get("/auth/me", headers=headers).status_code


def new_user(client: FlaskClient, admin: dict[str, str], username: str) -> int:
    """Create a member through the API; its id."""
    response = client.post("/auth/users", headers=admin,
                           json={"username": username, "password": "long enough"})
    assert response.status_code == 201, response.json
    return int(response.json["id"])


def test_the_republisher_restores_a_mark_that_redis_lost(client: FlaskClient, app: Flask,
                                                         admin: dict[str, str], engine: Engine,
                                                         redis_client: redis.Redis,
                                                         namespace: str) -> None:
    key = f"{namespace}:{KEY_SUFFIX}"
    user_id = new_user(client, admin, "ops")
    old = login(client, "ops", "long enough")
    assert client.patch(f"/auth/users/{user_id}", headers=admin,
                        json={"role": "manager"}).status_code == 200
    assert redis_client.zscore(key, str(user_id)) == recorded_mark(engine, user_id)
    wait_for(lambda: me_status(client, old) == 401, timeout=5, what="the old token refused")
    redis_client.delete(key)  # Redis loses its data
    wait_for(lambda: me_status(client, old) == 200, timeout=5,
             what="the verifier to read the empty set (the gap being closed)")
    assert republisher(app).publish_once() >= 1
    assert redis_client.zscore(key, str(user_id)) == recorded_mark(engine, user_id)
    wait_for(lambda: me_status(client, old) == 401, timeout=5,
             what="the old token refused again")


@pytest.fixture
def redis_proxy(redis_url: str) -> Iterator[CuttableProxy]:
    """A proxy to the test Redis that a test can cut."""
    target = urlparse(redis_url)
    proxy = CuttableProxy((target.hostname or "127.0.0.1", target.port or 6379))
    yield proxy
    proxy.close()


@pytest.fixture
def cut_app(tmp_path: Path, auth_db: str, passwords: Argon2Passwords, namespace: str,
            redis_proxy: CuttableProxy, redis_client: redis.Redis) -> Iterator[Flask]:
    """The auth app, its Redis reached through `redis_proxy`; its republisher stopped after."""
    common: CommonSettings = common_settings(
        redis_url=f"redis://127.0.0.1:{redis_proxy.port}/0", namespace=namespace)
    app = create_app(make_settings(tmp_path, auth_db, common=common), passwords=passwords)
    yield app
    republisher(app).stop()


def test_a_committed_change_whose_mark_was_not_written_gets_it_once_redis_is_back(
        cut_app: Flask, redis_proxy: CuttableProxy, engine: Engine, passwords: Argon2Passwords,
        redis_client: redis.Redis, namespace: str, caplog: pytest.LogCaptureFixture) -> None:
    from services.auth_service.service_layer import accounts
    from shared.http import DEPENDENCIES as EXTENSION

    key = f"{namespace}:{KEY_SUFFIX}"
    client = cut_app.test_client()
    user = accounts.create_user(cut_app.extensions[EXTENSION].uow(), passwords, "una",
                                "una-secret")
    pair = client.post("/auth/login", json={"username": "una", "password": "una-secret"}).json
    old = {"Authorization": f"Bearer {pair['access_token']}"}
    assert me_status(client, old) == 200
    redis_proxy.cut()
    logout = client.post("/auth/logout", json={"refresh_token": pair["refresh_token"],
                                               "all": True})
    assert logout.status_code == 204  # committed: the database holds the mark
    assert redis_client.zscore(key, str(user.id)) is None
    start_background(cut_app)  # what the server does: the republisher fails, and goes on
    wait_for(lambda: "could not republish the revocation marks" in caplog.text, timeout=10,
             what="the republisher to meet the cut")
    redis_proxy.restore()
    wait_for(lambda: redis_client.zscore(key, str(user.id)) == recorded_mark(engine, user.id),
             timeout=10, what="the mark to be republished once Redis is back")
    wait_for(lambda: me_status(client, old) == 401, timeout=5, what="the old token refused")
