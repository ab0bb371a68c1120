"""Gateway settings, from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from shared.config import CommonSettings, ConfigError, Env


@dataclass(frozen=True)
class Settings:
    """Everything the gateway reads from its environment."""

    common: CommonSettings
    upstreams: dict[str, str]
    connect_timeout: float
    read_timeout: float
    upload_timeout: float
    retries: int
    rate_limit_default: str
    rate_limit_login: str
    rate_limit_login_username: str
    rate_limit_enabled: bool
    max_body_bytes: int
    max_upload_bytes: int
    cors_origins: tuple[str, ...]
    trusted_proxies: int = 0

    @classmethod
    def from_env(cls, env: Env) -> Settings:
        """Read the gateway's settings."""
        return cls(
            common=CommonSettings.from_env(env),
            upstreams={
                "auth": _upstream(env, "AUTH_SERVICE_URL", "AUTH_PORT", 5001),
                "tasks": _upstream(env, "TASK_SERVICE_URL", "TASKS_PORT", 5002),
                "logger": _upstream(env, "LOGGER_SERVICE_URL", "LOGGER_PORT", 5003),
            },
            connect_timeout=env.float("UPSTREAM_CONNECT_TIMEOUT", 2.0),
            read_timeout=env.float("UPSTREAM_READ_TIMEOUT", 30.0),
            upload_timeout=env.float("UPSTREAM_UPLOAD_TIMEOUT", 600.0),
            retries=env.int("UPSTREAM_RETRIES", 2),
            rate_limit_default=env.str("RATE_LIMIT_DEFAULT", "300/minute"),
            rate_limit_login=env.str("RATE_LIMIT_LOGIN", "10/minute"),
            rate_limit_login_username=env.str("RATE_LIMIT_LOGIN_USERNAME", "5/minute"),
            rate_limit_enabled=env.bool("RATE_LIMIT_ENABLED", True),
            max_body_bytes=env.int("MAX_BODY_BYTES", 1024 * 1024),
            max_upload_bytes=env.int("CSV_MAX_BYTES", 50 * 1024 * 1024),
            cors_origins=env.list("CORS_ORIGINS"),
            trusted_proxies=_trusted_proxies(env),
        )


def _trusted_proxies(env: Env) -> int:
    """How many proxies in front of the gateway append to `X-Forwarded-For` (0 or more)."""
    hops = env.int("TRUSTED_PROXIES", 0)
    if hops < 0:
        raise ConfigError(f"TRUSTED_PROXIES must be 0 or more, not {hops}")
    return hops


def _upstream(env: Env, url_key: str, port_key: str, default_port: int) -> str:
    return env.str(url_key, f"http://127.0.0.1:{env.int(port_key, default_port)}").rstrip("/")


def load_settings() -> Settings:
    """Load the environment and read the settings."""
    return Settings.from_env(Env.load())
