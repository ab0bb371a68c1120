"""Login, refresh rotation with reuse detection, logout: the use cases over fakes."""

from __future__ import annotations

import pytest

from services.auth_service.adapters.passwords import Argon2Passwords
from services.auth_service.service_layer import accounts, sessions
from services.auth_service.service_layer.errors import InvalidCredentials, InvalidRefreshToken
from services.auth_service.service_layer.sessions import TokenPolicy
from tests.unit.auth_service.fakes import FakeUnitOfWork


@pytest.fixture
def alice(uow: FakeUnitOfWork, passwords: Argon2Passwords) -> accounts.UserView:
    """A member with a known password."""
    return accounts.create_user(uow, passwords, "alice", "correct horse", role="member")


def test_login_returns_a_bearer_pair(uow, passwords, policy, alice):
    pair = sessions.login(uow, passwords, policy, "alice", "correct horse")
    assert pair.token_type == "Bearer"
    assert pair.expires_in == 900
    assert pair.refresh_token and pair.access_token.count(".") == 2


def test_login_ignores_username_case(uow, passwords, policy, alice):
    assert sessions.login(uow, passwords, policy, "ALICE", "correct horse").access_token


def test_password_is_stored_hashed(uow, alice):
    stored = uow.users.get(alice.id).password_hash
    assert "correct horse" not in stored and stored.startswith("$argon2id$")


def test_only_the_refresh_token_hash_is_stored(uow, passwords, policy, alice):
    pair = sessions.login(uow, passwords, policy, "alice", "correct horse")
    assert all(row.token_hash != pair.refresh_token for row in uow.refresh_tokens.rows)


@pytest.mark.parametrize(("username", "password"), [("alice", "wrong"), ("nobody", "x")])
def test_wrong_credentials_are_refused(uow, passwords, policy, alice, username, password):
    with pytest.raises(InvalidCredentials):
        sessions.login(uow, passwords, policy, username, password)


def test_disabled_user_cannot_log_in(uow, passwords, policy, alice):
    uow.users.get(alice.id).disabled = True
    with pytest.raises(InvalidCredentials):
        sessions.login(uow, passwords, policy, "alice", "correct horse")


def test_refresh_rotates(uow, passwords, policy: TokenPolicy, alice):
    first = sessions.login(uow, passwords, policy, "alice", "correct horse")
    second = sessions.refresh(uow, policy, first.refresh_token)
    third = sessions.refresh(uow, policy, second.refresh_token)
    assert len({first.refresh_token, second.refresh_token, third.refresh_token}) == 3


def test_reused_refresh_token_revokes_its_whole_family(uow, passwords, policy, alice):
    first = sessions.login(uow, passwords, policy, "alice", "correct horse")
    second = sessions.refresh(uow, policy, first.refresh_token)
    with pytest.raises(InvalidRefreshToken):
        sessions.refresh(uow, policy, first.refresh_token)
    with pytest.raises(InvalidRefreshToken):
        sessions.refresh(uow, policy, second.refresh_token)


def test_reuse_leaves_other_sessions_alone(uow, passwords, policy, alice):
    stolen = sessions.login(uow, passwords, policy, "alice", "correct horse")
    other = sessions.login(uow, passwords, policy, "alice", "correct horse")
    sessions.refresh(uow, policy, stolen.refresh_token)
    with pytest.raises(InvalidRefreshToken):
        sessions.refresh(uow, policy, stolen.refresh_token)
    assert sessions.refresh(uow, policy, other.refresh_token).access_token


def test_unknown_refresh_token_is_refused(uow, policy):
    with pytest.raises(InvalidRefreshToken):
        sessions.refresh(uow, policy, "not-a-token")


def test_expired_refresh_token_is_refused(uow, passwords, policy, alice):
    pair = sessions.login(uow, passwords, policy, "alice", "correct horse")
    row = uow.refresh_tokens.rows[-1]
    row.expires_at = row.issued_at
    with pytest.raises(InvalidRefreshToken):
        sessions.refresh(uow, policy, pair.refresh_token)


def test_disabling_a_user_kills_their_refresh_tokens_at_once(uow, passwords, policy, alice,
                                                            revocations):
    pair = sessions.login(uow, passwords, policy, "alice", "correct horse")
    accounts.update_user(uow, revocations, alice.id, disabled=True)
    uow.users.get(alice.id).disabled = False  # even re-enabled, the old sessions stay dead
    with pytest.raises(InvalidRefreshToken):
        sessions.refresh(uow, policy, pair.refresh_token)


def test_refresh_of_a_disabled_user_fails(uow, passwords, policy, alice):
    pair = sessions.login(uow, passwords, policy, "alice", "correct horse")
    uow.users.get(alice.id).disabled = True
    with pytest.raises(InvalidRefreshToken):
        sessions.refresh(uow, policy, pair.refresh_token)


def test_refresh_carries_the_current_role(uow, passwords, policy, alice, revocations):
    pair = sessions.login(uow, passwords, policy, "alice", "correct horse")
    accounts.update_user(uow, revocations, alice.id, role="manager")
    renewed = sessions.refresh(uow, policy, pair.refresh_token)
    claims = _claims(renewed.access_token)
    assert claims["role"] == "manager"


def test_logout_ends_the_session(uow, passwords, policy, alice):
    pair = sessions.login(uow, passwords, policy, "alice", "correct horse")
    sessions.logout(uow, policy, pair.refresh_token)
    with pytest.raises(InvalidRefreshToken):
        sessions.refresh(uow, policy, pair.refresh_token)


def test_logout_of_an_unknown_token_is_quiet(uow, policy):
    sessions.logout(uow, policy, "never-issued")
    assert uow.commits == 0


def _claims(token: str) -> dict:
    import jwt

    return jwt.decode(token, options={"verify_signature": False})
