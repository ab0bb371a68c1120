"""First admin, `taskstream create-admin`, `taskstream keys rotate`, and the schema."""

from __future__ import annotations

import stat
from pathlib import Path

import jwt
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import text

from services.auth_service.adapters.orm import metadata
from services.auth_service.entrypoints.app import create_app
from services.auth_service.entrypoints.first_admin import ensure_admin
from services.embedded import free_port
from services.entrypoints.cli import main
from shared.config import ConfigError, Env
from tests.unit.auth_service.fakes import make_settings


@pytest.fixture
def auth_env(monkeypatch, tmp_path: Path, auth_db: str) -> Path:
    """Point the environment at the test database and a private data folder."""
    monkeypatch.setenv("TASKSTREAM_ENV", "test")
    monkeypatch.setenv("TASKSTREAM_ENV_FILE", str(tmp_path / "no-such-env-file"))
    monkeypatch.setenv("AUTH_DATABASE_URL", auth_db)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    for key in ("ADMIN_USERNAME", "ADMIN_PASSWORD", "JWT_PRIVATE_KEYS", "JWT_KEY_DIR"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


def login_status(client, username: str, password: str) -> int:
    """Status of a login attempt."""
    return client.post("/auth/login", json={"username": username, "password": password}
                       ).status_code


def test_schema_matches_the_models(engine):
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []


def test_ensure_admin_generates_a_password_once(auth_env: Path, client):
    note = ensure_admin(Env.load())
    path = auth_env / "admin-password"
    assert note == f"created user 'admin' with the password in {path}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert login_status(client, "admin", path.read_text().strip()) == 200
    assert ensure_admin(Env.load()) == "an admin already exists (unchanged)"


def test_ensure_admin_uses_admin_password(auth_env: Path, monkeypatch, client):
    monkeypatch.setenv("ADMIN_USERNAME", "chief")
    monkeypatch.setenv("ADMIN_PASSWORD", "chief-password")
    assert ensure_admin(Env.load()) == (
        "created user 'chief' with the password from ADMIN_PASSWORD")
    assert login_status(client, "chief", "chief-password") == 200


def test_production_refuses_a_placeholder_admin_password(auth_env: Path, monkeypatch):
    monkeypatch.setenv("ADMIN_PASSWORD", "change-me")  # long enough for the account rules
    with pytest.raises(ConfigError, match="ADMIN_PASSWORD must be set to a real secret"):
        ensure_admin(Env("production"))


@pytest.mark.parametrize(("variable", "value"), [("ADMIN_PASSWORD", "short"),
                                                 ("ADMIN_USERNAME", "a b")])
@pytest.mark.parametrize("environment", ["dev", "production"])
def test_admin_settings_meet_the_rules_create_admin_applies(auth_env: Path, monkeypatch,
                                                             variable: str, value: str,
                                                             environment: str):
    monkeypatch.setenv("ADMIN_PASSWORD", "long-enough-pw")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"^{variable} does not meet the account rules"):
        ensure_admin(Env(environment))


def test_deployed_environments_need_admin_password_for_the_first_admin(auth_env: Path, client):
    with pytest.raises(ConfigError, match="ADMIN_PASSWORD is not set"):
        ensure_admin(Env("staging"))
    assert not (auth_env / "admin-password").exists()


def test_create_admin_command(auth_env: Path, client):
    runner = CliRunner()
    created = runner.invoke(main, ["create-admin", "--username", "ops", "--password",
                                   "ops-password"])
    assert created.exit_code == 0, created.output
    assert login_status(client, "ops", "ops-password") == 200
    again = runner.invoke(main, ["create-admin", "--username", "ops", "--password", "other-pw1"])
    assert again.exit_code == 1 and "already exists" in again.output
    forced = runner.invoke(main, ["create-admin", "--username", "ops", "--password",
                                  "other-pw1", "--force"])
    assert forced.exit_code == 0, forced.output
    assert login_status(client, "ops", "other-pw1") == 200


def test_forcing_an_admin_revokes_the_users_access_tokens(auth_env: Path, monkeypatch, client,
                                                         redis_url: str, namespace: str,
                                                         redis_client, engine):
    runner = CliRunner()
    runner.invoke(main, ["create-admin", "--username", "ops", "--password", "ops-password"])
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("REDIS_NAMESPACE", namespace)
    forced = runner.invoke(main, ["create-admin", "--username", "ops", "--password",
                                  "other-pw1", "--force"])
    assert forced.exit_code == 0, forced.output
    with engine.connect() as connection:
        recorded = connection.execute(text("SELECT tokens_revoked_at FROM users WHERE id = 1")
                                      ).scalar_one()
    assert redis_client.zscore(f"{namespace}:revoked-before", "1") == recorded.timestamp()


def test_forcing_an_admin_without_redis_still_works_and_warns(auth_env: Path, monkeypatch,
                                                              client):
    runner = CliRunner()
    runner.invoke(main, ["create-admin", "--username", "ops", "--password", "ops-password"])
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    forced = runner.invoke(main, ["create-admin", "--username", "ops", "--password",
                                  "other-pw1", "--force"])
    assert forced.exit_code == 0
    assert "could not write the revocation mark of user 1" in forced.output
    assert login_status(client, "ops", "other-pw1") == 200


def test_forcing_an_admin_without_redis_settings_says_the_service_will_revoke(
        auth_env: Path, monkeypatch, client):
    runner = CliRunner()
    runner.invoke(main, ["create-admin", "--username", "ops", "--password", "ops-password"])
    monkeypatch.delenv("REDIS_URL", raising=False)
    forced = runner.invoke(main, ["create-admin", "--username", "ops", "--password",
                                  "other-pw1", "--force"])
    assert forced.exit_code == 0, forced.output
    assert "Warning: REDIS_URL is not set: the user's access tokens are refused once the " \
           "auth service republishes" in forced.output
    assert login_status(client, "ops", "other-pw1") == 200


def test_create_admin_prompts_for_the_password(auth_env: Path, client):
    result = CliRunner().invoke(main, ["create-admin", "--username", "quiet"],
                                input="prompted-pw\nprompted-pw\n")
    assert result.exit_code == 0, result.output
    assert "prompted-pw" not in result.output
    assert login_status(client, "quiet", "prompted-pw") == 200


def test_create_admin_refuses_a_weak_password(auth_env: Path):
    result = CliRunner().invoke(main, ["create-admin", "--username", "weak", "--password", "x"])
    assert result.exit_code == 2 and "password" in result.output


def test_rotation_keeps_old_tokens_valid_and_signs_with_the_new_key(auth_env: Path, auth_db,
                                                                   passwords, common):
    app = create_app(make_settings(auth_env, auth_db, common=common), passwords=passwords)
    client = app.test_client()
    client.post("/auth/register", json={"username": "ann", "password": "long enough"})
    old = client.post("/auth/login", json={"username": "ann", "password": "long enough"}).json
    result = CliRunner().invoke(main, ["keys", "rotate"])
    assert result.exit_code == 0, result.output
    new = client.post("/auth/login", json={"username": "ann", "password": "long enough"}).json
    old_kid = jwt.get_unverified_header(old["access_token"])["kid"]
    new_kid = jwt.get_unverified_header(new["access_token"])["kid"]
    assert old_kid != new_kid and new_kid in result.output
    published = [k["kid"] for k in client.get("/.well-known/jwks.json").json["keys"]]
    assert published == [new_kid, old_kid]
    for pair in (old, new):
        headers = {"Authorization": f"Bearer {pair['access_token']}"}
        assert client.get("/auth/me", headers=headers).status_code == 200
    listing = CliRunner().invoke(main, ["keys", "list"])
    assert f"{new_kid}" in listing.output and "signing" in listing.output


def test_rotation_refuses_environment_keys(auth_env: Path, monkeypatch):
    monkeypatch.setenv("JWT_PRIVATE_KEYS", '{"k": "pem"}')
    result = CliRunner().invoke(main, ["keys", "rotate"])
    assert result.exit_code == 1 and "JWT_PRIVATE_KEYS" in result.output
