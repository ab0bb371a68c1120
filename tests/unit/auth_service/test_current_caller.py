"""User management judges the caller by their account as it is now, and taking power away
from a user revokes their access tokens."""

from __future__ import annotations

import pytest

from services.auth_service.service_layer import accounts
from tests.unit.auth_service.test_http import bearer

INVALID = {"error": "Invalid or expired token"}
FORBIDDEN = {"error": "Forbidden"}


@pytest.fixture
def ops(client, uow, passwords) -> tuple[int, dict[str, str]]:
    """A second admin (so that the first stays), logged in: (id, Authorization header)."""
    accounts.create_user(uow, passwords, "root", "root-password", role="admin")
    user = accounts.create_user(uow, passwords, "ops", "ops-password", role="admin")
    return user.id, bearer(client, "ops", "ops-password")


def management_calls(client, headers: dict[str, str], user_id: int) -> list:
    """Re-enable and re-promote oneself, create an admin, list users."""
    return [
        client.patch(f"/auth/users/{user_id}", headers=headers, json={"disabled": False}),
        client.patch(f"/auth/users/{user_id}", headers=headers, json={"role": "admin"}),
        client.post("/auth/users", headers=headers,
                    json={"username": "mallory", "password": "long enough", "role": "admin"}),
        client.get("/auth/users", headers=headers),
    ]


def test_a_disabled_admin_with_an_old_token_manages_nothing(client, uow, ops):
    user_id, headers = ops
    uow.users.get(user_id).disabled = True  # directly: no revocation mark helps here
    for response in management_calls(client, headers, user_id):
        assert response.status_code == 401 and response.json == INVALID
    assert uow.users.get(user_id).disabled is True
    assert uow.users.by_username("mallory") is None


def test_a_demoted_admin_with_an_old_token_manages_nothing(client, uow, ops):
    user_id, headers = ops
    uow.users.get(user_id).role = "member"
    for response in management_calls(client, headers, user_id):
        assert response.status_code == 403 and response.json == FORBIDDEN
    assert uow.users.get(user_id).role == "member"
    assert uow.users.by_username("mallory") is None


def test_a_deleted_caller_is_refused(client, uow, ops):
    user_id, headers = ops
    del uow.users.rows[user_id]
    response = client.get("/auth/users", headers=headers)
    assert response.status_code == 401 and response.json == INVALID


def test_disabling_and_role_changes_mark_the_user_revoked(client, uow, passwords, ops,
                                                        revocations):
    _, headers = ops
    target = accounts.create_user(uow, passwords, "tess", "long enough")
    client.patch(f"/auth/users/{target.id}", headers=headers, json={"role": "manager"})
    first = revocations.marks[target.id]
    client.patch(f"/auth/users/{target.id}", headers=headers, json={"disabled": True})
    assert revocations.marks[target.id] > first
    second = revocations.marks[target.id]
    client.patch(f"/auth/users/{target.id}", headers=headers, json={"disabled": False})
    assert revocations.marks[target.id] == second  # enabling takes nothing away
    assert uow.users.get(target.id).tokens_revoked_at.timestamp() == second  # the record


def test_logout_everywhere_ends_every_session_and_marks_the_user(client, uow, passwords,
                                                                revocations):
    user = accounts.create_user(uow, passwords, "una", "una-secret")
    pairs = [client.post("/auth/login", json={"username": "una", "password": "una-secret"}).json
             for _ in range(2)]
    response = client.post("/auth/logout",
                           json={"refresh_token": pairs[0]["refresh_token"], "all": True})
    assert response.status_code == 204
    assert user.id in revocations.marks
    for pair in pairs:
        assert client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}
                           ).status_code == 401


def test_a_plain_logout_ends_one_session_and_marks_nothing(client, uow, passwords,
                                                          revocations):
    accounts.create_user(uow, passwords, "val", "val-secret")
    pairs = [client.post("/auth/login", json={"username": "val", "password": "val-secret"}).json
             for _ in range(2)]
    client.post("/auth/logout", json={"refresh_token": pairs[0]["refresh_token"], "all": False})
    assert revocations.marks == {}
    assert client.post("/auth/refresh", json={"refresh_token": pairs[1]["refresh_token"]}
                       ).status_code == 200


def test_logout_everywhere_with_an_unknown_token_is_quiet(client, revocations):
    response = client.post("/auth/logout", json={"refresh_token": "nope", "all": True})
    assert response.status_code == 204 and revocations.marks == {}


def test_logout_all_must_be_a_boolean(client):
    response = client.post("/auth/logout", json={"refresh_token": "x", "all": "everything"})
    assert response.status_code == 422 and response.json["error"].startswith("Field 'all'")


def test_a_change_whose_mark_cannot_be_written_now_succeeds_with_the_mark_recorded(
        client, uow, passwords, ops, revocations):
    _, headers = ops
    user = accounts.create_user(uow, passwords, "wes", "wes-secret")
    pair = client.post("/auth/login", json={"username": "wes", "password": "wes-secret"}).json
    revocations.unwritable = True
    patched = client.patch(f"/auth/users/{user.id}", headers=headers, json={"role": "manager"})
    assert patched.status_code == 200 and patched.json["role"] == "manager"
    first = uow.users.get(user.id).tokens_revoked_at
    logout = client.post("/auth/logout", json={"refresh_token": pair["refresh_token"],
                                               "all": True})
    assert logout.status_code == 204
    assert revocations.marks == {}
    assert uow.users.get(user.id).tokens_revoked_at > first  # for the republisher to copy
