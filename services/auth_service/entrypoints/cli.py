"""`taskstream create-admin` and `taskstream keys ...`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import click

from services.auth_service.adapters.keys import (
    expired_keys,
    prune_keys,
    read_key_dir,
    rotate_keys,
)
from services.auth_service.adapters.passwords import Argon2Passwords
from services.auth_service.api.schemas import credential_problems
from services.auth_service.config import access_token_ttl, key_directory, key_retention
from services.auth_service.entrypoints.first_admin import admin_username, auth_database
from services.auth_service.service_layer import accounts
from services.auth_service.service_layer.errors import UsernameTaken
from shared.config import ConfigError, Env
from shared.revocation import TokenRevoker, redis_revocations
from shared.settings import CommonSettings


@click.command("create-admin")
@click.option("--username", help="Default: ADMIN_USERNAME, else 'admin'.")
@click.option("--password", help="Prompted for (hidden) when omitted.")
@click.option("--force", is_flag=True,
              help="If the user exists, make it an active admin with this password.")
def create_admin(username: str | None, password: str | None, force: bool) -> None:
    """Create an admin user (or, with --force, reset an existing user to admin)."""
    env = Env.load()
    username = username or admin_username(env)
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    problems = credential_problems(username, password)
    if problems:
        raise click.UsageError("; ".join(f"{field}: {text}" for field, text in problems.items()))
    with auth_database(env) as uow:
        try:
            accounts.create_user(uow(), Argon2Passwords(), username, password, role="admin")
            click.echo(f"Created admin {username!r}.")
        except UsernameTaken:
            if not force:
                raise click.ClickException(
                    f"User {username!r} already exists (add --force to make it an admin "
                    "with this password)") from None
            accounts.make_admin(uow(), Argon2Passwords(), _revoker(env), username, password)
            click.echo(f"User {username!r} is now an active admin with the new password.")


def _revoker(env: Env) -> TokenRevoker:
    """Where the user's older access tokens are revoked at once. The mark is in the database
    whatever happens here (and the auth service republishes it): when Redis is not configured
    or cannot be reached, this only warns, for the command is the way back in."""
    try:
        return redis_revocations(CommonSettings.from_env(env))
    except ConfigError as exc:
        return DatabaseOnly(str(exc))


@dataclass(frozen=True)
class DatabaseOnly:
    """No Redis to write the mark to now: say so; the auth service republishes it."""

    reason: str

    def revoke(self, user_id: int, at: float) -> None:
        """Warn that the verifiers learn of the revocation only from the auth service."""
        click.echo(f"Warning: {self.reason}: the user's access tokens are refused once the "
                   "auth service republishes the revocation (within seconds of it running).",
                   err=True)


@click.group("keys")
def keys() -> None:
    """Signing keys of the auth service (key directory)."""


@keys.command("rotate")
def rotate() -> None:
    """Add a new signing key; prune old keys whose tokens have all expired."""
    env = Env.load()
    _refuse_env_keys(env)
    now = datetime.now(UTC)
    key, pruned = rotate_keys(key_directory(env), now, key_retention(access_token_ttl(env)))
    click.echo(f"New signing key {key.kid} in {key_directory(env)}.")
    for old in pruned:
        click.echo(f"Pruned expired key {old.kid}.")


@keys.command("prune")
def prune() -> None:
    """Remove retired keys whose tokens have all expired."""
    env = Env.load()
    _refuse_env_keys(env)
    pruned = prune_keys(key_directory(env), datetime.now(UTC),
                        key_retention(access_token_ttl(env)))
    click.echo(f"Pruned {len(pruned)} key(s): {', '.join(k.kid for k in pruned) or '-'}.")


@keys.command("list")
def list_keys() -> None:
    """Show the keys of the key directory, newest (the signer) last."""
    env = Env.load()
    directory = key_directory(env)
    found = read_key_dir(directory) if directory.is_dir() else []
    expired = {key.kid for key in expired_keys(found, datetime.now(UTC),
                                               key_retention(access_token_ttl(env)))}
    for position, key in enumerate(found, start=1):
        state = ("signing" if position == len(found)
                 else "expired (prunable)" if key.kid in expired else "retired, published")
        click.echo(f"{key.kid}  created {key.created_at:%Y-%m-%d %H:%M:%SZ}  {state}")
    if not found:
        click.echo(f"No keys in {directory}.")


def _refuse_env_keys(env: Env) -> None:
    if env.str("JWT_PRIVATE_KEYS"):
        raise click.ClickException(
            "Keys come from JWT_PRIVATE_KEYS: rotate them there (add the new key last, remove "
            "the old one once its tokens have expired).")


COMMANDS: list[click.Command] = [create_admin, keys]
