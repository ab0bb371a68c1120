"""Sessions on PostgreSQL: rotation, reuse detection, disabling, concurrency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select, text

from services.auth_service.adapters.orm import RefreshToken
from tests.integration.auth_service.conftest import login


def register(client, username: str, password: str = "long enough") -> dict:
    """Register a member."""
    response = client.post("/auth/register", json={"username": username, "password": password})
    assert response.status_code == 201, response.json
    return response.json


def tokens(client, username: str, password: str = "long enough") -> dict:
    """Log in and return the token pair."""
    response = client.post("/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.json
    return response.json


def refresh(client, token: str):
    """POST /auth/refresh."""
    return client.post("/auth/refresh", json={"refresh_token": token})


def test_login_me_and_stored_hashes(client, engine):
    user = register(client, "alice", "alice-secret")
    pair = tokens(client, "alice", "alice-secret")
    me = client.get("/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.status_code == 200
    assert me.json == {"id": user["id"], "username": "alice", "role": "member",
                       "permissions": ["task:create", "task:read"]}
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT password_hash FROM users")).scalar_one()
        hashes = connection.execute(text("SELECT token_hash FROM refresh_tokens")).scalars()
        assert stored.startswith("$argon2id$") and "alice-secret" not in stored
        assert pair["refresh_token"] not in list(hashes)


def test_refresh_reused_after_rotation_revokes_the_family(client, engine):
    register(client, "bob")
    first = tokens(client, "bob")
    other_session = tokens(client, "bob")
    second = refresh(client, first["refresh_token"])
    assert second.status_code == 200
    reused = refresh(client, first["refresh_token"])
    assert reused.status_code == 401
    assert reused.json == {"error": "Invalid or expired refresh token"}
    assert refresh(client, second.json["refresh_token"]).status_code == 401
    assert refresh(client, other_session["refresh_token"]).status_code == 200
    with engine.connect() as connection:
        revoked = connection.execute(text(
            "SELECT count(*) FROM refresh_tokens WHERE revoked_at IS NOT NULL")).scalar_one()
    assert revoked == 2  # the stolen family: the first token and its successor


def test_concurrent_refreshes_of_one_token_let_only_one_through(client):
    register(client, "carol")
    pair = tokens(client, "carol")
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(pool.map(lambda _: refresh(client, pair["refresh_token"]).status_code,
                                   range(4)))
    assert statuses == [200, 401, 401, 401]


def test_disabling_a_user_kills_their_refresh_tokens_at_once(client, admin, engine):
    user = register(client, "dave")
    pairs = [tokens(client, "dave") for _ in range(2)]
    patched = client.patch(f"/auth/users/{user['id']}", headers=admin, json={"disabled": True})
    assert patched.status_code == 200 and patched.json["disabled"] is True
    with engine.connect() as connection:
        live = connection.execute(
            select(RefreshToken.id).where(RefreshToken.user_id == user["id"],
                                          RefreshToken.revoked_at.is_(None))).all()
    assert live == []
    for pair in pairs:
        assert refresh(client, pair["refresh_token"]).status_code == 401
    assert client.post("/auth/login", json={"username": "dave", "password": "long enough"}
                       ).status_code == 401
    enabled = client.patch(f"/auth/users/{user['id']}", headers=admin, json={"disabled": False})
    assert enabled.status_code == 200
    assert refresh(client, pairs[0]["refresh_token"]).status_code == 401
    assert tokens(client, "dave")["access_token"]


def test_role_change_reaches_the_next_access_token(client, admin):
    user = register(client, "erin")
    pair = tokens(client, "erin")
    client.patch(f"/auth/users/{user['id']}", headers=admin, json={"role": "manager"})
    renewed = refresh(client, pair["refresh_token"]).json
    me = client.get("/auth/me", headers={"Authorization": f"Bearer {renewed['access_token']}"})
    assert me.json["role"] == "manager" and "task:update" in me.json["permissions"]


def test_logout_revokes_and_answers_204(client):
    register(client, "fay")
    pair = tokens(client, "fay")
    response = client.post("/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert response.status_code == 204
    assert refresh(client, pair["refresh_token"]).status_code == 401


def test_concurrent_registrations_of_one_name(client):
    def attempt(_: int) -> int:
        body = {"username": "gus", "password": "long enough"}
        return client.post("/auth/register", json=body).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(pool.map(attempt, range(4)))
    assert statuses == [201, 409, 409, 409]


def test_member_cannot_manage_users(client, admin):
    register(client, "hal")
    member = login(client, "hal", "long enough")
    assert client.get("/auth/users", headers=member).json == {"error": "Forbidden"}
    assert client.get("/auth/users", headers=admin).status_code == 200


def test_readiness_checks_the_database_and_redis(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["checks"] == {"database": "ok", "redis": "ok"}
