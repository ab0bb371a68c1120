"""Gateway settings, from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from shared.config import CommonSettings, Env


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
    rate_limit_enabled: bool
    max_body_bytes: int
    max_upload_bytes: int
    cors_origins: tuple[str, ...]

    @classmethod
    def from_env(cls, env: Env | None = None) -> Settings:
        """Read the gateway's settings."""
        env = env or Env.load()
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
            rate_limit_enabled=env.bool("RATE_LIMIT_ENABLED", True),
            max_body_bytes=env.int("MAX_BODY_BYTES", 1024 * 1024),
            max_upload_bytes=env.int("CSV_MAX_BYTES", 50 * 1024 * 1024),
            cors_origins=env.list("CORS_ORIGINS"),
        )


def _upstream(env: Env, url_key: str, port_key: str, default_port: int) -> str:
    return env.str(url_key, f"http://127.0.0.1:{env.int(port_key, default_port)}").rstrip("/")
