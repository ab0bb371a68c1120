"""Settings of the auth service, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from shared.config import ConfigError, Env, data_dir_path
from shared.settings import CommonSettings, TokenSettings, read_settings, setting

# Extra time an old public key stays published after its last token's expiry (clock skew).
KEY_RETENTION_MARGIN = timedelta(seconds=60)
OPEN_REGISTRATION = ("dev", "test")  # where anyone may register unless configured


@dataclass(frozen=True)
class Settings:
    """Everything the auth service reads from the environment."""

    common: CommonSettings
    database_url: str
    data_dir: Path
    key_dir: Path
    generate_keys: bool
    allow_registration: bool
    private_keys_json: str = setting("JWT_PRIVATE_KEYS", "")
    signing_kid: str = setting("JWT_SIGNING_KID", "")
    refresh_token_ttl: int = setting("REFRESH_TOKEN_TTL_SECONDS", 14 * 24 * 3600)

    @classmethod
    def from_env(cls, env: Env) -> Settings:
        """Read the settings; deployed environments must name their signing keys."""
        common = CommonSettings.from_env(env)
        if common.jwt_algorithm != "EdDSA":
            raise ConfigError("auth_service signs with EdDSA; set JWT_ALGORITHM=EdDSA")
        if env.deployed and not (env.str("JWT_PRIVATE_KEYS") or env.str("JWT_KEY_DIR")):
            raise ConfigError(
                f"{env.name} needs signing keys: set JWT_PRIVATE_KEYS or JWT_KEY_DIR")
        return read_settings(
            cls, env, common=common, database_url=env.database_url("auth"),
            data_dir=data_dir_path(), key_dir=key_directory(env), generate_keys=not env.deployed,
            allow_registration=env.bool("ALLOW_REGISTRATION", env.name in OPEN_REGISTRATION))

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


def key_directory(env: Env) -> Path:
    """The key directory: `JWT_KEY_DIR`, else `$DATA_DIR/keys`."""
    explicit = env.str("JWT_KEY_DIR")
    return Path(explicit) if explicit else data_dir_path() / "keys"


def access_token_ttl(env: Env) -> int:
    """Lifetime of access tokens in seconds (`ACCESS_TOKEN_TTL_SECONDS`)."""
    return TokenSettings.from_env(env).access_token_ttl


def key_retention(access_ttl_seconds: int) -> timedelta:
    """How long a retired key stays published: the access-token lifetime plus a margin."""
    return timedelta(seconds=access_ttl_seconds) + KEY_RETENTION_MARGIN
