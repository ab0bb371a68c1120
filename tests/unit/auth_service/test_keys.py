"""Signing keys: generated in development, required in production, rotated and pruned."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.auth_service.adapters.keys import (
    DirectoryKeySource,
    generate_key,
    keys_from_json,
    private_pem,
    prune_keys,
    read_key_dir,
    rotate_keys,
)
from services.auth_service.config import Settings
from services.auth_service.entrypoints.app import create_app
from shared.config import GUNICORN_APP_LOAD_ERROR, ConfigError, Env
from tests.unit.auth_service.fakes import FakeUnitOfWork, make_settings, signing_key

RETENTION = timedelta(seconds=960)


def test_development_generates_a_private_key_on_first_start(tmp_path: Path):
    source = DirectoryKeySource(tmp_path / "keys", generate_if_empty=True)
    (path,) = (tmp_path / "keys").glob("*.pem")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert source.current().signer.kid == path.stem


def test_second_start_reuses_the_key(tmp_path: Path):
    first = DirectoryKeySource(tmp_path, generate_if_empty=True).current().signer.kid
    second = DirectoryKeySource(tmp_path, generate_if_empty=True).current().signer.kid
    assert first == second and len(list(tmp_path.glob("*.pem"))) == 1


def test_production_refuses_an_empty_key_directory(tmp_path: Path):
    with pytest.raises(ConfigError, match="No signing keys"):
        DirectoryKeySource(tmp_path / "keys", generate_if_empty=False)
    assert not list(tmp_path.rglob("*.pem"))


def test_production_config_refuses_to_start_without_keys(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("JWT_PRIVATE_KEYS", raising=False)
    monkeypatch.delenv("JWT_KEY_DIR", raising=False)
    monkeypatch.setenv("AUTH_DATABASE_URL", "postgresql+psycopg2://db.example/auth")
    monkeypatch.setenv("REDIS_URL", "redis://redis.example:6379/0")
    with pytest.raises(ConfigError, match="signing keys"):
        Settings.from_env(Env("production"))


def test_production_app_refuses_to_start_with_an_empty_key_dir(monkeypatch, tmp_path: Path,
                                                             capsys):
    monkeypatch.setenv("JWT_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("AUTH_DATABASE_URL", "postgresql+psycopg2://db.example/auth")
    monkeypatch.setenv("REDIS_URL", "redis://redis.example:6379/0")
    settings = Settings.from_env(Env("production"))
    assert settings.generate_keys is False and settings.allow_registration is False
    with pytest.raises(SystemExit) as stopped:  # the app factory is gunicorn's entry point
        create_app(settings, uow=FakeUnitOfWork())
    assert stopped.value.code == GUNICORN_APP_LOAD_ERROR
    assert capsys.readouterr().err.startswith("Configuration error: No signing keys")


def test_development_app_starts_with_generated_keys(tmp_path: Path):
    app = create_app(make_settings(tmp_path), uow=FakeUnitOfWork())
    (jwk,) = app.test_client().get("/.well-known/jwks.json").json["keys"]
    assert (tmp_path / "keys" / f"{jwk['kid']}.pem").is_file()


def test_keys_from_the_environment(tmp_path: Path):
    old, new = signing_key("old"), signing_key("new")
    document = json.dumps({"old": private_pem(old.private_key).decode(),
                           "new": private_pem(new.private_key).decode()})
    assert keys_from_json(document).signer.kid == "new"
    assert keys_from_json(document, signing_kid="old").signer.kid == "old"
    assert [k["kid"] for k in keys_from_json(document).jwks()["keys"]] == ["new", "old"]
    app = create_app(make_settings(tmp_path, private_keys_json=document), uow=FakeUnitOfWork())
    kids = {k["kid"] for k in app.test_client().get("/.well-known/jwks.json").json["keys"]}
    assert kids == {"old", "new"} and not (tmp_path / "keys").exists()


@pytest.mark.parametrize("document", ["not json", "{}", '{"k": "not a pem"}'])
def test_bad_environment_keys_are_refused(document: str):
    with pytest.raises(ConfigError):
        keys_from_json(document)


def test_rotation_adds_a_signer_and_keeps_the_old_key_published(tmp_path: Path):
    source = DirectoryKeySource(tmp_path, generate_if_empty=True)
    old = source.current().signer.kid
    new, pruned = rotate_keys(tmp_path, datetime.now(UTC), RETENTION)
    assert pruned == [] and new.kid != old
    assert source.current().signer.kid == new.kid
    assert {k["kid"] for k in source.current().jwks()["keys"]} == {old, new.kid}


def test_old_keys_are_pruned_once_their_tokens_have_expired(tmp_path: Path):
    start = datetime(2025, 1, 1, tzinfo=UTC)
    first = generate_key(tmp_path, start)
    second = generate_key(tmp_path, start + timedelta(hours=1))
    assert prune_keys(tmp_path, second.created_at + RETENTION - timedelta(seconds=1),
                      RETENTION) == []
    pruned = prune_keys(tmp_path, second.created_at + RETENTION, RETENTION)
    assert [k.kid for k in pruned] == [first.kid]
    assert [k.kid for k in read_key_dir(tmp_path)] == [second.kid]


def test_the_signer_is_never_pruned(tmp_path: Path):
    only = generate_key(tmp_path, datetime(2020, 1, 1, tzinfo=UTC))
    assert prune_keys(tmp_path, datetime.now(UTC), RETENTION) == []
    assert [k.kid for k in read_key_dir(tmp_path)] == [only.kid]


def test_generated_kids_sort_by_creation(tmp_path: Path):
    early = generate_key(tmp_path, datetime(2025, 1, 1, tzinfo=UTC))
    late = generate_key(tmp_path, datetime(2025, 6, 1, tzinfo=UTC))
    os.utime(tmp_path / f"{early.kid}.pem", (2e9, 2e9))  # mtime does not decide
    assert [k.kid for k in read_key_dir(tmp_path)] == [early.kid, late.kid]


def test_rotations_within_one_second_still_order(tmp_path: Path):
    now = datetime.now(UTC)
    kids = [rotate_keys(tmp_path, now, RETENTION)[0].kid for _ in range(3)]
    assert [k.kid for k in read_key_dir(tmp_path)] == kids
    assert DirectoryKeySource(tmp_path, generate_if_empty=False).current().signer.kid == kids[-1]
