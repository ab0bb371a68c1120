"""Settings of the auth service, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from shared.config import CommonSettings, ConfigError, Env, TokenSettings

# Extra time an old public key stays published after its last token's expiry (clock skew).
KEY_RETENTION_MARGIN = timedelta(seconds=60)


@dataclass(frozen=True)
class Settings:
    """Everything the auth service reads from the environment."""

    common: CommonSettings
    database_url: str
    data_dir: Path
    key_dir: Path
    private_keys_json: str
    signing_kid: str
    generate_keys: bool
    refresh_token_ttl: int
    allow_registration: bool

    @classmethod
    def from_env(cls, env: Env) -> Settings:
        """Read the settings; deployed environments must name their signing keys."""
        common = CommonSettings.from_env(env)
        if common.jwt_algorithm != "EdDSA":
            raise ConfigError("auth_service signs with EdDSA; set JWT_ALGORITHM=EdDSA")
        private_keys = env.str("JWT_PRIVATE_KEYS")
        if env.deployed and not (private_keys or env.str("JWT_KEY_DIR")):
            raise ConfigError(
                f"{env.name} needs signing keys: set JWT_PRIVATE_KEYS or JWT_KEY_DIR")
        return cls(
            common=common,
            database_url=env.database_url("auth"),
            data_dir=data_dir(env),
            key_dir=key_directory(env),
            private_keys_json=private_keys,
            signing_kid=env.str("JWT_SIGNING_KID"),
            generate_keys=not env.deployed,
            refresh_token_ttl=env.int("REFRESH_TOKEN_TTL_SECONDS", 14 * 24 * 3600),
            allow_registration=env.bool("ALLOW_REGISTRATION", env.name in ("dev", "test")),
        )

    @property
    def access_token_ttl(self) -> int:
        """Lifetime of access tokens in seconds (shared with the verifiers)."""
        return self.common.tokens.access_token_ttl

    @property
    def key_retention(self) -> timedelta:
        """How long a retired key stays published."""
        return key_retention(self.access_token_ttl)


def load_settings() -> Settings:
    """Load the environment and read the settings."""
    return Settings.from_env(Env.load())


def data_dir(env: Env) -> Path:
    """Where this process keeps local files (`DATA_DIR`, default `.data`)."""
    return Path(env.str("DATA_DIR", ".data"))


def key_directory(env: Env) -> Path:
    """The key directory: `JWT_KEY_DIR`, else `$DATA_DIR/keys`."""
    explicit = env.str("JWT_KEY_DIR")
    return Path(explicit) if explicit else data_dir(env) / "keys"


def access_token_ttl(env: Env) -> int:
    """Lifetime of access tokens in seconds (`ACCESS_TOKEN_TTL_SECONDS`, default 15 min)."""
    return TokenSettings.from_env(env).access_token_ttl


def key_retention(access_ttl_seconds: int) -> timedelta:
    """How long a retired key stays published: the access-token lifetime plus a margin."""
    return timedelta(seconds=access_ttl_seconds) + KEY_RETENTION_MARGIN
