"""Taking power away from an account works at once at every entry point of a running system."""

from __future__ import annotations

import uuid

import redis

from shared.revocation import KEY_SUFFIX
from testbed.polling import wait_for
from testbed.stack import Stack

PASSWORD = "long enough"
INVALID = {"error": "Invalid or expired token"}


def bearer(access_token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {access_token}"}


def log_in(stack: Stack, username: str, password: str = PASSWORD) -> dict:
    """Log in at the auth service itself (out of the gateway's login limit); the token pair."""
    response = stack.session.post(f"{stack.url('auth')}/auth/login",
                                  json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return dict(response.json())


def root(stack: Stack) -> dict[str, str]:
    """The stack's admin."""
    return bearer(log_in(stack, "admin", stack.env["ADMIN_PASSWORD"])["access_token"])


def new_user(stack: Stack, role: str) -> tuple[int, str]:
    """Create a user through the gateway; (id, username)."""
    username = f"e2e-{role}-{uuid.uuid4().hex[:8]}"
    response = stack.session.post(f"{stack.base_url}/auth/users", headers=root(stack),
                                  json={"username": username, "password": PASSWORD,
                                        "role": role})
    assert response.status_code == 201, response.text
    return int(response.json()["id"]), username


def statuses(stack: Stack, headers: dict[str, str]) -> list[int]:
    """What the gateway and each service (asked directly) answer this token."""
    return [
        stack.session.get(f"{stack.base_url}/tasks", headers=headers).status_code,
        stack.session.get(f"{stack.url('auth')}/auth/me", headers=headers).status_code,
        stack.session.get(f"{stack.url('logger')}/tasks", headers=headers).status_code,
        stack.session.put(f"{stack.url('tasks')}/task/999999999", headers=headers,
                          json={"title": "probe"}).status_code,
    ]


def refused_everywhere(stack: Stack, *tokens: dict[str, str]) -> bool:
    """True once every entry point answers 401 to every token."""
    return all(status == 401 for headers in tokens for status in statuses(stack, headers))


def accepted_everywhere(stack: Stack, headers: dict[str, str]) -> bool:
    """True if no entry point answers 401."""
    return 401 not in statuses(stack, headers)


def patch_user(stack: Stack, base: str, headers: dict[str, str], user_id: int,
               change: dict) -> int:
    """PATCH /auth/users/<id> at `base`; the status."""
    return stack.session.patch(f"{base}/auth/users/{user_id}", headers=headers,
                               json=change).status_code


def create_admin(stack: Stack, base: str, headers: dict[str, str]) -> int:
    """POST /auth/users for a new admin at `base`; the status."""
    return stack.session.post(f"{base}/auth/users", headers=headers, json={
        "username": f"e2e-mallory-{uuid.uuid4().hex[:8]}", "password": PASSWORD,
        "role": "admin"}).status_code


def current(stack: Stack, user_id: int) -> dict:
    """The user as the auth service stores it now."""
    users = stack.session.get(f"{stack.base_url}/auth/users", headers=root(stack),
                              params={"per_page": 100}).json()
    return next(user for user in users if user["id"] == user_id)


def test_a_disabled_admin_loses_every_entry_point_within_seconds(stack: Stack) -> None:
    user_id, username = new_user(stack, "admin")
    old = bearer(log_in(stack, username)["access_token"])
    assert accepted_everywhere(stack, old)
    assert patch_user(stack, stack.base_url, root(stack), user_id, {"disabled": True}) == 200
    wait_for(lambda: refused_everywhere(stack, old), timeout=5,
             what="the disabled admin's token to be refused everywhere")
    for base in (stack.base_url, stack.url("auth")):
        assert patch_user(stack, base, old, user_id, {"disabled": False}) == 401
        assert create_admin(stack, base, old) == 401
    assert current(stack, user_id)["disabled"] is True


def test_a_demoted_admin_cannot_promote_themselves_and_a_new_login_works(stack: Stack) -> None:
    user_id, username = new_user(stack, "admin")
    old = bearer(log_in(stack, username)["access_token"])
    assert patch_user(stack, stack.base_url, root(stack), user_id, {"role": "member"}) == 200
    wait_for(lambda: refused_everywhere(stack, old), timeout=5,
             what="the demoted admin's old token to be refused everywhere")
    for base in (stack.base_url, stack.url("auth")):
        assert patch_user(stack, base, old, user_id, {"role": "admin"}) == 401
        assert create_admin(stack, base, old) == 401
    renewed = bearer(log_in(stack, username)["access_token"])
    assert accepted_everywhere(stack, renewed)
    assert patch_user(stack, stack.base_url, renewed, user_id, {"role": "admin"}) == 403
    assert create_admin(stack, stack.base_url, renewed) == 403
    assert current(stack, user_id)["role"] == "member"


def test_logging_out_everywhere_ends_every_session_within_seconds(stack: Stack) -> None:
    _, username = new_user(stack, "member")
    pairs = [log_in(stack, username) for _ in range(2)]
    old = [bearer(pair["access_token"]) for pair in pairs]
    response = stack.session.post(f"{stack.base_url}/auth/logout",
                                  json={"refresh_token": pairs[0]["refresh_token"],
                                        "all": True})
    assert response.status_code == 204
    wait_for(lambda: refused_everywhere(stack, *old), timeout=5,
             what="both sessions' access tokens to be refused everywhere")
    refreshed = stack.session.post(f"{stack.base_url}/auth/refresh",
                                   json={"refresh_token": pairs[1]["refresh_token"]})
    assert refreshed.status_code == 401
    assert accepted_everywhere(stack, bearer(log_in(stack, username)["access_token"]))


def test_a_revocation_that_redis_lost_is_back_within_seconds(stack: Stack) -> None:
    user_id, username = new_user(stack, "member")
    old = bearer(log_in(stack, username)["access_token"])
    assert patch_user(stack, stack.base_url, root(stack), user_id, {"disabled": True}) == 200
    wait_for(lambda: refused_everywhere(stack, old), timeout=5,
             what="the disabled user's token to be refused everywhere")
    marks = redis.Redis.from_url(stack.env["REDIS_URL"])
    key = f"{stack.env['REDIS_NAMESPACE']}:{KEY_SUFFIX}"
    marks.delete(key)  # as a restart without persistence or a FLUSHALL would
    wait_for(lambda: marks.zscore(key, str(user_id)) is not None
             and stack.session.get(f"{stack.base_url}/tasks", headers=old).status_code == 401,
             timeout=5, what="the mark to be back and the token refused at the gateway")
    marks.close()
