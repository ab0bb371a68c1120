"""Configuration from environment variables and `.env.<environment>` files."""

from __future__ import annotations

import builtins
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from dotenv import dotenv_values
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from shared.redis_client import cluster_url
from shared.run_state import load_run_state
from shared.timezones import UnknownTimezone, zone

ENVIRONMENTS = ("dev", "test", "staging", "production")
ALIASES = {"development": "dev", "testing": "test", "prod": "production"}
DEPLOYED = ("staging", "production")

# Values that appear in committed example files; a deployed environment must not run with them.
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "admin", "password"})

# Secrets that may instead be read from the file named by `<NAME>_FILE` (the convention of the
# official database images), as container secrets and Kubernetes Secret volumes provide them.
SECRET_VARIABLES = frozenset({
    "DATABASE_URL", "AUTH_DATABASE_URL", "TASKS_DATABASE_URL", "LOGGER_DATABASE_URL",
    "WEBHOOKS_DATABASE_URL",
    "REDIS_URL", "REDIS_CLUSTER_URL", "CELERY_BROKER_URL", "ADMIN_PASSWORD", "JWT_PRIVATE_KEYS",
})
SECRET_FILE_SUFFIX = "_FILE"

# The PostgreSQL driver we ship. SQLAlchemy 2.1 maps a bare `postgresql://` to psycopg 3,
# which is not installed, so the URLs users paste are pointed at psycopg2 instead.
DATABASE_DRIVER = "postgresql+psycopg2"
BARE_DATABASE_SCHEMES = ("postgresql", "postgres")

# gunicorn stops (instead of respawning the worker) when a worker exits with this code.
GUNICORN_APP_LOAD_ERROR = 4


Value = TypeVar("Value")


class ConfigError(RuntimeError):
    """Raised when the configuration is missing or unsafe."""


@contextmanager
def exit_on_config_error(code: int = 2) -> Iterator[None]:
    """At an entry point: turn a ConfigError into one line on stderr and exit `code`."""
    try:
        yield
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(code) from None


def parse_time_of_day(raw: str) -> time:
    """`HH:MM` as a time of day (ValueError for anything else)."""
    hours, minutes = (int(part) for part in raw.split(":"))
    return time(hours, minutes)


def current_environment() -> str:
    """Return the normalised name of the environment (`TASKSTREAM_ENV`, default `dev`)."""
    raw = os.environ.get("TASKSTREAM_ENV", "dev").strip().lower()
    name = ALIASES.get(raw, raw)
    if name not in ENVIRONMENTS:
        raise ConfigError(f"TASKSTREAM_ENV must be one of {', '.join(ENVIRONMENTS)}, not {raw!r}")
    return name


def load_env_file(environment: str, root: Path | None = None) -> Path | None:
    """Load `.env.<environment>` into the process environment; real variables win."""
    explicit = os.environ.get("TASKSTREAM_ENV_FILE")
    path = Path(explicit) if explicit else (root or Path.cwd()) / f".env.{environment}"
    if not path.is_file():
        return None
    for key, value in dotenv_values(path).items():
        if value is not None:
            os.environ.setdefault(key, value)
    return path


def data_dir_path() -> Path:
    """The folder for local files (`DATA_DIR`, default `.data`), not created."""
    return Path(os.environ.get("DATA_DIR", "").strip() or ".data")


@dataclass(frozen=True)
class Env:
    """Typed reads of environment variables, with the rules of one environment."""

    name: str

    @classmethod
    def load(cls) -> Env:
        """Read `TASKSTREAM_ENV`, load its `.env` file and return the reader.

        In development, servers started by a running `taskstream run` fill in an unset
        `DATABASE_URL`/`REDIS_URL`, so operator commands work beside it.
        """
        name = current_environment()
        load_env_file(name)
        if name == "dev":
            load_run_state(data_dir_path())
        return cls(name)

    @property
    def deployed(self) -> builtins.bool:
        """True for staging and production, where defaults are not good enough."""
        return self.name in DEPLOYED

    def str(self, key: builtins.str, default: builtins.str = "") -> builtins.str:
        """Read a string variable (a secret may come from the file `<key>_FILE` names)."""
        path = os.environ.get(key + SECRET_FILE_SUFFIX, "").strip()
        if key in SECRET_VARIABLES and path:
            return read_secret_file(key, path)
        return os.environ.get(key, default).strip()

    def int(self, key: builtins.str, default: builtins.int) -> builtins.int:
        """Read an integer variable, with a clear error when it is not one."""
        return self._parsed(key, default, int, "be an integer")

    def float(self, key: builtins.str, default: builtins.float) -> builtins.float:
        """Read a number variable."""
        return self._parsed(key, default, float, "be a number")

    def time_of_day(self, key: builtins.str, default: time) -> time:
        """Read a time of day written `HH:MM`."""
        return self._parsed(key, default, parse_time_of_day, "look like HH:MM")

    def _parsed(self, key: builtins.str, default: Value, parse: Callable[[builtins.str], Value],
                rule: builtins.str) -> Value:
        """The variable through `parse`, `default` when unset; a clear error when unparsable."""
        raw = self.str(key)
        if not raw:
            return default
        try:
            return parse(raw)
        except ValueError:
            raise ConfigError(f"{key} must {rule}, not {raw!r}") from None

    def bool(self, key: builtins.str, default: builtins.bool) -> builtins.bool:
        """Read a yes/no variable (1/0, true/false, yes/no, on/off)."""
        raw = self.str(key).lower()
        if not raw:
            return default
        if raw in {"1", "true", "yes", "on"}:
            return True
        if raw in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{key} must be true or false, not {raw!r}")

    def list(
        self, key: builtins.str, default: tuple[builtins.str, ...] = ()
    ) -> tuple[builtins.str, ...]:
        """Read a comma-separated list."""
        raw = self.str(key)
        if not raw:
            return default
        return tuple(item.strip() for item in raw.split(",") if item.strip())

    def timezone(self, key: builtins.str, default: builtins.str = "UTC") -> builtins.str:
        """Read an IANA time zone name, with a clear error when there is no such zone."""
        name = self.str(key) or default
        try:
            zone(name)
        except UnknownTimezone:
            raise ConfigError(
                f"{key} must be a time zone such as UTC or Europe/Paris, not {name!r}") from None
        return name

    def secret(self, key: builtins.str, dev_default: builtins.str = "") -> builtins.str:
        """Read a secret; deployed environments refuse a missing or placeholder value."""
        value = self.str(key)
        if self.deployed and value.lower() in PLACEHOLDER_SECRETS:
            raise ConfigError(f"{key} must be set to a real secret in {self.name}")
        return value or dev_default

    def database_url(self, service: builtins.str) -> builtins.str:
        """Return the database URL of one service, with the driver we ship.

        `<SERVICE>_DATABASE_URL` wins; otherwise `DATABASE_URL` names the server and a base
        database name, and each service gets its own database `<base>_<service>`.
        """
        key = f"{service.upper()}_DATABASE_URL"
        specific = self.str(key)
        if specific:
            return self._checked_url(key, normalise_database_url(specific, key))
        base = self.str("DATABASE_URL")
        if not base:
            raise ConfigError(f"DATABASE_URL (or {key}) is not set")
        return self._checked_url("DATABASE_URL", service_database_url(base, service))

    def redis_url(self) -> builtins.str:
        """Return the Redis URL, which every environment needs.

        `REDIS_CLUSTER_URL` (some nodes of a Redis Cluster) wins over `REDIS_URL` and comes
        back in the `redis+cluster://` form; `REDIS_URL` may also be written in that form.
        """
        nodes = self.str("REDIS_CLUSTER_URL")
        if nodes:
            return self._checked_url("REDIS_CLUSTER_URL", cluster_url(nodes))
        url = self.str("REDIS_URL")
        if not url:
            raise ConfigError("REDIS_URL is not set")
        return self._checked_url("REDIS_URL", url)

    def _checked_url(self, key: builtins.str, url: builtins.str) -> builtins.str:
        """Deployed environments refuse a URL whose password is empty or a placeholder.

        A URL with no password at all is accepted: the server may authenticate otherwise
        (`PGPASSWORD`, `.pgpass`, client certificates, a private network).
        """
        password = url_password(url)
        if self.deployed and password is not None and password.lower() in PLACEHOLDER_SECRETS:
            raise ConfigError(
                f"{key} has an empty or placeholder password; set a real one in {self.name}")
        return url


def read_secret_file(key: str, path: str) -> str:
    """The secret in the file `<key>_FILE` names; setting both `key` and the file is refused."""
    if os.environ.get(key, "").strip():
        raise ConfigError(f"{key} and {key}{SECRET_FILE_SUFFIX} are both set; set one of them")
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(
            f"{key}{SECRET_FILE_SUFFIX}: cannot read {path} ({exc.strerror})") from None


def url_password(url: str) -> str | None:
    """The password a URL carries (in its user part or a `password` query), None if none."""
    parts = urlsplit(url)
    if parts.password is not None:
        return unquote(parts.password)
    query = parse_qs(parts.query, keep_blank_values=True).get("password")
    return query[0] if query else None


def parse_database_url(raw: str, key: str = "DATABASE_URL") -> URL:
    """Parse a database URL, pointing `postgresql://` and `postgres://` at psycopg2."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(f"{key} is not a database URL (postgresql://user:pass@host/db)") from None
    if url.drivername in BARE_DATABASE_SCHEMES:
        url = url.set(drivername=DATABASE_DRIVER)
    return url


def normalise_database_url(raw: str, key: str = "DATABASE_URL") -> str:
    """The URL with the driver we ship (see `parse_database_url`), as a string."""
    return parse_database_url(raw, key).render_as_string(hide_password=False)


def service_database_url(base: str, service: str) -> str:
    """Derive a service's database URL from the shared `DATABASE_URL`."""
    url = parse_database_url(base)
    stem = url.database or "taskstream"
    return url.set(database=f"{stem}_{service}").render_as_string(hide_password=False)
