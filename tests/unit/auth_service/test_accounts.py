"""Account use cases over fakes: registration, roles, disabling, the last admin."""

from __future__ import annotations

import pytest

from services.auth_service.service_layer import accounts
from services.auth_service.service_layer.errors import (
    AccountUnavailable,
    LastAdmin,
    RegistrationClosed,
    UsernameTaken,
    UserNotFound,
)


def test_registration_makes_a_member(uow, passwords):
    user = accounts.register(uow, passwords, True, "bob", "long enough")
    assert (user.username, user.role, user.disabled) == ("bob", "member", False)


def test_registration_can_be_closed(uow, passwords):
    with pytest.raises(RegistrationClosed):
        accounts.register(uow, passwords, False, "bob", "long enough")
    assert uow.users.count() == 0


def test_usernames_are_unique_whatever_their_case(uow, passwords):
    accounts.register(uow, passwords, True, "bob", "long enough")
    with pytest.raises(UsernameTaken):
        accounts.register(uow, passwords, True, "BOB", "long enough")


def test_last_active_admin_cannot_be_disabled_or_demoted(uow, passwords, revocations):
    admin = accounts.create_user(uow, passwords, "root", "long enough", role="admin")
    with pytest.raises(LastAdmin):
        accounts.update_user(uow, revocations, admin.id, disabled=True)
    with pytest.raises(LastAdmin):
        accounts.update_user(uow, revocations, admin.id, role="member")
    assert uow.users.get(admin.id).role == "admin"


def test_an_admin_can_be_demoted_when_another_remains(uow, passwords, revocations):
    accounts.create_user(uow, passwords, "root", "long enough", role="admin")
    other = accounts.create_user(uow, passwords, "root2", "long enough", role="admin")
    assert accounts.update_user(uow, revocations, other.id, role="member").role == "member"


def test_updating_an_unknown_user_fails(uow, revocations):
    with pytest.raises(UserNotFound):
        accounts.update_user(uow, revocations, 42, role="member")


def test_profile_of_a_disabled_user_is_unavailable(uow, passwords, revocations):
    user = accounts.create_user(uow, passwords, "carol", "long enough")
    accounts.update_user(uow, revocations, user.id, disabled=True)
    with pytest.raises(AccountUnavailable):
        accounts.profile(uow, user.id)


def test_permissions_follow_the_role(uow, passwords):
    user = accounts.create_user(uow, passwords, "dave", "long enough", role="manager")
    assert "task:update" in user.permissions and "user:manage" not in user.permissions


def test_list_users_pages_by_id(uow, passwords):
    for name in ("u1", "u2", "u3"):
        accounts.create_user(uow, passwords, name, "long enough")
    page, total = accounts.list_users(uow, page=2, per_page=2)
    assert [u.username for u in page] == ["u3"] and total == 3
