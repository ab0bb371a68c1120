"""The HTTP edge over fakes: exact bodies and status codes of CONTRACT.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.auth_service.entrypoints.app import create_app
from services.auth_service.service_layer import accounts
from tests.unit.auth_service.fakes import make_settings


@pytest.fixture
def admin_headers(client, uow, passwords) -> dict[str, str]:
    """A logged-in admin's Authorization header."""
    accounts.create_user(uow, passwords, "root", "root-password", role="admin")
    return bearer(client, "root", "root-password")


def bearer(client, username: str, password: str) -> dict[str, str]:
    """Log in and return the Authorization header."""
    response = client.post("/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['access_token']}"}


def test_register_then_login(client):
    created = client.post("/auth/register", json={"username": "fay", "password": "fay-secret"})
    assert created.status_code == 201
    assert created.json == {"id": 1, "username": "fay", "role": "member"}
    login = client.post("/auth/login", json={"username": "fay", "password": "fay-secret"})
    assert login.status_code == 200
    assert set(login.json) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert login.json["token_type"] == "Bearer" and login.json["expires_in"] == 900


def test_register_a_taken_username(client):
    client.post("/auth/register", json={"username": "fay", "password": "fay-secret"})
    again = client.post("/auth/register", json={"username": "Fay", "password": "fay-secret"})
    assert again.status_code == 409 and again.json == {"error": "Username already exists"}


def test_registration_closed(tmp_path: Path, uow, keys, passwords):
    app = create_app(make_settings(tmp_path, allow_registration=False), uow=uow, keys=keys,
                     passwords=passwords)
    response = app.test_client().post("/auth/register",
                                      json={"username": "fay", "password": "fay-secret"})
    assert response.status_code == 403 and response.json == {"error": "Registration is disabled"}


def test_register_validates(client):
    response = client.post("/auth/register", json={"username": "fay", "password": "short"})
    assert response.status_code == 422
    assert response.json["error"].startswith("Field 'password'")
    missing = client.post("/auth/register", json={"password": "long enough"})
    assert missing.json["error"] == "Field 'username' is required"


def test_wrong_login(client, uow, passwords):
    accounts.create_user(uow, passwords, "gus", "gus-secret")
    for body in ({"username": "gus", "password": "nope"},
                 {"username": "nobody", "password": "gus-secret"}):
        response = client.post("/auth/login", json=body)
        assert response.status_code == 401
        assert response.json == {"error": "Invalid username or password"}


def test_password_never_returned(client, admin_headers):
    created = client.post("/auth/users", headers=admin_headers,
                          json={"username": "hal", "password": "hal-secret", "role": "manager"})
    listed = client.get("/auth/users", headers=admin_headers)
    for text in (created.get_data(as_text=True), listed.get_data(as_text=True)):
        assert "hal-secret" not in text and "password" not in text and "argon2" not in text


def test_body_that_is_not_an_object(client):
    response = client.post("/auth/login", data="[]", content_type="application/json")
    assert response.status_code == 400
    assert response.json == {"error": "Request body must be a JSON object"}


def test_refresh_and_logout_over_http(client, uow, passwords):
    accounts.create_user(uow, passwords, "ivy", "ivy-secret")
    pair = client.post("/auth/login", json={"username": "ivy", "password": "ivy-secret"}).json
    renewed = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert renewed.status_code == 200 and renewed.json["refresh_token"] != pair["refresh_token"]
    reused = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert reused.status_code == 401
    assert reused.json == {"error": "Invalid or expired refresh token"}
    logout = client.post("/auth/logout", json={"refresh_token": renewed.json["refresh_token"]})
    assert logout.status_code == 204 and logout.data == b""


def test_member_cannot_manage_users(client, uow, passwords):
    accounts.create_user(uow, passwords, "jo", "jo-secret")
    headers = bearer(client, "jo", "jo-secret")
    calls = [client.get("/auth/users", headers=headers),
             client.post("/auth/users", headers=headers,
                         json={"username": "x1x", "password": "long enough", "role": "admin"}),
             client.patch("/auth/users/1", headers=headers, json={"role": "admin"})]
    for response in calls:
        assert response.status_code == 403 and response.json == {"error": "Forbidden"}
    assert uow.users.get(1).role == "member" and uow.users.count() == 1


def test_manager_cannot_manage_users_either(client, uow, passwords):
    accounts.create_user(uow, passwords, "kim", "kim-secret", role="manager")
    response = client.get("/auth/users", headers=bearer(client, "kim", "kim-secret"))
    assert response.status_code == 403


def test_users_need_authentication(client):
    assert client.get("/auth/users").json == {"error": "Authentication required"}


def test_admin_manages_users(client, admin_headers):
    created = client.post("/auth/users", headers=admin_headers,
                          json={"username": "lee", "password": "lee-secret", "role": "manager"})
    assert created.status_code == 201 and created.json["role"] == "manager"
    assert created.headers["Location"] == f"/auth/users/{created.json['id']}"
    patched = client.patch(f"/auth/users/{created.json['id']}", headers=admin_headers,
                           json={"disabled": True})
    assert patched.status_code == 200 and patched.json["disabled"] is True
    login = client.post("/auth/login", json={"username": "lee", "password": "lee-secret"})
    assert login.status_code == 401


def test_patch_unknown_user(client, admin_headers):
    response = client.patch("/auth/users/99", headers=admin_headers, json={"role": "member"})
    assert response.status_code == 404 and response.json == {"error": "User not found"}


def test_patch_validates(client, admin_headers):
    assert client.patch("/auth/users/1", headers=admin_headers, json={}).status_code == 422
    bad = client.patch("/auth/users/1", headers=admin_headers, json={"role": "owner"})
    assert bad.status_code == 422 and bad.json["error"].startswith("Field 'role'")


def test_last_admin_is_protected(client, admin_headers):
    response = client.patch("/auth/users/1", headers=admin_headers, json={"disabled": True})
    assert response.status_code == 409
    assert response.json == {"error": "Cannot remove the last active admin"}


def test_users_are_paginated(client, admin_headers, uow, passwords):
    for number in range(4):
        accounts.create_user(uow, passwords, f"user{number}", "long enough")
    response = client.get("/auth/users?page=2&per_page=2", headers=admin_headers)
    assert [u["username"] for u in response.json] == ["user1", "user2"]
    assert response.headers["X-Total-Count"] == "5"
    assert 'rel="next"' in response.headers["Link"] and 'rel="prev"' in response.headers["Link"]
    bad = client.get("/auth/users?per_page=500", headers=admin_headers)
    assert bad.status_code == 400  # worded as the read API words it (CONTRACT pagination)
    assert bad.json["error"] == "Invalid per_page, expected an integer from 1 to 100"
    huge = client.get("/auth/users?per_page=49&page=624984334448709120", headers=admin_headers)
    assert huge.status_code == 400
    assert huge.json["error"] == "Invalid page, expected an integer from 1 to 10000000"


def test_jwks_publishes_the_public_key_only(client, keys):
    document = client.get("/.well-known/jwks.json").json
    (jwk,) = document["keys"]
    assert jwk["kid"] == keys.current().signer.kid
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert "d" not in jwk


def test_openapi_documents_every_endpoint(client):
    spec = client.get("/openapi.json").json
    assert {"/auth/register", "/auth/login", "/auth/refresh", "/auth/logout", "/auth/me",
            "/auth/users", "/auth/users/{user_id}", "/.well-known/jwks.json"} <= set(spec["paths"])
    assert spec["paths"]["/auth/users"]["post"]["x-permission"] == "user:manage"
    for path in spec["paths"].values():
        for method, operation in path.items():
            if method != "parameters":
                assert operation.get("summary"), operation
