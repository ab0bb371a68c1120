"""Configuration: env files, typed reads, per-service databases, production secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import (
    ConfigError,
    Env,
    current_environment,
    load_env_file,
    normalise_database_url,
    service_database_url,
)


def test_environment_names_and_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKSTREAM_ENV", "Production")
    assert current_environment() == "production"
    monkeypatch.setenv("TASKSTREAM_ENV", "development")
    assert current_environment() == "dev"
    monkeypatch.setenv("TASKSTREAM_ENV", "qa")
    with pytest.raises(ConfigError, match="TASKSTREAM_ENV must be one of"):
        current_environment()


def test_env_file_fills_gaps_but_real_variables_win(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    (tmp_path / ".env.staging").write_text("LOG_LEVEL=DEBUG\nREDIS_NAMESPACE=from-file\n")
    monkeypatch.setenv("REDIS_NAMESPACE", "from-env")
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    monkeypatch.delenv("TASKSTREAM_ENV_FILE", raising=False)
    assert load_env_file("staging", tmp_path) == tmp_path / ".env.staging"
    env = Env("staging")
    assert env.str("LOG_LEVEL") == "DEBUG"
    assert env.str("REDIS_NAMESPACE") == "from-env"


def test_typed_reads_give_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    env = Env("test")
    monkeypatch.setenv("DB_POOL_SIZE", "ten")
    with pytest.raises(ConfigError, match="DB_POOL_SIZE must be an integer, not 'ten'"):
        env.int("DB_POOL_SIZE", 5)
    monkeypatch.setenv("RATE_LIMIT_ENABLED", "maybe")
    with pytest.raises(ConfigError, match="must be true or false"):
        env.bool("RATE_LIMIT_ENABLED", True)
    monkeypatch.setenv("CORS_ORIGINS", " a, ,b ")
    assert env.list("CORS_ORIGINS") == ("a", "b")


def test_a_time_zone_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    env = Env("test")
    monkeypatch.delenv("TRANSFER_TIMEZONE", raising=False)
    assert env.timezone("TRANSFER_TIMEZONE") == "UTC"
    monkeypatch.setenv("TRANSFER_TIMEZONE", "America/Los_Angeles")
    assert env.timezone("TRANSFER_TIMEZONE") == "America/Los_Angeles"
    for wrong in ("Mars/Olympus", "../etc/passwd"):
        monkeypatch.setenv("TRANSFER_TIMEZONE", wrong)
        with pytest.raises(ConfigError, match=f"TRANSFER_TIMEZONE must be a time zone .*{wrong}"):
            env.timezone("TRANSFER_TIMEZONE")


def test_each_service_gets_its_own_database(monkeypatch: pytest.MonkeyPatch) -> None:
    env = Env("test")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://u:p%40ss@db:5432/taskstream")
    monkeypatch.delenv("TASKS_DATABASE_URL", raising=False)
    assert env.database_url("tasks") == "postgresql+psycopg2://u:p%40ss@db:5432/taskstream_tasks"
    monkeypatch.setenv("TASKS_DATABASE_URL", "postgresql+psycopg2://elsewhere/t")
    assert env.database_url("tasks") == "postgresql+psycopg2://elsewhere/t"


def test_missing_database_url_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("AUTH_DATABASE_URL", raising=False)
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        Env("test").database_url("auth")


@pytest.mark.parametrize("value", ["", "change-me", "password"])
def test_production_refuses_missing_or_placeholder_secrets(monkeypatch: pytest.MonkeyPatch,
                                                          value: str) -> None:
    monkeypatch.setenv("ADMIN_PASSWORD", value)
    with pytest.raises(ConfigError, match="ADMIN_PASSWORD must be set to a real secret"):
        Env("production").secret("ADMIN_PASSWORD")
    assert Env("dev").secret("ADMIN_PASSWORD", "dev-default") in {value, "dev-default"}


@pytest.mark.parametrize("pasted", ["postgresql://u:p%40ss@db:5432/base",
                                    "postgres://u:p%40ss@db:5432/base",
                                    "postgresql+psycopg2://u:p%40ss@db:5432/base"])
def test_a_pasted_postgresql_url_uses_the_driver_we_ship(monkeypatch: pytest.MonkeyPatch,
                                                         pasted: str) -> None:
    shipped = "postgresql+psycopg2://u:p%40ss@db:5432/base"
    assert normalise_database_url(pasted) == shipped
    assert service_database_url(pasted, "logger") == shipped + "_logger"
    monkeypatch.setenv("DATABASE_URL", pasted)
    monkeypatch.setenv("AUTH_DATABASE_URL", pasted)
    monkeypatch.delenv("TASKS_DATABASE_URL", raising=False)
    assert Env("test").database_url("tasks") == shipped + "_tasks"
    assert Env("test").database_url("auth") == shipped


def test_another_driver_is_left_alone() -> None:
    url = "postgresql+psycopg://u@db/base"
    assert normalise_database_url(url) == url


def test_an_unparsable_database_url_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGGER_DATABASE_URL", "db.internal:5432")
    with pytest.raises(ConfigError, match=r"^LOGGER_DATABASE_URL is not a database URL"):
        Env("test").database_url("logger")


WEAK_URLS = [
    ("DATABASE_URL", "postgresql://taskstream:change-me@db.internal/taskstream", "tasks"),
    ("DATABASE_URL", "postgresql://taskstream:@db.internal/taskstream", "auth"),
    ("TASKS_DATABASE_URL", "postgresql://taskstream:Secret@db.internal/t", "tasks"),
    ("REDIS_URL", "redis://:change-me@redis.internal:6379/0", None),
    ("REDIS_URL", "redis://default:@redis.internal:6379/0", None),
    ("REDIS_URL", "redis://redis.internal:6379/0?password=changeme", None),
]


@pytest.mark.parametrize(("key", "url", "service"), WEAK_URLS)
@pytest.mark.parametrize("environment", ["staging", "production"])
def test_deployed_environments_refuse_placeholder_passwords_in_urls(
        monkeypatch: pytest.MonkeyPatch, key: str, url: str, service: str | None,
        environment: str) -> None:
    for name in ("DATABASE_URL", "TASKS_DATABASE_URL", "AUTH_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(key, url)
    env = Env(environment)
    with pytest.raises(ConfigError, match=rf"^{key} has an empty or placeholder password"):
        env.database_url(service) if service else env.redis_url()
    dev = Env("dev")
    assert dev.database_url(service) if service else dev.redis_url()


@pytest.mark.parametrize("url", ["postgresql://taskstream:s3cr3t-Pa55@db.internal/taskstream",
                                 "postgresql://taskstream@db.internal/taskstream"])
def test_deployed_environments_accept_real_or_no_passwords(monkeypatch: pytest.MonkeyPatch,
                                                           url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("AUTH_DATABASE_URL", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://redis.internal:6379/0")
    env = Env("production")
    assert env.database_url("auth").endswith("/taskstream_auth")
    assert env.redis_url() == "redis://redis.internal:6379/0"


def test_a_secret_can_come_from_the_file_its_FILE_variable_names(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "redis_url"
    secret.write_text("redis://:s3cret-from-file@redis:6379/0\n")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("REDIS_URL_FILE", str(secret))
    assert Env("production").redis_url() == "redis://:s3cret-from-file@redis:6379/0"
    monkeypatch.setenv("REDIS_URL", "redis://:other@redis:6379/0")
    with pytest.raises(ConfigError, match="REDIS_URL and REDIS_URL_FILE are both set"):
        Env("production").redis_url()
    monkeypatch.delenv("REDIS_URL")
    monkeypatch.setenv("REDIS_URL_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"REDIS_URL_FILE: cannot read .*missing"):
        Env("production").redis_url()


def test_a_secret_from_a_file_is_held_to_the_same_rules(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    secret = tmp_path / "admin_password"
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    monkeypatch.setenv("ADMIN_PASSWORD_FILE", str(secret))
    secret.write_text("correct horse battery\n")
    assert Env("production").secret("ADMIN_PASSWORD") == "correct horse battery"
    secret.write_text("change-me\n")
    with pytest.raises(ConfigError, match="ADMIN_PASSWORD must be set to a real secret"):
        Env("production").secret("ADMIN_PASSWORD")


def test_only_secrets_are_read_from_files(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    (tmp_path / "level").write_text("DEBUG\n")
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    monkeypatch.setenv("LOG_LEVEL_FILE", str(tmp_path / "level"))
    assert Env("production").str("LOG_LEVEL") == "INFO"
