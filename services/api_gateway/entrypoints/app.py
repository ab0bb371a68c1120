"""The gateway's HTTP process: `create_app`, gunicorn's factory and the composition root."""

from __future__ import annotations

from functools import partial

from flask import Flask
from flask_cors import CORS

from services.api_gateway.adapters.client_address import trust_proxies
from services.api_gateway.adapters.ratelimit import (
    client_address_key,
    create_limiter,
    failed_login,
    failed_login_key,
    identify_caller,
)
from services.api_gateway.adapters.upstreams import Upstream
from services.api_gateway.api import docs, proxy
from services.api_gateway.api.deps import GatewayDeps
from services.api_gateway.config import Settings, load_settings
from services.api_gateway.service_layer.api_document import ApiDocument
from shared.auth import TokenVerifier, jwks_verifier, use_verifier
from shared.config import GUNICORN_APP_LOAD_ERROR, exit_on_config_error
from shared.health import ReadinessCheck, register_health
from shared.http import init_http, provide
from shared.redis_client import redis_client
from shared.settings import process_settings

# Response headers a browser client may read when CORS is on.
EXPOSED_HEADERS = ["ETag", "Location", "Link", "X-Total-Count", "X-Request-ID", "X-Cache",
                   "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining",
                   "X-RateLimit-Reset"]


def build_upstreams(settings: Settings) -> dict[str, Upstream]:
    """One pooled client per service."""
    return {
        name: Upstream(name, url, connect_timeout=settings.connect_timeout,
                       read_timeout=settings.read_timeout, retries=settings.retries)
        for name, url in settings.upstreams.items()
    }


def _readiness_checks(settings: Settings, upstreams: dict[str, Upstream]
                      ) -> dict[str, ReadinessCheck]:
    client = redis_client(settings.common.redis_url, socket_timeout=1, socket_connect_timeout=1)
    checks: dict[str, ReadinessCheck] = {"redis": client.ping}
    for name, upstream in upstreams.items():
        checks[name] = partial(_check_upstream, upstream)
    return checks


def _check_upstream(upstream: Upstream) -> None:
    """Raise unless the upstream answers its own `/readyz` with 200."""
    status, body = upstream.get_json("/readyz")
    if status != 200:
        raise RuntimeError(f"{upstream.name} not ready: {body.get('checks', body)}")


@exit_on_config_error(GUNICORN_APP_LOAD_ERROR)  # gunicorn's entry point
def create_app(settings: Settings | None = None, *, verifier: TokenVerifier | None = None
               ) -> Flask:
    """Build the gateway."""
    settings = settings or process_settings(load_settings, "gateway")
    app = Flask(__name__)
    trust_proxies(app, settings.trusted_proxies)
    init_http(app, settings.max_body_bytes)
    use_verifier(app, verifier or jwks_verifier(settings.common))
    upstreams = build_upstreams(settings)
    app.before_request(identify_caller)
    app.before_request(proxy.enforce_body_limit)
    if settings.cors_origins:  # off unless configured
        CORS(app, origins=list(settings.cors_origins), expose_headers=EXPOSED_HEADERS,
             allow_headers=["Authorization", "Content-Type", "If-Match", "Idempotency-Key",
                            "X-Request-ID"])
    limiter = create_limiter(app, settings)
    provide(app, GatewayDeps(settings, upstreams, ApiDocument(upstreams), limiter))
    login_limit = limiter.limit(settings.rate_limit_login, key_func=client_address_key)
    password_limit = limiter.limit(settings.rate_limit_login_username,
                                   key_func=failed_login_key, deduct_when=failed_login)
    proxy.register_routes(app, login_limit, password_limit)
    docs.register(app)
    register_health(app, _readiness_checks(settings, upstreams))
    limiter.exempt(app.view_functions["healthz"])
    limiter.exempt(app.view_functions["readyz"])
    return app
