"""The auth service's public keys (JWKS), fetched and kept fresh by every verifier."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import jwt
import requests

log = logging.getLogger("taskstream.auth")

KeyFetcher = Callable[[], dict[str, Any]]


def http_jwks_fetcher(url: str, timeout: float = 3.0) -> KeyFetcher:
    """Return a function that downloads a JWKS document."""
    session = requests.Session()

    def fetch() -> dict[str, Any]:
        response = session.get(url, timeout=timeout)
        response.raise_for_status()
        return dict(response.json())

    return fetch


class JwksCache:
    """Public keys by `kid`: refetched once they are `max_age_seconds` old, and on an unknown
    kid; never more often than once per `min_refresh_seconds`."""

    def __init__(self, fetch: KeyFetcher, min_refresh_seconds: float = 30.0,
                 max_age_seconds: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.fetch = fetch
        self.min_refresh_seconds = min_refresh_seconds
        self.max_age_seconds = max_age_seconds
        self.clock = clock
        self.keys: dict[str, Any] = {}
        self.fetched_at = float("-inf")  # last successful fetch
        self.attempted_at = float("-inf")
        self.lock = threading.Lock()

    def key(self, kid: str) -> Any | None:
        """Return the public key for `kid`, refetching the set once when it is unknown."""
        if not self.trusts(kid):
            self.refresh()
        return self.keys.get(kid)

    def trusts(self, kid: str) -> bool:
        """True if `kid` is in the key set, refetched first when it is too old."""
        if self.clock() - self.fetched_at >= self.max_age_seconds:
            self.refresh(wait=False)
        return kid in self.keys

    def refresh(self, wait: bool = True) -> None:
        """Refetch the JWKS unless that was tried within `min_refresh_seconds`.

        With `wait=False` a thread that finds another one fetching goes on with the keys held.
        """
        if not self.lock.acquire(blocking=wait):
            return
        try:
            if self.clock() - self.attempted_at < self.min_refresh_seconds:
                return
            self.attempted_at = self.clock()
            try:
                document = self.fetch()
            except Exception as exc:  # the keys we hold stay valid
                log.warning("could not fetch JWKS: %s", exc)
                return
            self.keys = {
                jwk["kid"]: jwt.PyJWK.from_dict(jwk).key
                for jwk in document.get("keys", []) if "kid" in jwk
            }
            self.fetched_at = self.attempted_at
        finally:
            self.lock.release()

