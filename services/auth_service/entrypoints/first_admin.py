"""First start: make sure an admin exists (`ADMIN_USERNAME` / `ADMIN_PASSWORD`)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.orm import sessionmaker

from services.auth_service.adapters.passwords import Argon2Passwords
from services.auth_service.api.schemas import credential_problems
from services.auth_service.service_layer import accounts
from services.auth_service.service_layer.errors import UsernameTaken
from services.auth_service.service_layer.unit_of_work import SqlAlchemyUnitOfWork, UnitOfWork
from shared.config import ConfigError, Env, data_dir_path
from shared.db import create_db_engine
from shared.settings import CommonSettings, read_setting

PASSWORD_FILE = "admin-password"
DEFAULT_ADMIN = "admin"


@contextmanager
def auth_database(env: Env) -> Iterator[Callable[[], UnitOfWork]]:
    """A unit-of-work factory over the auth database, for one command."""
    engine = create_db_engine(
        env.database_url("auth"), pool_size=1, max_overflow=0,
        attempts=read_setting(env, CommonSettings, "db_connect_attempts"),
        backoff=read_setting(env, CommonSettings, "db_connect_backoff"))
    session_factory = sessionmaker(engine, expire_on_commit=False)
    try:
        yield lambda: SqlAlchemyUnitOfWork(session_factory)
    finally:
        engine.dispose()


def ensure_admin(env: Env) -> str:
    """Create the first admin unless an active one exists; return how, in one sentence."""
    username, password = admin_credentials(env)
    with auth_database(env) as uow:
        return bootstrap_admin(uow, Argon2Passwords(), username, password, data_dir_path(),
                               generate=not env.deployed)


def admin_credentials(env: Env) -> tuple[str, str]:
    """`ADMIN_USERNAME` and `ADMIN_PASSWORD`, held to the rules `create-admin` applies."""
    username = admin_username(env)
    password = env.str("ADMIN_PASSWORD")
    if password and env.deployed:
        env.secret("ADMIN_PASSWORD")  # refuses a placeholder
    names = {"username": "ADMIN_USERNAME", "password": "ADMIN_PASSWORD"}
    for field, problem in credential_problems(username, password or None).items():
        raise ConfigError(f"{names[field]} does not meet the account rules: {problem}")
    return username, password


def admin_username(env: Env) -> str:
    """The first admin's username (`ADMIN_USERNAME`, else `admin`)."""
    return env.str("ADMIN_USERNAME") or DEFAULT_ADMIN


def bootstrap_admin(uow: Callable[[], UnitOfWork], passwords: Argon2Passwords, username: str,
                    password: str, directory: Path, *, generate: bool = True) -> str:
    """Create the admin, generating a password into `directory` when none is given."""
    if accounts.admin_exists(uow()):
        return "an admin already exists (unchanged)"
    if not password and not generate:
        raise ConfigError("ADMIN_PASSWORD is not set: staging and production create the "
                          "first admin only with a password given to them")
    chosen = password or secrets.token_urlsafe(24)
    try:
        accounts.create_user(uow(), passwords, username, chosen, role="admin")
    except UsernameTaken:
        return (f"no admin exists and user {username!r} is not one; run "
                f"`taskstream create-admin --username {username} --force`")
    if password:
        return f"created user {username!r} with the password from ADMIN_PASSWORD"
    path = write_private_file(directory / PASSWORD_FILE, chosen + "\n")
    return f"created user {username!r} with the password in {path}"


def write_private_file(path: Path, content: str) -> Path:
    """Write a file only its owner can read (mode 0600), replacing any older one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(content)
    return path
