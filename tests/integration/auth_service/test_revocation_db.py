"""Taking power away on PostgreSQL and Redis: old tokens stop working, new logins work."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
from sqlalchemy import text

from testbed.polling import wait_for
from tests.integration.auth_service.conftest import login

INVALID = {"error": "Invalid or expired token"}


def make_admin(client, admin: dict[str, str], username: str) -> int:
    """Create another admin through the API; return its id."""
    response = client.post("/auth/users", headers=admin,
                           json={"username": username, "password": "long enough",
                                 "role": "admin"})
    assert response.status_code == 201, response.json
    return int(response.json["id"])


def me_status(client, headers: dict[str, str]) -> int:
    """Status of GET /auth/me with these headers."""
    return client.get("/auth/me", headers=headers).status_code


def test_a_disabled_admin_cannot_re_enable_themselves_or_create_an_admin(client, admin):
    ops_id = make_admin(client, admin, "ops")
    ops = login(client, "ops", "long enough")
    assert client.patch(f"/auth/users/{ops_id}", headers=admin,
                        json={"disabled": True}).status_code == 200
    again = client.patch(f"/auth/users/{ops_id}", headers=ops, json={"disabled": False})
    created = client.post("/auth/users", headers=ops,
                          json={"username": "mallory", "password": "long enough",
                                "role": "admin"})
    assert again.status_code == created.status_code == 401
    users = {u["username"]: u for u in client.get("/auth/users", headers=admin).json}
    assert users["ops"]["disabled"] is True and "mallory" not in users


def test_an_admin_disabled_in_the_database_is_refused_at_once(client, admin, engine):
    ops_id = make_admin(client, admin, "ops")
    ops = login(client, "ops", "long enough")
    with engine.begin() as connection:  # no revocation mark: the account itself is read
        connection.execute(text("UPDATE users SET disabled = true WHERE id = :id"),
                           {"id": ops_id})
    response = client.patch(f"/auth/users/{ops_id}", headers=ops, json={"disabled": False})
    assert response.status_code == 401 and response.json == INVALID


def test_a_demoted_admin_cannot_promote_themselves_back(client, admin, engine):
    ops_id = make_admin(client, admin, "ops")
    ops = login(client, "ops", "long enough")
    with engine.begin() as connection:
        connection.execute(text("UPDATE users SET role = 'member' WHERE id = :id"),
                           {"id": ops_id})
    response = client.patch(f"/auth/users/{ops_id}", headers=ops, json={"role": "admin"})
    assert response.status_code == 403 and response.json == {"error": "Forbidden"}


def test_refresh_of_a_disabled_users_token_is_refused(client, admin, engine):
    make_admin(client, admin, "ops")
    pair = client.post("/auth/login", json={"username": "ops", "password": "long enough"}).json
    with engine.begin() as connection:  # disabled without its refresh tokens being revoked
        connection.execute(text("UPDATE users SET disabled = true WHERE username = 'ops'"))
    response = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert response.status_code == 401
    assert response.json == {"error": "Invalid or expired refresh token"}


def test_after_logout_everywhere_old_tokens_fail_and_a_new_login_works(client, admin):
    make_admin(client, admin, "ops")
    pairs = [client.post("/auth/login", json={"username": "ops", "password": "long enough"}
                         ).json for _ in range(2)]
    old = [{"Authorization": f"Bearer {pair['access_token']}"} for pair in pairs]
    assert [me_status(client, headers) for headers in old] == [200, 200]
    assert client.post("/auth/logout", json={"refresh_token": pairs[1]["refresh_token"],
                                             "all": True}).status_code == 204
    wait_for(lambda: [me_status(client, headers) for headers in old] == [401, 401],
             timeout=5, what="both old access tokens to be refused")
    assert me_status(client, login(client, "ops", "long enough")) == 200


def test_a_role_change_revokes_the_old_token_and_the_refreshed_one_works(client, admin):
    user_id = make_admin(client, admin, "ops")
    pair = client.post("/auth/login", json={"username": "ops", "password": "long enough"}).json
    old = {"Authorization": f"Bearer {pair['access_token']}"}
    assert client.patch(f"/auth/users/{user_id}", headers=admin,
                        json={"role": "manager"}).status_code == 200
    wait_for(lambda: me_status(client, old) == 401, timeout=5, what="the old token refused")
    renewed = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}).json
    me = client.get("/auth/me", headers={"Authorization": f"Bearer {renewed['access_token']}"})
    assert me.status_code == 200 and me.json["role"] == "manager"


def waiting_for_a_row_lock(engine) -> bool:
    """True while a session of the test database waits for a lock."""
    with engine.connect() as connection:
        return bool(connection.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'")).scalar_one())


@pytest.mark.parametrize("issue", ["login", "refresh"])
def test_a_token_issued_while_a_change_is_in_flight_carries_the_new_state(client, admin,
                                                                         engine, issue):
    user_id = make_admin(client, admin, "ops")
    pair = client.post("/auth/login", json={"username": "ops", "password": "long enough"}).json
    request = (("/auth/login", {"username": "ops", "password": "long enough"})
               if issue == "login" else ("/auth/refresh", {"refresh_token": pair["refresh_token"]}))
    with ThreadPoolExecutor(1) as pool, engine.connect() as change:
        change.execute(text("SELECT 1 FROM users WHERE id = :id FOR NO KEY UPDATE"),
                       {"id": user_id})  # a role change holds the row, as update_user does
        issued = pool.submit(client.post, request[0], json=request[1])
        wait_for(lambda: waiting_for_a_row_lock(engine), timeout=10,
                 what=f"the {issue} to wait for the change")
        revoked_at = change.execute(text(
            "UPDATE users SET role = 'member', tokens_revoked_at = clock_timestamp() "
            "WHERE id = :id RETURNING tokens_revoked_at"), {"id": user_id}).scalar_one()
        change.commit()
        response = issued.result(timeout=30)
    assert response.status_code == 200, response.json
    claims = jwt.decode(response.json["access_token"], options={"verify_signature": False})
    assert claims["role"] == "member" and claims["iat"] > revoked_at.timestamp()
