"""Settings dataclasses read from the environment, and the settings every process shares.

A field that a variable sets is declared with `setting(VARIABLE, default)`: its default is
written there and nowhere else, and `read_settings` reads the variable by the default's type
(or with the field's own reader). A class that names no variables itself (a library's
options) is read with a mapping from its fields to `setting`s; their defaults, where not
given, are the class's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from datetime import time
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from shared.config import ConfigError, Env
from shared.logs import DEFAULT_LOG_FORMAT, configure_logging
from shared.redis_client import hash_tagged, is_cluster_url
from shared.stream.partitions import Partitioning

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

VARIABLE, READER = "variable", "reader"
Reader = Callable[[Env, str, Any], Any]  # (env, variable, default) -> value
READERS: dict[type, Reader] = {
    str: Env.str, int: Env.int, float: Env.float, bool: Env.bool, tuple: Env.list,
    time: Env.time_of_day,
}
Read = TypeVar("Read", bound="DataclassInstance")


def setting(variable: str, default: Any = MISSING, *, read: Reader | None = None) -> Any:
    """A field set by `variable`, and its one default (none: the class's own, when mapped)."""
    return field(default=default, metadata={VARIABLE: variable, READER: read})


def read_settings(cls: type[Read], env: Env, declared: Mapping[str, Any] | None = None,
                  **values: Any) -> Read:
    """`cls` with every declared field read from its variable (its default when unset).

    `declared` maps field names to `setting`s for a class that declares none itself;
    `values` are the fields no variable sets.
    """
    read = {}
    for own in fields(cls):
        declaration: Field[Any] = (declared or {}).get(own.name, own)
        if VARIABLE in declaration.metadata:
            default = own.default if declaration.default is MISSING else declaration.default
            read[own.name] = _read(env, declaration, default)
    return cls(**read, **values)


def read_setting(env: Env, cls: type[DataclassInstance], name: str) -> Any:
    """One declared field of `cls`, read alone (for a command that needs no more)."""
    declaration = next(own for own in fields(cls) if own.name == name)
    return _read(env, declaration, declaration.default)


def _read(env: Env, declaration: Field[Any], default: Any) -> Any:
    reader = declaration.metadata[READER] or READERS[type(default)]
    return reader(env, declaration.metadata[VARIABLE], default)


def _upper(env: Env, variable: str, default: str) -> str:
    return env.str(variable, default).upper()


@dataclass(frozen=True)
class Ports:
    """The port each HTTP service listens on (this machine's, unless its URL is configured)."""

    gateway: int = setting("GATEWAY_PORT", 5000)
    auth: int = setting("AUTH_PORT", 5001)
    tasks: int = setting("TASKS_PORT", 5002)
    logger: int = setting("LOGGER_PORT", 5003)
    webhooks: int = setting("WEBHOOKS_PORT", 5004)

    def local_url(self, service: str) -> str:
        """`http://127.0.0.1:<port>` of one service (`gateway`, `auth`, `logger`, ...)."""
        return f"http://127.0.0.1:{getattr(self, service)}"


def auth_service_url(env: Env) -> str:
    """Where the auth service answers (`AUTH_SERVICE_URL`, else this machine's `AUTH_PORT`)."""
    return env.str("AUTH_SERVICE_URL") or read_settings(Ports, env).local_url("auth")


def _jwks_url(env: Env, variable: str, default: str) -> str:
    return env.str(variable) or f"{auth_service_url(env)}/.well-known/jwks.json"


def transfer_timezone() -> Any:
    """The `TRANSFER_TIMEZONE` field: the day a daily transfer and each change belong to."""
    return setting("TRANSFER_TIMEZONE", "UTC", read=Env.timezone)


def upload_limit() -> Any:
    """The `CSV_MAX_BYTES` field: the largest upload, held by the gateway and the task service."""
    return setting("CSV_MAX_BYTES", 50 * 1024 * 1024)


@dataclass(frozen=True)
class TokenSettings:
    """How every verifier judges access tokens: lifetime, clock skew, key age, revocation."""

    access_token_ttl: int = setting("ACCESS_TOKEN_TTL_SECONDS", 900)
    leeway_seconds: float = setting("JWT_LEEWAY_SECONDS", 30.0)
    jwks_max_age_seconds: float = setting("JWKS_MAX_AGE_SECONDS", 300.0)
    revocation_check: bool = setting("TOKEN_REVOCATION_CHECK", True)

    @classmethod
    def from_env(cls, env: Env) -> TokenSettings:
        """Read the token settings; a deployed environment must check revocations."""
        settings = read_settings(cls, env)
        checks = (("ACCESS_TOKEN_TTL_SECONDS", settings.access_token_ttl > 0, "above 0"),
                  ("JWT_LEEWAY_SECONDS", settings.leeway_seconds >= 0, "0 or more"),
                  ("JWKS_MAX_AGE_SECONDS", settings.jwks_max_age_seconds > 0, "above 0"))
        for key, valid, rule in checks:
            if not valid:
                raise ConfigError(f"{key} must be {rule} seconds")
        if env.deployed and not settings.revocation_check:
            raise ConfigError(f"TOKEN_REVOCATION_CHECK cannot be switched off in {env.name}")
        return settings

    @property
    def max_lifetime(self) -> float:
        """The longest a token may live (`exp - iat`), and how long a revocation matters."""
        return self.access_token_ttl + self.leeway_seconds


@dataclass(frozen=True)
class CommonSettings:
    """Settings every process shares: environment, Redis, logging, tokens, pools."""

    environment: str
    redis_url: str
    namespace: str = setting("REDIS_NAMESPACE", "taskstream")
    log_level: str = setting("LOG_LEVEL", "INFO", read=_upper)
    log_format: str = setting("LOG_FORMAT", DEFAULT_LOG_FORMAT)
    jwt_issuer: str = setting("JWT_ISSUER", "taskstream-auth")
    jwt_audience: str = setting("JWT_AUDIENCE", "taskstream")
    jwt_algorithm: str = setting("JWT_ALGORITHM", "EdDSA")
    jwks_url: str = setting("JWKS_URL", "", read=_jwks_url)
    jwks_refresh_seconds: float = setting("JWKS_MIN_REFRESH_SECONDS", 30.0)
    db_pool_size: int = setting("DB_POOL_SIZE", 5)
    db_max_overflow: int = setting("DB_MAX_OVERFLOW", 10)
    db_connect_attempts: int = setting("DB_CONNECT_ATTEMPTS", 10)
    db_connect_backoff: float = setting("DB_CONNECT_BACKOFF", 0.5)
    read_wait_seconds: float = setting("READ_WAIT_SECONDS", 2.0)
    stream_partitions: int = setting("STREAM_PARTITIONS", 1)
    tokens: TokenSettings = field(default_factory=TokenSettings)

    @classmethod
    def from_env(cls, env: Env) -> CommonSettings:
        """Read the common settings."""
        return read_settings(cls, env, environment=env.name, redis_url=env.redis_url(),
                             tokens=TokenSettings.from_env(env))

    @property
    def clustered(self) -> bool:
        """True when Redis is a Redis Cluster."""
        return is_cluster_url(self.redis_url)

    def stream_key(self, suffix: str = "events") -> str:
        """Return a Redis key inside this deployment's namespace.

        On a Redis Cluster the key is its own hash tag (`{taskstream:events}`), so the keys
        made from it (`...:dead`, `...:backfill`) share its slot.
        """
        key = f"{self.namespace}:{suffix}"
        return hash_tagged(key) if self.clustered else key

    @property
    def partitioning(self) -> Partitioning:
        """How the event log is split (`STREAM_PARTITIONS`)."""
        return Partitioning(self.stream_partitions)

    def partition_streams(self) -> list[str]:
        """The event log's stream keys, one per partition (today's one key by default)."""
        return self.partitioning.streams(self.namespace, self.stream_key())


class ProcessSettings(Protocol):
    """A process's settings: they hold the common ones."""

    @property
    def common(self) -> CommonSettings:
        """The settings every process shares."""


Loaded = TypeVar("Loaded", bound=ProcessSettings)


def process_settings(load: Callable[[], Loaded], service: str) -> Loaded:
    """An entry point's first step: read the settings, then log as `service` from them.

    Logging is set up here and only here, once per process, by the code that reads the
    settings from the environment itself; code handed its settings (tests, benchmarks)
    leaves logging as its caller has it.
    """
    settings = load()
    configure_logging(service, settings.common.log_level, settings.common.log_format)
    return settings
