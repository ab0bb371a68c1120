"""Settings of the task service, the relay and the Celery processes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from shared.config import CommonSettings, ConfigError, Env


def parse_time_of_day(raw: str) -> time:
    """Parse `HH:MM` into a time, with a clear error."""
    try:
        hours, minutes = (int(part) for part in raw.split(":"))
        return time(hours, minutes)
    except ValueError:
        raise ConfigError(f"TRANSFER_TIME must look like HH:MM, not {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    """Everything the task service reads from the environment."""

    common: CommonSettings
    database_url: str
    transfer_time: time = time(0, 5)
    transfer_timezone: str = "UTC"
    transfer_check_seconds: float = 60.0
    csv_max_bytes: int = 50 * 1024 * 1024
    csv_max_rows: int = 1_000_000
    idempotency_ttl_hours: int = 24
    task_redelivery_seconds: int = 3600
    relay_batch_size: int = 1000
    relay_poll_seconds: float = 1.0
    relay_stream_maxlen: int = 0
    relay_metrics_port: int = 9101

    @classmethod
    def from_env(cls, env: Env) -> Settings:
        """Read the settings."""
        return cls(
            common=CommonSettings.from_env(env),
            database_url=env.database_url("tasks"),
            transfer_time=parse_time_of_day(env.str("TRANSFER_TIME", "00:05")),
            transfer_timezone=env.timezone("TRANSFER_TIMEZONE", "UTC"),
            transfer_check_seconds=env.float("TRANSFER_CHECK_SECONDS", 60.0),
            csv_max_bytes=env.int("CSV_MAX_BYTES", 50 * 1024 * 1024),
            csv_max_rows=env.int("CSV_MAX_ROWS", 1_000_000),
            idempotency_ttl_hours=env.int("IDEMPOTENCY_TTL_HOURS", 24),
            task_redelivery_seconds=env.int("CELERY_REDELIVERY_SECONDS", 3600),
            relay_batch_size=env.int("RELAY_BATCH_SIZE", 1000),
            relay_poll_seconds=env.float("RELAY_POLL_SECONDS", 1.0),
            relay_stream_maxlen=env.int("RELAY_STREAM_MAXLEN", 0),
            relay_metrics_port=env.int("RELAY_METRICS_PORT", 9101),
        )


def load_settings() -> Settings:
    """Load the environment and read the settings."""
    return Settings.from_env(Env.load())
