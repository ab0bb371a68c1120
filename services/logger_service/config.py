"""Settings of the logger service and its projector, from the environment."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.config import Env
from shared.settings import CommonSettings, read_settings, setting, transfer_timezone
from shared.stream.options import ConsumerOptions

GROUP = "logger"  # the projector's consumer group, unless PROJECTOR_GROUP names another

# The variables of the projector's consumer options (their defaults are ConsumerOptions').
PROJECTOR_OPTIONS = {
    "group": setting("PROJECTOR_GROUP", GROUP),
    "consumer": setting("PROJECTOR_CONSUMER_NAME", ""),
    "batch_size": setting("PROJECTOR_BATCH_SIZE"),
    "block_ms": setting("PROJECTOR_BLOCK_MS"),
    "linger_ms": setting("PROJECTOR_LINGER_MS"),
    "claim_idle_ms": setting("PROJECTOR_CLAIM_IDLE_MS"),
    "claim_interval_seconds": setting("PROJECTOR_CLAIM_INTERVAL_SECONDS"),
    "max_deliveries": setting("PROJECTOR_MAX_DELIVERIES"),
    "lock_poll_seconds": setting("PROJECTOR_LOCK_POLL_SECONDS"),
    "retry_delay_seconds": setting("PROJECTOR_RETRY_DELAY_SECONDS"),
}


@dataclass(frozen=True)
class ProjectorSettings:
    """The shared consumer's options for the projector, and where it serves its metrics."""

    options: ConsumerOptions = field(
        default_factory=lambda: ConsumerOptions(group=GROUP, consumer=""))
    metrics_port: int = setting("PROJECTOR_METRICS_PORT", 9102)

    @property
    def group(self) -> str:
        """The projector's consumer group."""
        return self.options.group

    @classmethod
    def from_env(cls, env: Env) -> ProjectorSettings:
        """Read the `PROJECTOR_*` variables."""
        return read_settings(cls, env,
                             options=read_settings(ConsumerOptions, env, PROJECTOR_OPTIONS))



@dataclass(frozen=True)
class Settings:
    """Everything the logger's processes read from the environment."""

    common: CommonSettings
    database_url: str
    cache_ttl_seconds: int = setting("LOGGER_CACHE_TTL_SECONDS", 300)
    transfer_timezone: str = transfer_timezone()
    projector: ProjectorSettings = ProjectorSettings()

    @classmethod
    def from_env(cls, env: Env) -> Settings:
        """Read the settings (`LOGGER_DATABASE_URL` or `DATABASE_URL`, `LOGGER_*`)."""
        return read_settings(cls, env, common=CommonSettings.from_env(env),
                             database_url=env.database_url("logger"),
                             projector=ProjectorSettings.from_env(env))


def load_settings() -> Settings:
    """Load the environment and read the settings."""
    return Settings.from_env(Env.load())
