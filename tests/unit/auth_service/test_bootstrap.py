"""First admin: from ADMIN_PASSWORD, or a generated password kept in a 0600 file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.auth_service.entrypoints.first_admin import bootstrap_admin
from services.auth_service.service_layer import accounts, sessions
from shared.config import ConfigError


def test_generated_password_goes_to_a_private_file(tmp_path: Path, uow, passwords, policy):
    note = bootstrap_admin(uow, passwords, "admin", "", tmp_path)
    path = tmp_path / "admin-password"
    assert note == f"created user 'admin' with the password in {path}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    password = path.read_text().strip()
    assert len(password) >= 24
    assert sessions.login(uow, passwords, policy, "admin", password).access_token
    assert uow.users.get(1).role == "admin"


def test_password_from_the_environment(tmp_path: Path, uow, passwords, policy):
    note = bootstrap_admin(uow, passwords, "boss", "boss-password", tmp_path)
    assert note == "created user 'boss' with the password from ADMIN_PASSWORD"
    assert not (tmp_path / "admin-password").exists()
    assert sessions.login(uow, passwords, policy, "boss", "boss-password").access_token


def test_existing_admin_is_left_alone(tmp_path: Path, uow, passwords):
    accounts.create_user(uow, passwords, "root", "root-password", role="admin")
    assert bootstrap_admin(uow, passwords, "admin", "", tmp_path) == (
        "an admin already exists (unchanged)")
    assert uow.users.count() == 1 and not (tmp_path / "admin-password").exists()


def test_a_member_named_like_the_admin_is_not_promoted(tmp_path: Path, uow, passwords):
    accounts.create_user(uow, passwords, "admin", "squatter-password")
    note = bootstrap_admin(uow, passwords, "admin", "", tmp_path)
    assert "create-admin" in note and uow.users.get(1).role == "member"


def test_without_generation_a_missing_password_is_refused(tmp_path: Path, uow, passwords):
    with pytest.raises(ConfigError, match="ADMIN_PASSWORD is not set"):
        bootstrap_admin(uow, passwords, "admin", "", tmp_path, generate=False)
    assert uow.users.count() == 0 and not (tmp_path / "admin-password").exists()
    accounts.create_user(uow, passwords, "root", "root-password", role="admin")
    assert bootstrap_admin(uow, passwords, "admin", "", tmp_path, generate=False) == (
        "an admin already exists (unchanged)")
