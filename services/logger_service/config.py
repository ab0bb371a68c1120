"""Settings of the logger service and its projector, from the environment."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from shared.config import CommonSettings, Env
from shared.stream.options import ConsumerOptions, default_consumer_name


@dataclass(frozen=True)
class ProjectorSettings:
    """The shared consumer's options for the projector, and where it serves its metrics."""

    options: ConsumerOptions = field(
        default_factory=lambda: ConsumerOptions(group="logger", consumer="", batch_size=5000))
    metrics_port: int = 9102

    @property
    def group(self) -> str:
        """The projector's consumer group."""
        return self.options.group

    @classmethod
    def from_env(cls, env: Env) -> ProjectorSettings:
        """Read the `PROJECTOR_*` variables."""
        options = ConsumerOptions(
            group=env.str("PROJECTOR_GROUP", "logger"),
            consumer=env.str("PROJECTOR_CONSUMER_NAME"),
            batch_size=env.int("PROJECTOR_BATCH_SIZE", 5000),
            block_ms=env.int("PROJECTOR_BLOCK_MS", 1000),
            claim_idle_ms=env.int("PROJECTOR_CLAIM_IDLE_MS", 30_000),
            claim_interval_seconds=env.float("PROJECTOR_CLAIM_INTERVAL_SECONDS", 5.0),
            max_deliveries=env.int("PROJECTOR_MAX_DELIVERIES", 5),
            lock_poll_seconds=env.float("PROJECTOR_LOCK_POLL_SECONDS", 1.0),
            retry_delay_seconds=env.float("PROJECTOR_RETRY_DELAY_SECONDS", 0.5),
        )
        return cls(options, env.int("PROJECTOR_METRICS_PORT", 9102))

    def consumer_options(self) -> ConsumerOptions:
        """The options, naming this process as the consumer unless one was configured."""
        if self.options.consumer:
            return self.options
        return replace(self.options, consumer=default_consumer_name())


@dataclass(frozen=True)
class Settings:
    """Everything the logger's processes read from the environment."""

    common: CommonSettings
    database_url: str
    cache_ttl_seconds: int = 300
    transfer_timezone: str = "UTC"
    projector: ProjectorSettings = ProjectorSettings()

    @classmethod
    def from_env(cls, env: Env) -> Settings:
        """Read the settings (`LOGGER_DATABASE_URL` or `DATABASE_URL`, `LOGGER_*`)."""
        return cls(
            common=CommonSettings.from_env(env),
            database_url=env.database_url("logger"),
            cache_ttl_seconds=env.int("LOGGER_CACHE_TTL_SECONDS", 300),
            transfer_timezone=env.timezone("TRANSFER_TIMEZONE", "UTC"),
            projector=ProjectorSettings.from_env(env),
        )


def load_settings() -> Settings:
    """Load the environment and read the settings."""
    return Settings.from_env(Env.load())
