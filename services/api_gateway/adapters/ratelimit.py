"""Rate limits at the gateway: Flask-Limiter on Redis, moving window, shared by all workers.

Callers are keyed by user id when they present a valid token and by client address
otherwise. When Redis is unreachable the limiter falls back to per-process in-memory
counters with the same limits (logged), so the API stays up and still bounded.
"""

from __future__ import annotations

import contextlib
import logging

from flask import Flask, Response, current_app, g, request
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address
from prometheus_client import Counter

from services.api_gateway.adapters.window_storage import storage_uri
from services.api_gateway.config import Settings
from shared.auth import InvalidToken, bearer_token

log = logging.getLogger("taskstream.gateway.ratelimit")

RATE_LIMITED = Counter("taskstream_rate_limited_total", "Requests refused with 429", ["limit"])


def identify_caller() -> None:
    """Verify a bearer token if there is one, so the limiter can key by user."""
    token = bearer_token()
    if token is None or "principal" in g:
        return
    # An invalid token is not an error here: the view answers 401 when the route needs one.
    with contextlib.suppress(InvalidToken):
        g.principal = current_app.extensions["token_verifier"].verify(token)


def caller_key() -> str:
    """`user:<id>` for authenticated callers, `addr:<ip>` otherwise."""
    principal = g.get("principal")
    if principal is not None:
        return f"user:{principal.user_id}"
    return f"addr:{get_remote_address()}"


def client_address_key() -> str:
    """Key the login limit by address only: a token must not buy more password guesses."""
    return f"login:{get_remote_address()}"


def _is_exempt() -> bool:
    return request.endpoint in {None, "healthz", "readyz", "metrics", "docs", "openapi_json"}


def _count_breach(limit: RequestLimit) -> None:
    RATE_LIMITED.labels(str(limit.limit)).inc()


def drop_retry_after_unless_limited(response: Response) -> Response:
    """Flask-Limiter sends `Retry-After` on every response; it only means something on 429."""
    if response.status_code != 429:
        response.headers.pop("Retry-After", None)
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
    return limiter
