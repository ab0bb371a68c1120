"""Pooled HTTP connections to the services, with timeouts and idempotent-only retries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO

import requests
from requests.adapters import HTTPAdapter
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
        self.session = requests.Session()
        # Upstreams are named by configuration: skip the per-request lookup of proxy and
        # netrc settings in the environment, which costs more than the forwarding itself.
        self.session.trust_env = False
        retry = Retry(
            total=retries, connect=retries, read=retries, status=0, other=0,
            allowed_methods=IDEMPOTENT_METHODS, backoff_factor=0.1, raise_on_status=False,
        )
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def forward(self, method: str, path: str, *, query: bytes, headers: Mapping[str, str],
                body: bytes | IO[bytes] | None, read_timeout: float | None = None
                ) -> UpstreamReply:
        """Send one request and return the reply, or raise the gateway's 502/503/504."""
        url = f"{self.base_url}{path}" + (f"?{query.decode('latin-1')}" if query else "")
        prepared = self.session.prepare_request(
            requests.Request(method, url, headers=dict(headers), data=body))
        if "Content-Length" in prepared.headers:
            # requests marks a streamed body `chunked` even when its length is given; both
            # headers together are a malformed request that gunicorn answers with HTML 400.
            prepared.headers.pop("Transfer-Encoding", None)
        try:
            response = self.session.send(
                prepared, allow_redirects=False,
                timeout=(self.connect_timeout, read_timeout or self.read_timeout),
            )
        except (requests.ConnectTimeout, requests.ConnectionError) as exc:
            if isinstance(exc, requests.ReadTimeout):
                raise ApiError(504, f"Upstream service '{self.name}' timed out") from exc
            raise ApiError(503, f"Upstream service '{self.name}' is unavailable") from exc
        except requests.Timeout as exc:
            raise ApiError(504, f"Upstream service '{self.name}' timed out") from exc
        except requests.RequestException as exc:
            raise ApiError(502, f"Bad response from upstream service '{self.name}'") from exc
        return UpstreamReply(
            status=response.status_code,
            headers=[(k, v) for k, v in response.headers.items()
                     if k.lower() not in NOT_FORWARDED],
            body=response.content,
        )

    def get_json(self, path: str, timeout: float = 2.0) -> tuple[int, dict]:
        """GET a JSON document (readiness, OpenAPI) with a short timeout."""
        response = self.session.get(f"{self.base_url}{path}", timeout=(timeout, timeout))
        return response.status_code, response.json()
