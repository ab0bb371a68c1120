"""Settings of the task service, the relay and the Celery processes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time

from shared.config import ConfigError, Env
from shared.settings import (
    CommonSettings,
    read_settings,
    setting,
    transfer_timezone,
    upload_limit,
)


@dataclass
class RelayConfig:
    """How the relay batches, waits and trims."""

    batch_size: int = 1000
    poll_seconds: float = 1.0
    # A pass that published less than a batch is followed by the next no sooner than this:
    # under a steady trickle each pass carries several events instead of one.
    linger_ms: int = 10
    # Keep at least this many entries and trim only what every consumer group has
    # acknowledged (an entry a group still needs is never removed); 0 = never trim.
    maxlen: int = 0
    namespace: str = "taskstream"


# The variables of the relay's options (their defaults are RelayConfig's).
RELAY_OPTIONS = {
    "batch_size": setting("RELAY_BATCH_SIZE"),
    "poll_seconds": setting("RELAY_POLL_SECONDS"),
    "linger_ms": setting("RELAY_LINGER_MS"),
    "maxlen": setting("RELAY_STREAM_MAXLEN"),
}


@dataclass(frozen=True)
class Settings:
    """Everything the task service reads from the environment."""

    common: CommonSettings
    database_url: str
    transfer_time: time = setting("TRANSFER_TIME", time(0, 5))
    transfer_timezone: str = transfer_timezone()
    transfer_check_seconds: float = setting("TRANSFER_CHECK_SECONDS", 60.0)
    csv_max_bytes: int = upload_limit()
    csv_max_rows: int = setting("CSV_MAX_ROWS", 1_000_000)
    idempotency_ttl_hours: int = setting("IDEMPOTENCY_TTL_HOURS", 24)
    task_redelivery_seconds: int = setting("CELERY_REDELIVERY_SECONDS", 3600)
    # Empty: Celery's broker is REDIS_URL's server. A Redis Cluster cannot be one (kombu has
    # no cluster transport): a clustered deployment names RabbitMQ here (`amqp://...`).
    celery_broker_url: str = setting("CELERY_BROKER_URL", "")
    relay_metrics_port: int = setting("RELAY_METRICS_PORT", 9101)
    # Feed reads (`GET /events?wait=`) of one process that may wait at once; each holds a
    # server thread, so keep it below WEB_THREADS (others answer at once, empty).
    feed_max_waiting: int = setting("FEED_MAX_WAITING", 2)
    relay: RelayConfig = field(default_factory=RelayConfig)

    @classmethod
    def from_env(cls, env: Env) -> Settings:
        """Read the settings."""
        common = CommonSettings.from_env(env)
        settings = read_settings(
            cls, env, common=common, database_url=env.database_url("tasks"),
            relay=read_settings(RelayConfig, env, RELAY_OPTIONS, namespace=common.namespace))
        if common.clustered and not settings.celery_broker_url:
            raise ConfigError("Redis is a Redis Cluster, which cannot be Celery's broker: set "
                              "CELERY_BROKER_URL (RabbitMQ, amqp://user:password@host:5672//)")
        return settings

    @property
    def broker_url(self) -> str:
        """Celery's broker: `CELERY_BROKER_URL`, else the Redis server of `REDIS_URL`."""
        return self.celery_broker_url or self.common.redis_url


def load_settings() -> Settings:
    """Load the environment and read the settings."""
    return Settings.from_env(Env.load())
