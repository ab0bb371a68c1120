"""Rate limits at the gateway: Flask-Limiter on Redis, moving window, shared by all workers.

Callers are keyed by user id when they present a valid token and by client address
otherwise (the address `client_address` decides, behind trusted proxies). Logins are also
limited per address, whatever token comes with them, and failed logins per username, so
that guesses spread over many addresses still run into a limit. When Redis is unreachable
the limiter falls back to per-process in-memory counters with the same limits (logged), so
the API stays up and still bounded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging

from flask import Flask, Response, g, request
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address
from prometheus_client import Counter
from redis import RedisError

from services.api_gateway.adapters.window_storage import storage_uri
from services.api_gateway.config import Settings
from shared.auth import InvalidToken, app_verifier, bearer_token

log = logging.getLogger("taskstream.gateway.ratelimit")

RATE_LIMITED = Counter("taskstream_rate_limited_total", "Requests refused with 429", ["limit"])


def identify_caller() -> None:
    """Verify a bearer token if there is one, so the limiter can key by user."""
    token = bearer_token()
    if token is None or "principal" in g:
        return
    # An invalid token is not an error here: the view answers 401 when the route needs one
    # (and 503 when the revocation marks cannot be read).
    with contextlib.suppress(InvalidToken, RedisError):
        g.principal = app_verifier().verify(token)


def caller_key() -> str:
    """`user:<id>` for authenticated callers, `addr:<ip>` otherwise."""
    principal = g.get("principal")
    if principal is not None:
        return f"user:{principal.user_id}"
    return f"addr:{get_remote_address()}"


def client_address_key() -> str:
    """Key the login limit by address only: a token must not buy more password guesses."""
    return f"login:{get_remote_address()}"


def failed_login_key() -> str:
    """Key failed logins by the username tried (lower-cased, hashed: any length fits).

    A body without a username shares one key; the auth service refuses it with 400 or 422,
    which never counts.
    """
    username = _login_username().lower()
    return f"login-user:{hashlib.sha256(username.encode()).hexdigest()}"


def failed_login(response: Response) -> bool:
    """Only a refused password counts against a username, never a successful login."""
    return response.status_code == 401


def _login_username() -> str:
    try:  # the body is at most MAX_BODY_BYTES here; the auth service judges it properly
        body = json.loads(request.get_data(cache=True))
    except (ValueError, RecursionError):
        return ""
    username = body.get("username") if isinstance(body, dict) else None
    return username if isinstance(username, str) else ""


def _is_exempt() -> bool:
    return request.endpoint in {None, "healthz", "readyz", "metrics", "docs", "docs_asset",
                                "openapi_json"}


def _count_breach(limit: RequestLimit) -> None:
    RATE_LIMITED.labels(str(limit.limit)).inc()


def _remember_retry_after(response: Response) -> Response:
    """Keep the `Retry-After` a response came with, before the limiter rewrites it."""
    g.own_retry_after = response.headers.get("Retry-After")
    return response


def drop_retry_after_unless_limited(response: Response) -> Response:
    """Flask-Limiter sends `Retry-After` on every response; it only means something on 429.
    Any other response keeps the one it came with (a 503's, ours or an upstream's)."""
    if response.status_code == 429:
        return response
    own = g.get("own_retry_after")
    if own is None:
        response.headers.pop("Retry-After", None)
    else:
        response.headers["Retry-After"] = own
    return response


def create_limiter(app: Flask, settings: Settings) -> Limiter:
    """Attach the limiter with the default limit; login routes get theirs in `limit_login`."""
    # after_request hooks run in reverse order: registered first, this one sees the limiter's
    # headers.
    app.after_request(drop_retry_after_unless_limited)
    limiter = Limiter(
        caller_key,
        app=app,
        default_limits=[settings.rate_limit_default],
        default_limits_exempt_when=_is_exempt,
        # One Redis round trip per request: the acquire also reports the window's state.
        storage_uri=storage_uri(settings.common.redis_url),
        # redis-py takes float timeouts; Flask-Limiter's annotation is narrower than its use.
        storage_options={"socket_connect_timeout": 0.5, "socket_timeout": 0.5},  # type: ignore[dict-item]
        strategy="moving-window",
        headers_enabled=True,
        key_prefix=f"{settings.common.namespace}:ratelimit",
        in_memory_fallback_enabled=True,
        swallow_errors=True,  # the request that finds Redis gone is let through, not a 500
        on_breach=_count_breach,
        enabled=settings.rate_limit_enabled,
    )
    app.after_request(_remember_retry_after)  # registered after the limiter: runs before it
    return limiter
