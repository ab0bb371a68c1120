"""Gateway settings, from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from shared.config import ConfigError, Env
from shared.settings import (
    CommonSettings,
    Ports,
    auth_service_url,
    read_settings,
    setting,
    upload_limit,
)


@dataclass(frozen=True)
class Settings:
    """Everything the gateway reads from its environment."""

    common: CommonSettings
    upstreams: dict[str, str]
    connect_timeout: float = setting("UPSTREAM_CONNECT_TIMEOUT", 2.0)
    read_timeout: float = setting("UPSTREAM_READ_TIMEOUT", 30.0)
    upload_timeout: float = setting("UPSTREAM_UPLOAD_TIMEOUT", 600.0)
    retries: int = setting("UPSTREAM_RETRIES", 2)
    rate_limit_default: str = setting("RATE_LIMIT_DEFAULT", "300/minute")
    rate_limit_login: str = setting("RATE_LIMIT_LOGIN", "10/minute")
    rate_limit_login_username: str = setting("RATE_LIMIT_LOGIN_USERNAME", "5/minute")
    rate_limit_enabled: bool = setting("RATE_LIMIT_ENABLED", True)
    max_body_bytes: int = setting("MAX_BODY_BYTES", 1024 * 1024)
    max_upload_bytes: int = upload_limit()
    cors_origins: tuple[str, ...] = setting("CORS_ORIGINS", ())
    trusted_proxies: int = setting("TRUSTED_PROXIES", 0)

    @classmethod
    def from_env(cls, env: Env) -> Settings:
        """Read the gateway's settings."""
        settings = read_settings(cls, env, common=CommonSettings.from_env(env),
                                 upstreams=upstreams(env))
        if settings.trusted_proxies < 0:
            raise ConfigError(
                f"TRUSTED_PROXIES must be 0 or more, not {settings.trusted_proxies}")
        return settings


def upstreams(env: Env) -> dict[str, str]:
    """Where each service answers: its `<SERVICE>_URL`, else this machine at its port."""
    ports = read_settings(Ports, env)
    return {
        "auth": auth_service_url(env).rstrip("/"),
        "tasks": (env.str("TASK_SERVICE_URL") or ports.local_url("tasks")).rstrip("/"),
        "logger": (env.str("LOGGER_SERVICE_URL") or ports.local_url("logger")).rstrip("/"),
        "webhooks": (env.str("WEBHOOKS_SERVICE_URL") or ports.local_url("webhooks")).rstrip("/"),
    }


def load_settings() -> Settings:
    """Load the environment and read the settings."""
    return Settings.from_env(Env.load())
