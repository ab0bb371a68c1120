"""Who the client is: the address the trusted load balancer saw, never one the client wrote.

Behind `TRUSTED_PROXIES` hops, werkzeug's ProxyFix takes the client's address from the
`X-Forwarded-For` entry the outermost trusted proxy appended (the N-th from the right) and
the scheme from `X-Forwarded-Proto`; entries further left were written by the client and are
ignored. With no trusted hops (the default) the socket's peer is the client and forwarded
headers change nothing. Rate limits key on `request.remote_addr`, which this decides.
"""

from __future__ import annotations

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

ORIGINAL = "werkzeug.proxy_fix.orig"


def trust_proxies(app: Flask, hops: int) -> None:
    """Believe the last `hops` entries of the forwarded headers (none when 0)."""
    if hops > 0:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops)


def forwarded_for(hops: int) -> str:
    """`X-Forwarded-For` for the upstream: the client, each trusted hop after it, our peer.

    Whatever the client wrote before the trusted entries is dropped, so a service reading the
    header's first entry gets the same client address as the gateway's rate limits.
    """
    original = request.environ.get(ORIGINAL)
    if original is None:  # no trusted proxies: the peer is the client
        return request.remote_addr or ""
    entries = [entry.strip() for entry in request.headers.get("X-Forwarded-For", "").split(",")
               if entry.strip()]
    trusted = entries[-hops:] if len(entries) >= hops else []
    return ", ".join([*trusted, original.get("REMOTE_ADDR") or ""])
