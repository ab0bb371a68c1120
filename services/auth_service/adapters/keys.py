"""Ed25519 signing keys: from the environment or a key directory, published as a JWKS.

A key directory holds one PKCS#8 PEM file per key, `<kid>.pem`, mode 0600. Generated kids
start with their UTC creation time (`20250405T173200Z-1a2b3c4d`), which orders the keys: the
newest signs, older ones stay published until every token they signed has expired.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from shared.config import ConfigError

KEY_SUFFIX = ".pem"
KID_TIME_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class SigningKey:
    """One private key, its id and when it was made."""

    kid: str
    private_key: Ed25519PrivateKey
    created_at: datetime

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK carrying `kid`, `alg` and `use`."""
        jwk = dict(OKPAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True))
        jwk.update({"kid": self.kid, "alg": "EdDSA", "use": "sig"})
        return jwk


@dataclass(frozen=True)
class KeySet:
    """The published keys and the one that signs (the newest)."""

    keys: tuple[SigningKey, ...]

    @property
    def signer(self) -> SigningKey:
        """The key new tokens are signed with."""
        return self.keys[-1]

    def jwks(self) -> dict[str, Any]:
        """The public JWKS document, newest key first."""
        return {"keys": [key.public_jwk() for key in reversed(self.keys)]}


class KeySource(Protocol):
    """Whatever hands out the current key set."""

    def current(self) -> KeySet:
        """Return the keys in force now."""


def new_kid(now: datetime) -> str:
    """A fresh key id that sorts by creation time."""
    return f"{now.astimezone(UTC):{KID_TIME_FORMAT}}-{secrets.token_hex(4)}"


def parse_private_key(pem: bytes, name: str) -> Ed25519PrivateKey:
    """Load a PEM private key, which must be Ed25519."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"signing key {name} is not a readable PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"signing key {name} is not an Ed25519 key (EdDSA)")
    return key


def private_pem(key: Ed25519PrivateKey) -> bytes:
    """Serialise a private key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def keys_from_json(document: str, signing_kid: str = "") -> KeySet:
    """Read `JWT_PRIVATE_KEYS`: a JSON object of kid -> PEM; the last (or `signing_kid`) signs."""
    try:
        pems = json.loads(document)
    except json.JSONDecodeError as exc:
        raise ConfigError("JWT_PRIVATE_KEYS must be a JSON object of kid -> PEM") from exc
    if not isinstance(pems, dict) or not pems:
        raise ConfigError("JWT_PRIVATE_KEYS must be a non-empty JSON object of kid -> PEM")
    epoch = datetime.fromtimestamp(0, UTC)
    keys = [SigningKey(str(kid), parse_private_key(str(pem).encode(), str(kid)), epoch)
            for kid, pem in pems.items()]
    if signing_kid:
        if signing_kid not in pems:
            raise ConfigError(f"JWT_SIGNING_KID {signing_kid!r} is not in JWT_PRIVATE_KEYS")
        keys.sort(key=lambda key: key.kid == signing_kid)
    return KeySet(tuple(keys))


@dataclass(frozen=True)
class StaticKeySource:
    """A fixed key set (keys from the environment, tests)."""

    key_set: KeySet

    def current(self) -> KeySet:
        """Return the fixed keys."""
        return self.key_set


def key_created_at(path: Path) -> datetime:
    """When a key was made: the time its kid starts with, else the file's mtime."""
    try:
        return datetime.strptime(path.stem.split("-")[0], KID_TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def read_key_dir(directory: Path) -> list[SigningKey]:
    """Every key of a directory, oldest first."""
    keys = [SigningKey(path.stem, parse_private_key(path.read_bytes(), path.name),
                       key_created_at(path))
            for path in directory.glob(f"*{KEY_SUFFIX}")]
    return sorted(keys, key=lambda key: (key.created_at, key.kid))


def write_key(directory: Path, key: SigningKey) -> Path:
    """Write a key file readable by its owner only, atomically."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = directory / f"{key.kid}{KEY_SUFFIX}"
    partial = directory / f".{key.kid}.partial"
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private_pem(key.private_key))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, target)
    return target


def generate_key(directory: Path, now: datetime) -> SigningKey:
    """Make a new Ed25519 key in `directory`; it becomes the signer."""
    now = now.astimezone(UTC).replace(microsecond=0)  # what the kid can say
    key = SigningKey(new_kid(now), Ed25519PrivateKey.generate(), now)
    write_key(directory, key)
    return key


@contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on the key directory (several workers may start at once)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(directory / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def expired_keys(keys: list[SigningKey], now: datetime,
                 retention: timedelta) -> list[SigningKey]:
    """Retired keys whose every token has expired: retired (a newer key came) > retention ago."""
    return [key for key, newer in itertools.pairwise(keys)
            if newer.created_at + retention <= now]


def prune_keys(directory: Path, now: datetime, retention: timedelta) -> list[SigningKey]:
    """Delete the retired keys no live token can need; return them."""
    with directory_lock(directory):
        pruned = expired_keys(read_key_dir(directory), now, retention)
        for key in pruned:
            (directory / f"{key.kid}{KEY_SUFFIX}").unlink(missing_ok=True)
    return pruned


def rotate_keys(directory: Path, now: datetime,
                retention: timedelta) -> tuple[SigningKey, list[SigningKey]]:
    """Add a new signing key, then prune expired old ones; return (new key, pruned keys)."""
    with directory_lock(directory):
        existing = read_key_dir(directory)
        newest = existing[-1].created_at if existing else None
        # Kids order by the second; a second rotation within one must still sort last.
        made_at = max(now, newest + timedelta(seconds=1)) if newest else now
        key = generate_key(directory, made_at)
    return key, prune_keys(directory, now, retention)


class DirectoryKeySource:
    """Keys in a directory, reloaded whenever the directory changes (after a rotation)."""

    def __init__(self, directory: Path, generate_if_empty: bool) -> None:
        self.directory = directory
        self.lock = threading.Lock()
        self.loaded: tuple[int, KeySet] | None = None
        self._ensure_keys(generate_if_empty)

    def _ensure_keys(self, generate_if_empty: bool) -> None:
        if not generate_if_empty:
            if not self.directory.is_dir() or not read_key_dir(self.directory):
                raise ConfigError(
                    f"No signing keys: set JWT_PRIVATE_KEYS or put keys in {self.directory} "
                    "(taskstream keys rotate)")
            return
        with directory_lock(self.directory):
            if not read_key_dir(self.directory):
                generate_key(self.directory, datetime.now(UTC))

    def current(self) -> KeySet:
        """Return the keys, rereading the directory if it changed since the last read."""
        stamp = self.directory.stat().st_mtime_ns
        loaded = self.loaded
        if loaded is not None and loaded[0] == stamp:
            return loaded[1]
        with self.lock:
            key_set = KeySet(tuple(read_key_dir(self.directory)))
            if not key_set.keys:
                raise ConfigError(f"No signing keys left in {self.directory}")
            self.loaded = (stamp, key_set)
            return key_set
