"""Settings of the logger service and its projector, from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from shared.config import CommonSettings, Env
from shared.consumer import ConsumerOptions, default_consumer_name


@dataclass(frozen=True)
class ProjectorSettings:
    """How the projector reads the stream, retries, gives up and stands by."""

    group: str = "logger"
    consumer: str = ""
    batch_size: int = 2000
    block_ms: int = 1000
    claim_idle_ms: int = 30_000
    claim_interval_seconds: float = 5.0
    max_deliveries: int = 5
    lock_poll_seconds: float = 1.0
    retry_delay_seconds: float = 0.5
    metrics_port: int = 9102

    @classmethod
    def from_env(cls, env: Env) -> ProjectorSettings:
        """Read the `PROJECTOR_*` variables."""
        return cls(
            group=env.str("PROJECTOR_GROUP", "logger"),
            consumer=env.str("PROJECTOR_CONSUMER_NAME") or default_consumer_name(),
            batch_size=env.int("PROJECTOR_BATCH_SIZE", 2000),
            block_ms=env.int("PROJECTOR_BLOCK_MS", 1000),
            claim_idle_ms=env.int("PROJECTOR_CLAIM_IDLE_MS", 30_000),
            claim_interval_seconds=env.float("PROJECTOR_CLAIM_INTERVAL_SECONDS", 5.0),
            max_deliveries=env.int("PROJECTOR_MAX_DELIVERIES", 5),
            lock_poll_seconds=env.float("PROJECTOR_LOCK_POLL_SECONDS", 1.0),
            retry_delay_seconds=env.float("PROJECTOR_RETRY_DELAY_SECONDS", 0.5),
            metrics_port=env.int("PROJECTOR_METRICS_PORT", 9102),
        )

    def consumer_options(self) -> ConsumerOptions:
        """The options of the shared stream consumer."""
        return ConsumerOptions(
            group=self.group, consumer=self.consumer or default_consumer_name(),
            batch_size=self.batch_size, block_ms=self.block_ms,
            claim_idle_ms=self.claim_idle_ms,
            claim_interval_seconds=self.claim_interval_seconds,
            max_deliveries=self.max_deliveries, lock_poll_seconds=self.lock_poll_seconds,
            retry_delay_seconds=self.retry_delay_seconds,
        )


@dataclass(frozen=True)
class Settings:
    """Everything the logger's processes read from the environment."""

    common: CommonSettings
    database_url: str
    cache_ttl_seconds: int = 300
    projector: ProjectorSettings = ProjectorSettings()

    @classmethod
    def from_env(cls, env: Env | None = None) -> Settings:
        """Read the settings (`LOGGER_DATABASE_URL` or `DATABASE_URL`, `LOGGER_*`)."""
        env = env or Env.load()
        return cls(
            common=CommonSettings.from_env(env),
            database_url=env.database_url("logger"),
            cache_ttl_seconds=env.int("LOGGER_CACHE_TTL_SECONDS", 300),
            projector=ProjectorSettings.from_env(env),
        )
