"""Settings of the webhooks service and its `webhooks` process, from the environment."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.config import ConfigError, Env
from shared.settings import CommonSettings, read_settings, setting
from shared.stream.options import ConsumerOptions

GROUP = "webhooks"  # the consumer group of the `webhooks` process, unless WEBHOOKS_GROUP says

# The variables of the process's consumer options (their defaults are ConsumerOptions').
CONSUMER_OPTIONS = {
    "group": setting("WEBHOOKS_GROUP", GROUP),
    "consumer": setting("WEBHOOKS_CONSUMER_NAME", ""),
    "batch_size": setting("WEBHOOKS_BATCH_SIZE", 1000),
    "block_ms": setting("WEBHOOKS_BLOCK_MS"),
    "linger_ms": setting("WEBHOOKS_LINGER_MS"),
    "claim_idle_ms": setting("WEBHOOKS_CLAIM_IDLE_MS"),
    "lock_poll_seconds": setting("WEBHOOKS_LOCK_POLL_SECONDS"),
}


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed delivery is tried again, and when it is given up."""

    base_seconds: float = setting("WEBHOOKS_RETRY_BASE_SECONDS", 5.0)
    max_delay_seconds: float = setting("WEBHOOKS_RETRY_MAX_DELAY_SECONDS", 3600.0)
    window_seconds: float = setting("WEBHOOKS_RETRY_WINDOW_SECONDS", 86400.0)


@dataclass(frozen=True)
class SenderSettings:
    """How a delivery is sent: timeouts, how much of the answer is read, which targets."""

    connect_timeout: float = setting("WEBHOOKS_CONNECT_TIMEOUT", 5.0)
    read_timeout: float = setting("WEBHOOKS_READ_TIMEOUT", 10.0)
    max_response_bytes: int = setting("WEBHOOKS_MAX_RESPONSE_BYTES", 65536)
    allow_private: bool = setting("WEBHOOKS_ALLOW_PRIVATE", False)
    https_only: bool = False  # production's rule, not a variable

    @property
    def longest_request(self) -> float:
        """The most one request can take (libcurl's whole-transfer timeout)."""
        return self.connect_timeout + self.read_timeout


@dataclass(frozen=True)
class DeliverySettings:
    """The `webhooks` process: its consumer, its senders and its metrics."""

    options: ConsumerOptions = field(
        default_factory=lambda: ConsumerOptions(group=GROUP, consumer="", batch_size=1000))
    sender: SenderSettings = SenderSettings()
    retry: RetryPolicy = RetryPolicy()
    workers: int = setting("WEBHOOKS_WORKERS", 8)
    poll_seconds: float = setting("WEBHOOKS_POLL_SECONDS", 1.0)
    metrics_port: int = setting("WEBHOOKS_METRICS_PORT", 9103)
    lease_margin_seconds: float = setting("WEBHOOKS_LEASE_MARGIN_SECONDS", 30.0)
    retention_days: float = setting("WEBHOOKS_RETENTION_DAYS", 7.0)  # 0: keep every delivery

    @property
    def lease_seconds(self) -> float:
        """How long a claimed delivery stays with its sender: a crashed sender's deliveries
        are sent again once this has passed."""
        return self.sender.longest_request + self.lease_margin_seconds

    @classmethod
    def from_env(cls, env: Env, https_only: bool) -> DeliverySettings:
        """Read the `WEBHOOKS_*` variables of the process."""
        sender = read_settings(SenderSettings, env, https_only=https_only)
        return read_settings(cls, env, sender=sender, retry=read_settings(RetryPolicy, env),
                             options=read_settings(ConsumerOptions, env, CONSUMER_OPTIONS))


@dataclass(frozen=True)
class Settings:
    """Everything the webhooks service's processes read from the environment."""

    common: CommonSettings
    database_url: str
    secret_grace_seconds: int = setting("WEBHOOKS_SECRET_GRACE_SECONDS", 86400)
    delivery: DeliverySettings = DeliverySettings()

    @property
    def https_only(self) -> bool:
        """Only `https` targets (in production)."""
        return self.delivery.sender.https_only

    @classmethod
    def from_env(cls, env: Env) -> Settings:
        """Read the settings (`WEBHOOKS_DATABASE_URL` or `DATABASE_URL`, `WEBHOOKS_*`)."""
        production = env.name == "production"
        delivery = DeliverySettings.from_env(env, https_only=production)
        if production and delivery.sender.allow_private:
            raise ConfigError("WEBHOOKS_ALLOW_PRIVATE cannot be switched on in production")
        return read_settings(cls, env, common=CommonSettings.from_env(env),
                             database_url=env.database_url("webhooks"), delivery=delivery)


def load_settings() -> Settings:
    """Load the environment and read the settings."""
    return Settings.from_env(Env.load())
