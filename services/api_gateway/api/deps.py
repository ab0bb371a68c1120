"""The objects the gateway's views use, built by create_app and kept on the app."""

from __future__ import annotations

from dataclasses import dataclass

from flask_limiter import Limiter

from services.api_gateway.adapters.upstreams import Upstream
from services.api_gateway.config import Settings
from services.api_gateway.service_layer.api_document import ApiDocument
from shared.http import provided


@dataclass(frozen=True)
class GatewayDeps:
    """What a request may need: the settings, one client per upstream and the merged API
    document; and the rate limiter, which Flask-Limiter's decorators hold only weakly."""

    settings: Settings
    upstreams: dict[str, Upstream]
    api_document: ApiDocument
    limiter: Limiter


def deps() -> GatewayDeps:
    """The dependencies of the current app."""
    return provided(GatewayDeps)
