"""Pooled HTTP connections to the services, with timeouts and idempotent-only retries.

urllib3 is used directly: the gateway forwards bytes and headers as they are, and the
per-request work of a higher-level client (preparing, cookies, environment lookups)
cost more than the forwarding itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.util.retry import Retry

from shared.errors import ApiError

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Hop-by-hop headers (RFC 9110 7.6.1) and those the gateway's own server sets.
NOT_FORWARDED = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "content-length", "host", "server", "date",
})


@dataclass(frozen=True)
class UpstreamReply:
    """What an upstream answered, to be passed back unchanged."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class Upstream:
    """One service behind the gateway."""

    def __init__(self, name: str, base_url: str, *, connect_timeout: float,
                 read_timeout: float, retries: int, pool_size: int = 20) -> None:
        self.name = name
        self.base_url = base_url
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retry = Retry(
            total=retries, connect=retries, read=retries, status=0, other=0,
            allowed_methods=IDEMPOTENT_METHODS, backoff_factor=0.1, raise_on_status=False,
            redirect=0,
        )
        self.pool = urllib3.connection_from_url(base_url, maxsize=pool_size, block=False)

    def forward(self, method: str, path: str, *, query: bytes, headers: Mapping[str, str],
                body: bytes | IO[bytes] | None, read_timeout: float | None = None
                ) -> UpstreamReply:
        """Send one request and return the reply, or raise the gateway's 502/503/504."""
        url = path + (f"?{query.decode('latin-1')}" if query else "")
        timeout = urllib3.Timeout(connect=self.connect_timeout,
                                  read=read_timeout or self.read_timeout)
        try:
            response = self.pool.urlopen(
                method, url, body=body, headers=dict(headers), retries=self.retry,
                timeout=timeout, redirect=False, preload_content=True,
            )
        except MaxRetryError as exc:
            raise self._failure(exc.reason or exc) from exc
        except HTTPError as exc:
            raise self._failure(exc) from exc
        return UpstreamReply(
            status=response.status,
            headers=[(k, v) for k, v in response.headers.items()
                     if k.lower() not in NOT_FORWARDED],
            body=response.data,
        )

    def _failure(self, reason: Exception) -> ApiError:
        if isinstance(reason, ReadTimeoutError):
            return ApiError(504, f"Upstream service '{self.name}' timed out")
        if isinstance(reason, (NewConnectionError, ConnectTimeoutError)):
            return ApiError(503, f"Upstream service '{self.name}' is unavailable")
        return ApiError(502, f"Bad response from upstream service '{self.name}'")

    def get_json(self, path: str, timeout: float = 2.0) -> tuple[int, Any]:
        """GET a JSON document (readiness, OpenAPI) with a short timeout."""
        response = self.pool.request("GET", path, timeout=urllib3.Timeout(timeout, timeout),
                                     retries=False)
        return response.status, json.loads(response.data)
