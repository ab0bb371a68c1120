"""Forward each public route to the service that owns it, unchanged."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

from flask import Blueprint, Flask, Response, g, request

from services.api_gateway.adapters.client_address import forwarded_for
from services.api_gateway.api.deps import deps
from services.api_gateway.config import Settings
from services.api_gateway.service_layer.routing import ROUTES, Route
from shared.auth import authenticate
from shared.errors import ApiError
from shared.http import IDEMPOTENCY_KEY_HEADER, REQUEST_ID_HEADER

FORWARDED_REQUEST_HEADERS = (
    "Authorization", "Content-Type", "Accept", "If-Match", "If-None-Match",
    IDEMPOTENCY_KEY_HEADER,
)

def _request_headers(trusted_proxies: int) -> dict[str, str]:
    headers = {k: request.headers[k] for k in FORWARDED_REQUEST_HEADERS if k in request.headers}
    headers[REQUEST_ID_HEADER] = g.request_id
    headers["X-Forwarded-For"] = forwarded_for(trusted_proxies)
    if request.content_length is not None:
        headers["Content-Length"] = str(request.content_length)
    return headers


def _body(route: Route) -> bytes | IO[bytes] | None:
    if request.method in {"GET", "HEAD"}:
        return None
    if route.upload:  # streamed through, never held whole in the gateway
        return request.stream
    return request.get_data()


def _forwarder(route: Route) -> Callable[..., Response]:
    def forward(**_params: object) -> Response:
        if not route.public:
            authenticate()
        found = deps()
        reply = found.upstreams[route.upstream_for(request.args)].forward(
            request.method, request.path, query=request.query_string,
            headers=_request_headers(found.settings.trusted_proxies), body=_body(route),
            read_timeout=_read_timeout(route, found.settings),
            keyed=route.keyed and IDEMPOTENCY_KEY_HEADER in request.headers,
        )
        headers = [(name, value) for name, value in reply.headers
                   if name.lower() != REQUEST_ID_HEADER.lower()]
        return Response(reply.body, status=reply.status, headers=headers)

    forward.__doc__ = f"Forward {', '.join(route.methods)} {route.rule} to {route.upstream}."
    return forward


def _read_timeout(route: Route, settings: Settings) -> float | None:
    """The upload timeout for uploads; a long poll's wait on top of the usual one."""
    if route.upload:
        return settings.upload_timeout
    return settings.read_timeout + route.waits if route.waits else None


def register_routes(app: Flask, login_limit: Callable[[Callable], Callable],
                    password_limit: Callable[[Callable], Callable]) -> None:
    """Add a forwarding view for every public route; login routes get the stricter limit,
    and the password check also the per-username limit of failed logins."""
    blp = Blueprint("proxy", __name__)
    for index, route in enumerate(ROUTES):
        endpoint = f"forward_{index}"
        view = _forwarder(route)
        # Flask-Limiter tells views apart by name, so each generated view gets its own.
        view.__name__ = view.__qualname__ = endpoint
        if route.password:
            view = password_limit(view)
        if route.login:
            view = login_limit(view)
        blp.add_url_rule(route.rule, endpoint, view, methods=list(route.methods))
    app.register_blueprint(blp)


def route_for_request() -> Route | None:
    """The Route of the current request, if it is a forwarded one."""
    endpoint = request.endpoint or ""
    if not endpoint.startswith("proxy.forward_"):
        return None
    return ROUTES[int(endpoint.rsplit("_", 1)[1])]


def enforce_body_limit() -> None:
    """413 before reading a body larger than the route allows."""
    route = route_for_request()
    settings = deps().settings
    limit = settings.max_upload_bytes if route and route.upload else settings.max_body_bytes
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "Request body too large")
